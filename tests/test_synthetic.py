"""Synthetic scenes: the mesh renderer's conventions, ground-truth consistency, determinism, the bundle contract.

Scenes are small (96x72, 8 frames) so the whole file runs in well under a minute on two cores.
"""

import dataclasses
import functools
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from arthoi_jax import pipeline
from arthoi_jax.config import SyntheticConfig
from arthoi_jax.errors import InputError
from arthoi_jax.io.bundle import (
    HUMAN_ID,
    MOVING_PART_ID0,
    STATIC_PART_ID,
    SceneBundle,
    load_bundle,
    save_bundle,
    validate_bundle,
)
from arthoi_jax.synthetic.mesh import box, rect
from arthoi_jax.synthetic.raster import nearest_depth, rasterize
from arthoi_jax.synthetic.scene import (
    MeshPart,
    build_scene,
    generate_scene,
    render_bundle,
)
from arthoi_jax.synthetic.textures import (
    Material,
    fbm,
    hash01,
    shade_material,
    value_noise,
)

OBJECTS = ("door", "drawer", "fridge", "lid", "cabinet2")
SMALL = {"width": 96, "height": 72, "num_frames": 8}


@functools.cache
def _bundle(obj: str, seed: int = 0, texture: str = "textured") -> SceneBundle:
    return generate_scene(SyntheticConfig(object=obj, seed=seed, texture=texture, **SMALL))


def _K(cx=48.0, cy=36.0, f=100.0):
    return np.array([[f, 0, cx], [0, f, cy], [0, 0, 1.0]])


def _rays(K, H, W):
    ys, xs = np.mgrid[0:H, 0:W] + 0.5
    return np.stack([(xs - K[0, 2]) / K[0, 0], (ys - K[1, 2]) / K[1, 1], np.ones((H, W))], -1)


def _depth_alone(vertices, faces, K, H, W):
    """An independent reference: ray-triangle intersection in 3D at every pixel centre -> [H, W] z, inf if none."""
    rays = _rays(K, H, W)
    depth = np.full((H, W), np.inf)
    for a, b, c in vertices[faces]:
        n = np.cross(b - a, c - a)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (n @ a) / (rays @ n)
        p = rays * z[..., None]
        inside = (z > 0) & np.all([np.cross(q - o, p - o) @ n >= 0 for o, q in ((a, b), (b, c), (c, a))], axis=0)
        depth = np.where(inside & (z < depth), z, depth)
    return depth


# --- The renderer's conventions ------------------------------------------------------------------------------


@pytest.mark.parametrize("cx, cy", [(48.0, 36.0), (30.25, 50.5)])
def test_known_point_lands_on_known_pixel(cx, cy):
    K, H, W = _K(cx, cy), 72, 96
    row, col, z = 20, 60, 2.0
    X = np.array([(col + 0.5 - cx) / 100 * z, (row + 0.5 - cy) / 100 * z, z])  # projects to that pixel's centre
    s = 0.004  # 0.2 px: covers the one pixel centre only
    square = rect(X + [-s, -s, 0], [2 * s, 0, 0], [0, 2 * s, 0], 0)
    frags = rasterize(square.vertices, square.faces, K, H, W)
    assert np.argwhere(frags.face >= 0).tolist() == [[row, col]]
    assert frags.depth[row, col] == pytest.approx(z, abs=1e-12)
    point = frags.bary[row, col] @ square.vertices[square.faces[frags.face[row, col]]]
    np.testing.assert_allclose(point, X, atol=1e-12)


def test_interpolation_is_perspective_correct_and_clipped_at_near_plane():
    K, H, W = _K(), 72, 96
    rays = _rays(K, H, W)
    # A slanted plane z = 2 + 0.5 x, covering the view.
    plane = rect([-5, -5, -0.5], [10, 0, 5], [0, 10, 0], 0)
    frags = rasterize(plane.vertices, plane.faces, K, H, W)
    z = 2 / (1 - 0.5 * rays[..., 0])
    np.testing.assert_allclose(frags.depth, z, rtol=1e-12)
    points = np.einsum("hwk,hwkj->hwj", frags.bary, plane.vertices[plane.faces[frags.face]])
    np.testing.assert_allclose(points, rays * z[..., None], atol=1e-12)
    # A floor 1 m below the camera from 5 m behind it to 20 m ahead: clipped at z = near, exact where seen.
    floor = rect([-10, 1, -5], [20, 0, 0], [0, 0, 25], 0)
    frags = rasterize(floor.vertices, floor.faces, K, H, W, near=0.05)
    seen = rays[..., 1] > 1 / 20
    assert np.array_equal(frags.face >= 0, seen)
    np.testing.assert_allclose(frags.depth[seen], 1 / rays[..., 1][seen], rtol=1e-12)


