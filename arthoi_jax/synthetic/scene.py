"""Synthetic articulated scenes with exact ground truth, rendered by the numpy mesh renderer.

A `Scene` is a list of `MeshPart`s (vertices per frame in the world = camera-0 frame, faces, a part id and
materials evaluated in the part's own frame) seen by a static camera. `build_scene(cfg)` makes the room and
object of a `SyntheticConfig`; `render_bundle(scene)` renders every frame and the ground truth into a
`SceneBundle`; `generate_scene(cfg)` does both. A posed human is one more part: Stage II adds a `MeshPart` with
id HUMAN_ID and per-frame SMPL-X vertices through `Scene.with_part`, and the renderer needs no change.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from arthoi_jax import config as config_lib
from arthoi_jax.config import SyntheticConfig
from arthoi_jax.errors import ConfigError, InputError
from arthoi_jax.io.bundle import (
    BACKGROUND_ID,
    HUMAN_ID,
    MOVING_PART_ID0,
    STATIC_PART_ID,
    GroundTruth,
    SceneBundle,
)
from arthoi_jax.synthetic import objects
from arthoi_jax.synthetic.mesh import Mesh
from arthoi_jax.synthetic.motion import apply, joint_transform, look_at, open_and_hold
from arthoi_jax.synthetic.raster import Fragments, rasterize
from arthoi_jax.synthetic.textures import Material, shade_material
from arthoi_jax.synthetic.tracks import project_anchors, sample_anchors

NEAR_M = 0.05
# Lambertian shading under one directional light: albedo * (AMBIENT + DIFFUSE * max(0, n . l)).
AMBIENT, DIFFUSE = 0.55, 0.5
LIGHT_DIR_ROOM = np.array([-0.35, 0.55, 0.75]) / np.linalg.norm([-0.35, 0.55, 0.75])
# Share of the ground-truth tracks put on the moving parts (split evenly); the rest go on the static part.
MOVING_TRACK_SHARE = 0.6
# A moving part must show at least this many pixels at frame 0 for the scene to be usable.
MIN_PART_PIXELS = 16


@dataclasses.dataclass(frozen=True)
class MeshPart:
    """One rigid or deforming part of a scene."""

    name: str
    part_id: int  # see arthoi_jax.io.bundle: BACKGROUND_ID, STATIC_PART_ID, MOVING_PART_ID0 + p, HUMAN_ID
    rest_vertices: np.ndarray  # [V, 3] metres, the part's own frame: textures are evaluated here
    faces: np.ndarray  # [F, 3] int32
    face_material: np.ndarray  # [F] int32, index into `materials`
    materials: tuple[Material, ...]
    vertices: np.ndarray  # [T, V, 3] metres, world (= camera-0) frame, per frame

    @classmethod
    def rigid(cls, name: str, part_id: int, mesh: Mesh, materials, poses: np.ndarray) -> MeshPart:
        """A rigid part: `poses` [T, 4, 4] maps the mesh's frame to the world frame at each frame."""
        return cls(name, part_id, mesh.vertices, mesh.faces, mesh.face_material, tuple(materials),
                   apply(poses, mesh.vertices))


@dataclasses.dataclass(frozen=True)
class Scene:
    """Parts seen by a static pinhole camera at the world origin, and the object's ground-truth joints."""

    parts: tuple[MeshPart, ...]
    K: np.ndarray  # [3, 3] pixels
    width: int
    height: int
    fps: float
    light_dir: np.ndarray  # [3] unit vector towards the light, world frame
    joint_types: tuple[str, ...]  # [P]
    axes: np.ndarray  # [P, 3] unit, world frame
    pivots: np.ndarray  # [P, 3] metres, world frame
    joint_values: np.ndarray  # [T, P] radians or metres
    part_poses: np.ndarray  # [T, P, 4, 4] maps a moving part's frame-0 points to frame t
    prompt: str
    seed: int
    num_tracks: int

    @property
    def num_frames(self) -> int:
        return self.joint_values.shape[0]

    def with_part(self, part: MeshPart) -> Scene:
        """The scene with one more part (e.g. a posed human, id HUMAN_ID).

        Raises:
          InputError: the part's vertices are not [T, V, 3] for this scene's T, or its id is taken.
        """
        if part.vertices.ndim != 3 or part.vertices.shape[0] != self.num_frames:
            raise InputError(f"part {part.name!r}: vertices must be [T={self.num_frames}, V, 3], "
                             f"got {list(part.vertices.shape)}")
        if part.part_id in {p.part_id for p in self.parts}:
            raise InputError(f"part {part.name!r}: id {part.part_id} is already used by another part")
        return dataclasses.replace(self, parts=self.parts + (part,))