def test_rasterize_agrees_with_ray_casting_and_reference():
    rng = np.random.default_rng(3)
    K, H, W = _K(), 72, 96
    tris = rng.uniform([-1.2, -0.9, 1.5], [1.2, 0.9, 4.0], (30, 3, 3))
    vertices, faces = tris.reshape(-1, 3), np.arange(90).reshape(30, 3)
    frags = rasterize(vertices, faces, K, H, W)
    ref = _depth_alone(vertices, faces, K, H, W)
    agree = (frags.face >= 0) == np.isfinite(ref)
    assert agree.mean() > 0.999
    both = agree & np.isfinite(ref)
    np.testing.assert_allclose(frags.depth[both], ref[both], rtol=1e-9)
    ys, xs = np.mgrid[0:H, 0:W] + 0.5
    cast = nearest_depth(vertices, faces, K, np.stack([xs.ravel(), ys.ravel()], 1), H, W).reshape(H, W)
    np.testing.assert_allclose(np.where(np.isinf(cast), 0, cast), frags.depth, rtol=1e-12)


# --- Scenes and their ground truth ---------------------------------------------------------------------------


@pytest.mark.parametrize("obj", OBJECTS)
def test_every_object_generates_and_validates(obj):
    b = _bundle(obj)
    validate_bundle(b)
    g = b.gt
    P = {"cabinet2": 2}.get(obj, 1)
    T, H, W = SMALL["num_frames"], SMALL["height"], SMALL["width"]
    assert b.frames.shape == (T, H, W, 3) and g.part_poses.shape == (T, P, 4, 4) and len(g.joint_types) == P
    assert g.joint_types == (("prismatic",) if obj == "drawer" else ("revolute",) * P)
    ids = set(np.unique(g.part_ids).tolist())
    assert {0, STATIC_PART_ID, *range(MOVING_PART_ID0, MOVING_PART_ID0 + P)} <= ids and HUMAN_ID not in ids
    assert np.array_equal(b.object_masks, (g.part_ids >= 1) & (g.part_ids < HUMAN_ID)) and not b.human_masks.any()
    assert np.array_equal(b.depth, g.depth[0]) and (g.depth > 0).all()  # the room closes the view
    peak = 0.3 if obj == "drawer" else np.deg2rad(60)
    assert g.joint_values[0] == pytest.approx(0) and g.joint_values.max() == pytest.approx(peak)
    assert np.all(np.diff(g.joint_values, axis=0) >= -1e-12)  # opens, then holds
    np.testing.assert_allclose(g.part_poses[0], np.broadcast_to(np.eye(4), (P, 4, 4)), atol=1e-12)
    # Each pose is the joint's motion: a rotation by the value about (pivot, axis), or a slide along the axis.
    for t in range(T):
        for p, jt in enumerate(g.joint_types):
            M = g.part_poses[t, p]
            if jt == "revolute":
                R = Rotation.from_rotvec(g.axes[p] * g.joint_values[t, p]).as_matrix()
                np.testing.assert_allclose(M[:3, :3], R, atol=1e-12)
                np.testing.assert_allclose(M[:3, :3] @ g.pivots[p] + M[:3, 3], g.pivots[p], atol=1e-12)
            else:
                np.testing.assert_allclose(M[:3, :3], np.eye(3), atol=1e-12)
                np.testing.assert_allclose(M[:3, 3], g.axes[p] * g.joint_values[t, p], atol=1e-12)
    assert b.prompt.startswith("a person opens") or b.prompt == "a person pulls the drawer open"


def test_layered_rendering_equals_one_pass_over_all_parts():
    """The generator renders still parts once and moving ones per frame on top: same ids and depth as one pass."""
    b, scene = _bundle("cabinet2"), build_scene(SyntheticConfig(object="cabinet2", **SMALL))
    offsets = np.cumsum([0] + [len(p.rest_vertices) for p in scene.parts])
    faces = np.concatenate([p.faces + o for p, o in zip(scene.parts, offsets)])
    face_id = np.concatenate([np.full(len(p.faces), p.part_id) for p in scene.parts])
    for t in (0, b.num_frames - 1):
        verts = np.concatenate([p.vertices[t] for p in scene.parts])
        frags = rasterize(verts, faces, b.K, *b.image_size, near=0.05)
        assert np.array_equal(face_id[frags.face], b.gt.part_ids[t])
        assert np.array_equal(frags.depth.astype(np.float32), b.gt.depth[t])


@pytest.mark.parametrize("obj", OBJECTS)
def test_object_parts_are_boxes_and_each_moving_part_ends_with_its_handle_bar(obj):
    """What synthetic.hoi builds on: 8-vertex boxes, and the bar (last box) standing out furthest along +y."""
    scene = build_scene(SyntheticConfig(object=obj, **SMALL))
    for part in scene.parts[1:]:
        V = len(part.rest_vertices)
        assert V % 8 == 0 and len(part.faces) == 12 * V // 8, part.name
        corners = part.rest_vertices.reshape(-1, 8, 3)
        assert np.all(np.ptp(corners, axis=1) > 0), part.name  # every box has volume
        if part.part_id >= MOVING_PART_ID0:
            bar = corners[-1]
            assert bar[:, 1].max() == part.rest_vertices[:, 1].max(), part.name
            assert 0.1 <= np.ptp(bar, axis=0).max() <= 0.5, part.name  # a bar 10-50 cm long


@pytest.mark.parametrize("obj", OBJECTS)
def test_moving_part_mask_matches_its_gt_pose(obj):
    """Each moving part's frame-0 mesh, moved by its GT pose and ray cast on its own, covers its rendered mask
    (IoU >= 0.99 on every frame, once what the render shows in front of it is removed)."""
    b, scene = _bundle(obj), build_scene(SyntheticConfig(object=obj, **SMALL))
    g, K, (H, W) = b.gt, b.K, b.image_size
    for p in range(len(g.joint_types)):
        part = next(q for q in scene.parts if q.part_id == MOVING_PART_ID0 + p)
        for t in range(b.num_frames):
            moved = part.vertices[0] @ g.part_poses[t, p, :3, :3].T + g.part_poses[t, p, :3, 3]
            alone = _depth_alone(moved, part.faces, K, H, W)
            silhouette = np.isfinite(alone)
            rendered = g.part_ids[t] == MOVING_PART_ID0 + p
            unoccluded = silhouette & (alone <= g.depth[t] * (1 + 1e-6))
            assert (rendered & ~silhouette).sum() <= 2, (p, t)
            iou = (rendered & unoccluded).sum() / (rendered | unoccluded).sum()
            assert iou >= 0.99, (p, t, iou)  # the issue asks 0.95; both fills sample pixel centres exactly