@dataclasses.dataclass(frozen=True)
class _Frame:
    """One rendered frame: rgb [H, W, 3] uint8, depth [H, W] float32 metres (0: no surface),
    part_ids [H, W] uint8, and the rasterizer's fragments (faces index the scene's stacked mesh)."""

    rgb: np.ndarray
    depth: np.ndarray
    part_ids: np.ndarray
    fragments: Fragments


def generate_scene(cfg: SyntheticConfig) -> SceneBundle:
    """The synthetic scene of `cfg`, rendered, with ground truth. Pure: same config, bit-identical bundle.

    Raises:
      ConfigError: a value of `cfg` is invalid, or the camera it places is inside the object or does not see it.
    """
    return render_bundle(build_scene(cfg))


def build_scene(cfg: SyntheticConfig) -> Scene:
    """Places the configured object in the room, moves its joints and sets the camera (nothing rendered yet).

    Raises:
      ConfigError: as for `generate_scene`.
    """
    cfg = _validated(cfg)
    if cfg.human:
        raise ConfigError("synthetic.human: true is not supported by generate_scene, which renders the object "
                          "alone; add a posed human with Scene.with_part (Stage II's scene generator)")
    pal = objects.Palette(np.random.default_rng(cfg.seed), low_texture=cfg.texture == "low")
    spec = objects.BUILDERS[cfg.object](pal)
    background = objects.room(pal, spec.doorway)
    T = cfg.num_frames

    # Joint motion in the room frame.
    motions = []
    for m in spec.moving:
        peak = np.deg2rad(cfg.max_angle_deg) if m.joint_type == "revolute" else cfg.max_translation_m
        values = open_and_hold(T, peak * m.peak_scale, m.start, m.end)
        motions.append((values, np.stack([joint_transform(m.joint_type, m.axis, m.pivot, v) for v in values])))

    eye, T_cam_room = _camera(cfg, spec)
    _check_camera(cfg, spec, motions, eye, T_cam_room)

    still = np.broadcast_to(T_cam_room, (T, 4, 4))
    parts = [MeshPart.rigid("room", BACKGROUND_ID, background, pal.materials, still),
             MeshPart.rigid("body", STATIC_PART_ID, spec.static, pal.materials, still)]
    poses, axes, pivots = [], [], []
    for p, (m, (values, M)) in enumerate(zip(spec.moving, motions)):
        parts.append(MeshPart.rigid(m.name, MOVING_PART_ID0 + p, m.mesh, pal.materials, T_cam_room @ M))
        axes.append(T_cam_room[:3, :3] @ np.asarray(m.axis, np.float64))
        pivots.append(T_cam_room[:3, :3] @ np.asarray(m.pivot, np.float64) + T_cam_room[:3, 3])
        # The same motion about the joint expressed in the world frame (exactly the identity at value 0).
        poses.append(np.stack([joint_transform(m.joint_type, axes[-1], pivots[-1], v) for v in values]))

    f = 0.5 * cfg.width / np.tan(np.deg2rad(cfg.fov_deg) / 2)  # as geometry.camera.intrinsics_from_fov
    K = np.array([[f, 0.0, cfg.width / 2], [0.0, f, cfg.height / 2], [0.0, 0.0, 1.0]])
    return Scene(
        parts=tuple(parts), K=K, width=cfg.width, height=cfg.height, fps=cfg.fps,
        light_dir=T_cam_room[:3, :3] @ LIGHT_DIR_ROOM,
        joint_types=tuple(m.joint_type for m in spec.moving),
        axes=np.stack(axes), pivots=np.stack(pivots),
        joint_values=np.stack([v for v, _ in motions], 1), part_poses=np.stack(poses, 1),
        prompt=spec.prompt, seed=cfg.seed, num_tracks=cfg.num_tracks,
    )