@pytest.mark.parametrize("obj", OBJECTS)
def test_gt_tracks_follow_their_part(obj):
    b = _bundle(obj)
    g = b.gt
    H, W = b.image_size
    assert 300 <= g.tracks.shape[1] <= 1000
    assert np.array_equal(b.tracks, g.tracks) and np.array_equal(b.visibility, g.visibility)
    assert g.visibility[0].all()
    # Frame 0: sampled at pixel centres of their own part.
    xy0 = g.tracks[0].astype(np.float64)
    assert np.array_equal(xy0 - 0.5, np.floor(xy0))
    col, row = xy0.astype(int).T
    assert np.array_equal(g.part_ids[0, row, col], g.track_part)
    # Later frames: the frame-0 point (back-projected with the frame-0 depth) moved by its part's pose.
    z0 = g.depth[0, row, col].astype(np.float64)
    X0 = np.stack([(xy0[:, 0] - b.K[0, 2]) / b.K[0, 0] * z0, (xy0[:, 1] - b.K[1, 2]) / b.K[1, 1] * z0, z0], 1)
    depth = np.zeros(g.visibility.shape)
    for t in range(b.num_frames):
        X = X0.copy()
        for p in range(len(g.joint_types)):
            on = g.track_part == MOVING_PART_ID0 + p
            X[on] = X0[on] @ g.part_poses[t, p, :3, :3].T + g.part_poses[t, p, :3, 3]
        xy = X[:, :2] / X[:, 2:] * [b.K[0, 0], b.K[1, 1]] + [b.K[0, 2], b.K[1, 2]]
        np.testing.assert_allclose(g.tracks[t], xy, atol=2e-3)  # float32 depth and tracks
        depth[t] = X[:, 2]
    # Visible tracks fall on the part they were sampled from.
    t_idx, m_idx = np.nonzero(g.visibility)
    col = np.floor(g.tracks[t_idx, m_idx, 0]).astype(int)
    row = np.floor(g.tracks[t_idx, m_idx, 1]).astype(int)
    on_part = g.part_ids[t_idx, row, col] == g.track_part[m_idx]
    assert on_part.mean() >= 0.99, on_part.mean()
    # And hidden in-image tracks lie behind the surface the render shows at their pixel.
    xy = g.tracks
    inside = (xy[..., 0] >= 0) & (xy[..., 0] < W) & (xy[..., 1] >= 0) & (xy[..., 1] < H)
    t_idx, m_idx = np.nonzero(inside & ~g.visibility)
    shown = g.depth[t_idx, xy[t_idx, m_idx, 1].astype(int), xy[t_idx, m_idx, 0].astype(int)]
    if len(shown):  # (none in the door scene: nothing passes in front of the door)
        assert np.mean(shown < depth[t_idx, m_idx] - 1e-3) >= 0.95


def test_tracks_are_hidden_when_the_lid_turns_away():
    g = _bundle("lid").gt
    on_lid = g.track_part == MOVING_PART_ID0
    assert g.visibility[0, on_lid].all() and g.visibility[-1, on_lid].mean() < 0.5
    assert g.visibility[:, ~on_lid].mean() > 0.9