def render_bundle(scene: Scene) -> SceneBundle:
    """Renders every frame of `scene` and its ground truth (tracks sampled on the object at frame 0).

    Raises:
      ConfigError: a moving part shows fewer than MIN_PART_PIXELS pixels at frame 0.
    """
    mesh = _stack(scene)
    T, H, W = scene.num_frames, scene.height, scene.width
    # Faces that never move (the room, the static body) are rendered once; the rest per frame, on top.
    still = _still_faces(mesh)
    base = _render(scene, mesh, 0, still)
    rgb, depth, part_ids = np.empty((T, H, W, 3), np.uint8), np.empty((T, H, W), np.float32), np.empty((T, H, W), np.uint8)
    for t in range(T):
        frame = _composite(base, _render(scene, mesh, t, ~still))
        rgb[t], depth[t], part_ids[t] = frame.rgb, frame.depth, frame.part_ids
        if t == 0:
            _check_parts_seen(scene, frame.part_ids)
            frags0 = frame.fragments

    face, bary, track_part = sample_anchors(frags0, part_ids[0], _track_counts(scene),
                                            np.random.default_rng([scene.seed, 1]))
    xy, vis = zip(*(project_anchors(mesh.vertices[t], mesh.faces, face, bary, scene.K, H, W, NEAR_M)
                    for t in range(T)))
    tracks, visibility = np.stack(xy).astype(np.float32), np.stack(vis)

    gt = GroundTruth(
        joint_types=scene.joint_types, axes=scene.axes, pivots=scene.pivots, joint_values=scene.joint_values,
        part_poses=scene.part_poses, part_ids=part_ids, depth=depth, tracks=tracks, visibility=visibility,
        track_part=track_part,
    )
    return SceneBundle(
        frames=rgb, fps=float(scene.fps), K=scene.K,
        object_masks=(part_ids >= STATIC_PART_ID) & (part_ids != HUMAN_ID), human_masks=part_ids == HUMAN_ID,
        tracks=tracks, visibility=visibility, depth=depth[0], prompt=scene.prompt, gt=gt,
    )


# ---------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Stacked:
    """All parts as one mesh: faces [F, 3] into vertices [T, V, 3] / rest_vertices [V, 3]; per face the part id
    [F] uint8 and the material [F] indexing `materials`."""

    vertices: np.ndarray
    rest_vertices: np.ndarray
    faces: np.ndarray
    face_part_id: np.ndarray
    face_material: np.ndarray
    materials: tuple[Material, ...]


def _stack(scene: Scene) -> _Stacked:
    v_off = np.cumsum([0] + [len(p.rest_vertices) for p in scene.parts[:-1]])
    m_off = np.cumsum([0] + [len(p.materials) for p in scene.parts[:-1]])
    return _Stacked(
        vertices=np.concatenate([p.vertices for p in scene.parts], axis=1),
        rest_vertices=np.concatenate([p.rest_vertices for p in scene.parts]),
        faces=np.concatenate([p.faces + o for p, o in zip(scene.parts, v_off)]),
        face_part_id=np.concatenate([np.full(len(p.faces), p.part_id, np.uint8) for p in scene.parts]),
        face_material=np.concatenate([p.face_material + o for p, o in zip(scene.parts, m_off)]),
        materials=tuple(m for p in scene.parts for m in p.materials),
    )


def _still_faces(mesh: _Stacked) -> np.ndarray:
    """[F] bool: faces whose vertices are the same in every frame."""
    still_vertex = np.all(mesh.vertices == mesh.vertices[:1], axis=(0, 2))
    return still_vertex[mesh.faces].all(1)


def _render(scene: Scene, mesh: _Stacked, t: int, subset: np.ndarray) -> _Frame:
    """Frame t of the faces in `subset` ([F] bool) alone; fragment faces index the whole stacked mesh."""
    H, W = scene.height, scene.width
    vertices = mesh.vertices[t]
    index = np.flatnonzero(subset)
    frags = rasterize(vertices, mesh.faces[index], scene.K, H, W, NEAR_M)
    hit = frags.face >= 0
    frags = dataclasses.replace(frags, face=np.append(index, -1)[frags.face])  # -1 (no face) stays -1
    face = frags.face[hit]
    local = np.einsum("nk,nkj->nj", frags.bary[hit], mesh.rest_vertices[mesh.faces[face]])

    # Two-sided flat shading: each face's normal turned towards the camera (at the origin).
    tri = vertices[mesh.faces[face]]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-20)
    normal *= -np.sign(np.einsum("nj,nj->n", normal, tri[:, 0]))[:, None]
    light = AMBIENT + DIFFUSE * np.clip(normal @ scene.light_dir, 0.0, None)
    # Surface metres per pixel: z / f, stretched by the slant (capped), to band-limit the textures.
    point = np.einsum("nk,nkj->nj", frags.bary[hit], tri)
    cos = np.abs(np.einsum("nj,nj->n", normal, point)) / np.linalg.norm(point, axis=1)
    footprint = point[:, 2] / scene.K[0, 0] / np.maximum(cos, 0.25)

    albedo = np.zeros((len(face), 3))
    material = mesh.face_material[face]
    for m in np.unique(material):
        sel = material == m
        albedo[sel] = shade_material(mesh.materials[m], local[sel], footprint[sel])
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[hit] = np.round(np.clip(albedo * light[:, None], 0.0, 1.0) * 255).astype(np.uint8)
    part_ids = np.zeros((H, W), np.uint8)
    part_ids[hit] = mesh.face_part_id[face]
    return _Frame(rgb, frags.depth.astype(np.float32), part_ids, frags)