def test_same_seed_is_bit_identical_and_seeds_differ():
    cfg = SyntheticConfig(object="door", seed=7, width=64, height=48, num_frames=3)
    a, b, c = generate_scene(cfg), generate_scene(cfg), generate_scene(dataclasses.replace(cfg, seed=8))
    for name in ("frames", "K", "object_masks", "tracks", "visibility", "depth"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    for f in dataclasses.fields(a.gt):
        x, y = getattr(a.gt, f.name), getattr(b.gt, f.name)
        assert (np.array_equal(x, y) if isinstance(x, np.ndarray) else x == y), f.name
    assert not np.array_equal(a.frames, c.frames)
    assert np.abs(a.frames.astype(int) - c.frames.astype(int)).mean() > 5
    np.testing.assert_array_equal(a.gt.part_poses, c.gt.part_poses)  # the seed changes looks, not geometry


def test_bundle_round_trip_is_bit_exact(tmp_path):
    b = _bundle("cabinet2")
    back = load_bundle(save_bundle(b, tmp_path / "bundle"))
    for f in dataclasses.fields(SceneBundle):
        x, y = getattr(b, f.name), getattr(back, f.name)
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and np.array_equal(x, y), f.name
        elif f.name != "gt":
            assert x == y, f.name
    for f in dataclasses.fields(b.gt):
        x, y = getattr(b.gt, f.name), getattr(back.gt, f.name)
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and np.array_equal(x, y), f.name
        else:
            assert x == y, f.name


def test_low_texture_variant_has_little_detail_on_the_object():
    def detail(b):  # mean absolute horizontal gradient on the moving part, away from its edges
        g = np.abs(np.diff(b.frames[0].astype(float).mean(-1), axis=1))
        part = b.gt.part_ids[0] == MOVING_PART_ID0
        inner = part[:, 1:] & part[:, :-1]
        return g[inner].mean()

    assert detail(_bundle("door", texture="low")) < 0.25 * detail(_bundle("door"))


def test_a_human_part_renders_with_its_id_and_hides_the_object():
    scene = build_scene(SyntheticConfig(object="door", width=64, height=48, num_frames=3))
    T = scene.num_frames
    # A 0.4 x 1.6 m box 2.5 m from the camera walking left, into the door's line of sight: per-frame
    # vertices, as SMPL-X gives them.
    body = box([-0.2, -0.8, 2.4], [0.2, 0.8, 2.6], 0)
    verts = np.stack([body.vertices + [0.9 - 0.5 * t, 0.0, 0.0] for t in range(T)])
    skin = (Material("noise", (0.9, 0.7, 0.6), (0.6, 0.4, 0.3), 0.05, 1),)
    human = MeshPart("human", HUMAN_ID, body.vertices, body.faces, body.face_material, skin, verts)
    b = render_bundle(scene.with_part(human))
    validate_bundle(b)
    area = b.human_masks.sum(axis=(1, 2))
    assert np.all(area >= 300), area
    centre_x = [np.nonzero(m)[1].mean() for m in b.human_masks]
    assert np.all(np.diff(centre_x) < -5), centre_x
    assert not (b.human_masks & b.object_masks).any()
    assert b.visibility[0].all() and b.visibility[-1].mean() < 0.5
    with pytest.raises(InputError, match=r"part 'human': vertices must be \[T=3, V, 3\], got \[2, 8, 3\]"):
        scene.with_part(dataclasses.replace(human, vertices=verts[:2]))


def test_generate_stage_writes_bundle_and_previews(tmp_path):
    config = Path(__file__).resolve().parents[1] / "configs" / "synthetic" / "drawer.yaml"
    run_dir = pipeline.run(config, stage="generate", out=tmp_path / "run",
                           overrides=["synthetic.width=64", "synthetic.height=48", "synthetic.num_frames=3"])
    out = run_dir / "generate"
    b = load_bundle(out / "bundle")
    assert b.frames.shape == (3, 48, 64, 3) and b.gt.joint_types == ("prismatic",)
    assert (out / "preview.mp4").stat().st_size > 1000 and (out / "preview.png").stat().st_size > 1000


# --- Textures --------------------------------------------------------------------------------------------------


def test_value_noise_interpolates_its_lattice_and_is_seeded():
    rng = np.random.default_rng(0)
    ijk = rng.integers(-50, 50, (200, 3))
    np.testing.assert_array_equal(value_noise(ijk.astype(float), 5), hash01(ijk, 5))
    p = rng.uniform(-10, 10, (2000, 3))
    v = value_noise(p, 5)
    assert v.min() >= 0 and v.max() < 1 and v.std() > 0.15
    # Smooth: a step of 1e-4 lattice cells moves the value by at most ~1.5 * 1e-4 * sqrt(3).
    assert np.abs(value_noise(p + 1e-4, 5) - v).max() < 3e-4
    assert np.array_equal(value_noise(p, 5), v) and np.abs(value_noise(p, 6) - v).mean() > 0.1


def test_texture_detail_below_two_pixels_fades_out():
    p = np.random.default_rng(1).uniform(0, 1, (4000, 3))
    sharp, coarse = fbm(p / 0.05, 3, 5), fbm(p / 0.05, 3, 5, footprint=np.full(len(p), 0.01 / 0.05))
    # Footprint 1 cm = 0.2 lattice cells of 5 cm: octaves of spacing 1, 1/2 stay, 1/4 is faded by a quarter,
    # 1/8 and 1/16 (under a pixel) are gone.
    weights = [1, 0.5, 0.25, 0.125, 0.0625]
    kept = sum(w * (value_noise(p / 0.05 * 2**o, 3 * 131 + o) - 0.5) * np.clip(2.0**-o / 0.2 - 1, 0, 1)
               for o, w in enumerate(weights))
    np.testing.assert_allclose(coarse, 0.5 + kept / sum(weights), atol=1e-12)
    assert coarse.std() < sharp.std()
    np.testing.assert_allclose(fbm(p, 3, 5, footprint=10.0), 0.5)  # pixels larger than every feature: flat
    m = Material("wood", (0.6, 0.4, 0.2), (0.3, 0.2, 0.1), 0.2, seed=9)
    far = shade_material(m, p, np.full(len(p), 1.0))
    assert far.std(0).max() < 0.25 * shade_material(m, p).std(0).max()