def _composite(base: _Frame, top: _Frame) -> _Frame:
    """The z-buffer merge of two layers; `base` keeps ties, as lower face indices do in `rasterize`."""
    a, b = base.fragments, top.fragments
    win = (b.face >= 0) & ((a.face < 0) | (b.depth < a.depth))
    pick = lambda x, y: np.where(win.reshape(win.shape + (1,) * (x.ndim - 2)), y, x)
    frags = Fragments(pick(a.face, b.face), pick(a.bary, b.bary), pick(a.depth, b.depth))
    return _Frame(pick(base.rgb, top.rgb), pick(base.depth, top.depth), pick(base.part_ids, top.part_ids), frags)


def _validated(cfg) -> SyntheticConfig:
    """Re-checks a config built in code (the YAML loader already checks those it builds)."""
    if not isinstance(cfg, SyntheticConfig):
        raise ConfigError(f"synthetic: expected a SyntheticConfig, got {type(cfg).__name__}")
    return config_lib.from_dict(SyntheticConfig, config_lib.to_dict(cfg), "synthetic")


def _camera(cfg: SyntheticConfig, spec: objects.ObjectSpec) -> tuple[np.ndarray, np.ndarray]:
    """The camera's position in the room and its world-to-camera (room-to-camera) transform."""
    pick = lambda value, default: default if value is None else value
    distance = pick(cfg.camera_distance_m, spec.camera_distance_m)
    height = pick(cfg.camera_height_m, spec.camera_height_m)
    yaw = np.deg2rad(pick(cfg.camera_yaw_deg, spec.camera_yaw_deg))
    target = np.asarray(spec.target, np.float64)
    eye = np.array([target[0] + distance * np.sin(yaw), target[1] + distance * np.cos(yaw), height])
    return eye, look_at(eye, target)


def _check_camera(cfg, spec, motions, eye, T_cam_room) -> None:
    """The camera must be outside the object's box (over all frames) and see all of it in front of it."""
    pts = [spec.static.vertices] + [apply(M, m.mesh.vertices).reshape(-1, 3) for m, (_, M) in zip(spec.moving, motions)]
    pts = np.concatenate(pts)
    lo, hi = pts.min(0) - NEAR_M, pts.max(0) + NEAR_M
    keys = "synthetic.camera_distance_m, camera_height_m, camera_yaw_deg"
    where = f"camera at {np.round(eye, 3).tolist()} m (room frame, z up)"
    if np.all((eye > lo) & (eye < hi)):
        raise ConfigError(f"{keys}: {where} is inside the {cfg.object}'s bounding box "
                          f"{np.round(lo, 3).tolist()}..{np.round(hi, 3).tolist()}; move it further away")
    z = apply(T_cam_room, pts)[:, 2]
    if z.min() < NEAR_M:
        raise ConfigError(f"{keys}: with the {where}, part of the {cfg.object} is {z.min():.3f} m deep, behind "
                          f"the near plane at {NEAR_M} m; move the camera so that it faces the object")


def _track_counts(scene: Scene) -> dict[int, int]:
    P = len(scene.joint_types)
    per_part = round(MOVING_TRACK_SHARE * scene.num_tracks / P)
    counts = {STATIC_PART_ID: max(scene.num_tracks - P * per_part, 0)}
    counts.update({MOVING_PART_ID0 + p: per_part for p in range(P)})
    return counts


def _check_parts_seen(scene: Scene, part_ids: np.ndarray) -> None:
    """Every moving part must show MIN_PART_PIXELS pixels in frame 0 (part_ids [H, W])."""
    by_id = {p.part_id: p.name for p in scene.parts}
    for pid in range(MOVING_PART_ID0, MOVING_PART_ID0 + len(scene.joint_types)):
        n = int((part_ids == pid).sum())
        if n < MIN_PART_PIXELS:
            raise ConfigError(f"synthetic: moving part {by_id[pid]!r} covers {n} pixels at frame 0 (need >= "
                              f"{MIN_PART_PIXELS}); move the camera (camera_distance_m, camera_height_m, "
                              f"camera_yaw_deg) or enlarge the image (width, height)")
