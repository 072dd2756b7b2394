"""Stage II's start: a scene bundle and its object (Stage I) turned into the optimization's Stage2Data.

`prepare` runs the steps in order: the object scene rebuilt from the segmentation (stage1.build_scene), the hand
contact frames (detected from 2D proximity unless given), the contact keypoints lifted onto the object's render
(`contact_keypoints`, through `object_depth`), the HMR body moved to the depth map's depth (`align_to_depth`,
config `stage2.align: depth`), the parts' solid boxes (`scene_boxes`), the keypoints moved out of them
(`keypoints_out_of_boxes`), the arms refitted by IK to reach the keypoints (`refit_arms`), and the device arrays
built (`build_data`: human Gaussians coloured from frame 0, the object's sampled surface points and their normals
(`gaussian_normals`), the foot vertices and their contact labels, the penetration test's body points).
The optimization itself (and the closed-form keypoint alignment it starts from) is in arthoi_jax.stage2.
"""

from __future__ import annotations

from functools import partial

import cv2
import jax
import jax.numpy as jnp
import numpy as np

from arthoi_jax.body import ik
from arthoi_jax.body import joint_names as jn
from arthoi_jax.body.human_gaussians import pose_gaussians, sample_surface_gaussians
from arthoi_jax.body.model import BodyModel, BodyParams, forward
from arthoi_jax.config import RenderConfig, Stage2Config
from arthoi_jax.errors import InputError
from arthoi_jax.geometry.boxes import box_sdf
from arthoi_jax.part_boxes import part_boxes, posed_boxes
from arthoi_jax.render.rasterize import render
from arthoi_jax.render.types import Camera
from arthoi_jax.stage1 import Stage1Scene, move_gaussians
from arthoi_jax.stage2 import HAND_JOINTS, Stage2Data

FINGER_JOINTS = np.array([i for i, n in enumerate(jn.SKELETON)
                          if any(f in n for f in ("thumb", "index", "middle", "ring", "pinky"))])
FOOT_JOINTS = tuple(jn.SKELETON.index(n) for n in ("left_ankle", "left_foot", "right_ankle", "right_foot"))
MAX_FOOT_VERTICES = 256
# The arm refit's clearance pass (refit_arms): steps, rate and weight per m^2 of depth, the generator's
# (synthetic.hoi: CLEAR_ITERS, CLEAR_LR, CLEARANCE_WEIGHT).
CLEAR_ITERS, CLEAR_LR, CLEAR_WEIGHT = 300, 0.005, 1000.0
NORMAL_NEIGHBOURS = 16  # object points in the local plane fit of each surface normal (gaussian_normals)


def gaussian_normals(means: np.ndarray, part: np.ndarray, neighbours: int = NORMAL_NEIGHBOURS) -> np.ndarray:
    """Outward unit normals [N, 3] of frame-0 surface points means [N, 3] (world = camera 0) with part labels [N]:
    the least-variance direction of each point's nearest `neighbours` points of the same part (local PCA), turned
    towards camera 0's centre (the visible side is the outside). Not the Gaussians' shortest axis: the object
    Gaussians are isotropic back-projections, whose "shortest axis" was the x axis for every one of them (drawer:
    median 125 deg from the faces' normals; PCA 0 deg, 90th percentile 27 deg at the box edges). Parts apart, so
    that a drawer's face does not bend towards the cabinet's."""
    from scipy.spatial import cKDTree

    normals = np.zeros_like(np.asarray(means, np.float64))
    for p in np.unique(part):
        ids = np.flatnonzero(part == p)
        if len(ids) < 3:  # no plane through fewer points: face the camera
            normals[ids] = -means[ids] / np.maximum(np.linalg.norm(means[ids], axis=-1, keepdims=True), 1e-9)
            continue
        x = np.asarray(means[ids], np.float64)
        _, nb = cKDTree(x).query(x, min(neighbours, len(ids)))
        d = x[nb] - x[nb].mean(1, keepdims=True)
        n = np.linalg.eigh(np.einsum("nki,nkj->nij", d, d))[1][:, :, 0]  # eigenvalues ascending
        normals[ids] = np.where((np.sum(n * x, -1) > 0)[:, None], -n, n)
    return normals.astype(np.float32)


def foot_vertex_labels(model: BodyModel, foot_contact: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Foot vertices (dominant skinning joint an ankle or foot) [F] and their contact labels [T, F]."""
    owner = np.argmax(np.asarray(model.weights), axis=1)
    idx, which = [], []
    for k, j in enumerate(FOOT_JOINTS):
        v = np.flatnonzero(owner == j)
        v = v[np.linspace(0, len(v) - 1, min(len(v), MAX_FOOT_VERTICES // 4)).astype(int)] if len(v) else v
        idx.append(v)
        which.append(np.full(len(v), k))
    idx, which = np.concatenate(idx), np.concatenate(which)
    return idx, foot_contact[:, which].astype(np.float32)


def _resize(x: np.ndarray, hw) -> np.ndarray:
    return np.stack([cv2.resize(f, (hw[1], hw[0]), interpolation=cv2.INTER_AREA) for f in x])


def build_data(model: BodyModel, init: BodyParams, frames: np.ndarray, human_masks: np.ndarray, K: np.ndarray,
               obj: Stage1Scene, poses: np.ndarray, keypoints: np.ndarray, keypoint_weights: np.ndarray,
               hand_contact: np.ndarray, foot_contact: np.ndarray | None, tracks: np.ndarray,
               track_vis: np.ndarray, cfg: Stage2Config, seed: int = 0,
               T_cam_world: np.ndarray | None = None) -> Stage2Data:
    """Stage2Data from host arrays (bundle conventions; keypoints [T, 2, 21, 3] world, weights [T, 2, 21],
    hand_contact [T, 2] bool, foot_contact [T, 4] bool or None (no foot constraint), T_cam_world [T, 4, 4] or
    None (static camera))."""
    T, H, W = human_masks.shape
    if init.global_orient.shape[0] != T:
        raise InputError(f"smplx_init: {init.global_orient.shape[0]} frames for a {T}-frame video")
    h, w = max(1, H // cfg.render_downsample), max(1, W // cfg.render_downsample)
    K_render = np.diag([w / W, h / H, 1.0]) @ K
    rng = np.random.default_rng(seed)
    v0 = np.asarray(forward(model, jax.tree.map(lambda x: x[0], init).replace(betas=init.betas)).vertices)
    template = sample_surface_gaussians(v0, np.asarray(model.faces), cfg.human_gaussians, seed=seed)
    template = template.replace(colors=jnp.asarray(_colours_from_frame(template, v0, model, frames[0],
                                                                       human_masks[0], K)))
    valid = np.asarray(obj.valid)
    n_surf = min(cfg.surface_points, int(valid.sum()))
    surface_idx = np.sort(rng.choice(np.flatnonzero(valid), n_surf, replace=False))
    means = np.asarray(obj.gaussians.means)
    normals = gaussian_normals(means[valid], np.asarray(obj.part_of)[valid])[np.searchsorted(
        np.flatnonzero(valid), surface_idx)]  # fitted on every object Gaussian, kept for the sampled ones
    fc = np.ones((T, 4), bool) if foot_contact is None else foot_contact
    foot_idx, foot_lab = foot_vertex_labels(model, fc)
    if foot_contact is None:
        foot_lab = np.zeros_like(foot_lab)
    # Finger vertices are left to the contact terms: they grip the handle, and behind a handle bar (a thin part
    # whose back is not seen) they are "behind the surface" without being inside (door_hoi's ground truth).
    owner = np.argmax(np.asarray(model.weights), axis=1)
    candidates = np.flatnonzero(~np.isin(owner, FINGER_JOINTS))
    if cfg.penetration_model == "box":  # no [N, S] table: every non-finger vertex is cheap to test
        body_points = candidates
    elif cfg.penetration_model == "arm_box":  # the forearms and hands, fingers included
        body_points = np.concatenate([ik.arm_vertices(model, s) for s in ("left", "right")])
    else:
        body_points = np.sort(rng.choice(candidates, min(cfg.body_points, len(candidates)), replace=False))
    boxes = scene_boxes(obj, np.asarray(poses).shape[1], cfg)
    f32 = lambda x: jnp.asarray(x, jnp.float32)  # noqa: E731
    obj_cols = np.concatenate([np.asarray(obj.gaussians.colors)[:, :3], np.zeros((valid.shape[0], 1))], -1)
    return Stage2Data(
        model=model, init=init, template=template, images=f32(_resize(frames, (h, w))) / 255.0,
        human_masks=f32(_resize(human_masks.astype(np.float32), (h, w))), K_render=f32(K_render), obj=obj,
        object_poses=f32(poses), object_colors=f32(obj_cols), surface_idx=jnp.asarray(surface_idx, jnp.int32),
        surface_normals0=f32(normals), keypoints=f32(keypoints.reshape(T, 42, 3)),
        keypoint_weights=f32(keypoint_weights.reshape(T, 42)), hand_contact=f32(hand_contact),
        foot_vertices=jnp.asarray(foot_idx, jnp.int32), foot_contact=f32(foot_lab),
        body_points=jnp.asarray(body_points, jnp.int32), part_boxes=f32(boxes), tracks=f32(tracks),
        track_vis=jnp.asarray(track_vis),
        frame_valid=jnp.ones(T, bool),
        T_cam_world=f32(np.tile(np.eye(4), (T, 1, 1)) if T_cam_world is None else T_cam_world))


def _colours_from_frame(template, v0, model, frame, mask, K) -> np.ndarray:
    """Human Gaussian colours sampled from the first frame at their projections (skin where off the mask)."""
    g = pose_gaussians(template, jnp.asarray(v0), model.faces)
    m = np.asarray(g.means)
    uv = m[:, :2] / m[:, 2:3] * [K[0, 0], K[1, 1]] + [K[0, 2], K[1, 2]]
    H, W = mask.shape
    col, row = np.clip(uv[:, 0].astype(int), 0, W - 1), np.clip(uv[:, 1].astype(int), 0, H - 1)
    on = mask[row, col] & (m[:, 2] > 0)
    return np.where(on[:, None], frame[row, col] / 255.0, np.asarray(template.colors)).astype(np.float32)


def align_to_depth(model: BodyModel, init: BodyParams, depth: np.ndarray, mask: np.ndarray, K: np.ndarray,
                   cell_px: int = 4, min_cells: int = 20) -> BodyParams:
    """The HMR body [T] moved along the viewing ray of its frame-0 pelvis so that its visible surface lies at the
    frame-0 depth map's depth over the human mask (median over cell_px x cell_px cells of each side's nearest
    depth: the body's vertices splatted, the mask's pixels). The depth map carries the object's metric scale
    (Stage I is lifted with it), so body and object meet in one frame, and the cue leaves the pose's errors out:
    the hand keypoints' gap also holds the HMR arm error. depth [H, W] metres (0: unknown), mask [H, W] bool,
    both of camera 0 (= world). Unchanged when fewer than min_cells cells of the mask have a depth."""
    H, W = mask.shape
    h, w = -(-H // cell_px), -(-W // cell_px)

    def cell_min(rows, cols, z):
        grid = np.full(h * w, np.inf)
        np.minimum.at(grid, rows // cell_px * w + cols // cell_px, z)
        return grid[np.isfinite(grid)]

    rows, cols = np.nonzero(mask & (depth > 0))
    scene = cell_min(rows, cols, depth[rows, cols])
    if scene.size < min_cells:
        return init
    out = forward(model, jax.tree.map(lambda x: x[0], init).replace(betas=init.betas))
    v = np.asarray(out.vertices, np.float64)
    v = v[v[:, 2] > 1e-3]
    uv = v[:, :2] / v[:, 2:] * [K[0, 0], K[1, 1]] + [K[0, 2], K[1, 2]]
    inside = (uv[:, 0] >= 0) & (uv[:, 0] < W) & (uv[:, 1] >= 0) & (uv[:, 1] < H)
    body = cell_min(uv[inside, 1].astype(int), uv[inside, 0].astype(int), v[inside, 2])
    if body.size < min_cells:
        return init
    pelvis = np.asarray(out.joints[0], np.float64)
    ray = pelvis / np.linalg.norm(pelvis)
    shift = (np.median(scene) - np.median(body)) / ray[2] * ray
    return init.replace(transl=init.transl + jnp.asarray(shift, init.transl.dtype))


def scene_boxes(obj: Stage1Scene, num_parts: int, cfg: Stage2Config) -> np.ndarray:
    """The parts' solid boxes [P + 1, 5, 3] at frame 0 (part_boxes) from the object's valid Gaussians."""
    valid = np.asarray(obj.valid)
    return part_boxes(np.asarray(obj.gaussians.means)[valid], np.asarray(obj.part_of)[valid], num_parts,
                      cfg.penetration_thickness_m, cfg.penetration_pad_m)


def keypoints_out_of_boxes(keypoints: np.ndarray, weights: np.ndarray, boxes: np.ndarray, poses: np.ndarray,
                           clearance: float) -> np.ndarray:
    """The lifted keypoints [T, 2, 21, 3] (weights [T, 2, 21] > 0) closer than `clearance` to a part's box
    (boxes [P + 1, 5, 3] at part poses [T, P, 4, 4]; part_boxes) moved out along the box's signed-distance gradient
    to that distance: a hand joint lies inside the hand, a finger's half thickness or more off the surface it
    touches, and a target inside the part sets L_k against the penetration term (fridge_hoi: a quarter of the
    lifted keypoints within 1 cm of the door's box, 9 % inside; the ground truth's hand joints 5 %, none inside)."""
    if poses.shape[1] == 0:
        return keypoints
    centre, axes, half = (jnp.asarray(x, jnp.float32) for x in posed_boxes(np.asarray(boxes, np.float64),
                                                                          np.asarray(poses, np.float64)))
    sdf = jax.vmap(box_sdf)  # frames
    grad = jax.vmap(jax.vmap(jax.grad(lambda x, c, a, h: box_sdf(x[None], c, a, h)[0]), in_axes=(0, None, None, None)))
    x = jnp.asarray(keypoints.reshape(len(keypoints), -1, 3), jnp.float32)
    for _ in range(2):  # exact off the boxes' edges in one step; a second one settles the corners
        d = sdf(x, centre, axes, half)  # [T, 42]
        g = grad(x, centre, axes, half)
        x = x + jnp.maximum(clearance - d, 0.0)[..., None] * g / jnp.maximum(jnp.linalg.norm(g, axis=-1,
                                                                                             keepdims=True), 1e-9)
    out = np.asarray(x).reshape(keypoints.shape)
    return np.where(weights[..., None] > 0, out, keypoints).astype(keypoints.dtype)


def refit_arms(model: BodyModel, init: BodyParams, keypoints: np.ndarray, weights: np.ndarray,
               clear: tuple[np.ndarray, np.ndarray, float] | None = None) -> BodyParams:
    """The arms (collar, shoulder, elbow, wrist) of the hands with lifted contact keypoints turned by IK
    (`body.ik.solve_reach`: all frames together, near the initial pose, smooth in time) so that the hand's
    skeleton joints reach them; frames without keypoints follow by the smoothness. keypoints [T, 2, 21, 3] world,
    weights [T, 2, 21] (lift_keypoints). Unchanged without keypoints.
    clear: (boxes [P + 1, 5, 3] (part_boxes), part poses [T, P, 4, 4], margin m) or None: a second IK pass from
    the reach keeps those arms' forearm and hand vertices the margin outside the posed boxes (body.ik.Clearance;
    CLEAR_ITERS steps at CLEAR_LR, as the ground truth's generator)."""
    sides = [s for s in range(2) if weights[:, s].sum() > 0]
    if not sides:
        return init
    names, targets, w = [], [], []
    for s in sides:
        for k, j in enumerate(HAND_JOINTS[s]):
            if j < jn.NUM_JOINTS and weights[:, s, k].sum() > 0:  # fingertips are vertex keypoints, not joints
                names.append(jn.SKELETON[j])
                targets.append(keypoints[:, s, k])
                w.append(weights[:, s, k])
    free = tuple(f"{('left', 'right')[s]}_{j}" for s in sides for j in ("collar", "shoulder", "elbow", "wrist"))
    targets, w = np.stack(targets, 1), np.stack(w, 1)
    body_pose, _ = ik.solve_reach(model, init, tuple(names), targets, w, free)
    if clear is not None and clear[1].shape[1] > 0:
        boxes, poses, margin = clear
        verts = np.concatenate([ik.arm_vertices(model, ("left", "right")[s]) for s in sides])
        c = ik.Clearance(jnp.asarray(verts, jnp.int32), *(jnp.asarray(x, jnp.float32) for x in posed_boxes(
            np.asarray(boxes, np.float64), np.asarray(poses, np.float64))), margin, CLEAR_WEIGHT)
        body_pose, _ = ik.solve_reach(model, init.replace(body_pose=body_pose), tuple(names), targets, w, free,
                                      iters=CLEAR_ITERS, lr=CLEAR_LR, clear=c)
    return init.replace(body_pose=body_pose)


@partial(jax.jit, static_argnames=("render_cfg", "height", "width"))
def _render_object(obj: Stage1Scene, poses, K, T_cam_world, valid, render_cfg, height, width):
    cam = Camera(K=K, T_cam_world=T_cam_world, width=width, height=height)
    out = render(move_gaussians(obj, poses), cam, render_cfg, background=jnp.zeros(3), valid=valid)
    return out.alpha, out.depth


def object_depth(obj: Stage1Scene, poses: np.ndarray, K: np.ndarray, image_hw: tuple[int, int], downsample: int,
                 render_cfg: RenderConfig, moving_only: bool = False,
                 T_cam_world: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The object render's alpha and expected depth [T, h, w] (camera t's z) at world part poses [T, P, 4, 4]
    (image / downsample) through the cameras T_cam_world [T, 4, 4] (None: static).
    moving_only: render the moving parts alone (part_of > 0), without the static body."""
    H, W = image_hw
    h, w = max(1, H // downsample), max(1, W // downsample)
    Kr = jnp.asarray(np.diag([w / W, h / H, 1.0]) @ K, jnp.float32)
    valid = obj.valid & (obj.part_of > 0) if moving_only else obj.valid
    cams = np.tile(np.eye(4), (len(poses), 1, 1)) if T_cam_world is None else T_cam_world
    out = [_render_object(obj, jnp.asarray(q, jnp.float32), Kr, jnp.asarray(c, jnp.float32), valid, render_cfg, h, w)
           for q, c in zip(poses, cams)]
    return np.stack([np.asarray(a) for a, _ in out]), np.stack([np.asarray(d) for _, d in out])


def contact_keypoints(bundle, obj: Stage1Scene, poses: np.ndarray, contact: np.ndarray, cfg: Stage2Config,
                      render_cfg: RenderConfig) -> tuple[np.ndarray, np.ndarray]:
    """Contact keypoints [T, 2, 21, 3] (world metres) and weights [T, 2, 21] of a bundle's hand keypoints on the
    contact frames contact [T, 2], lifted with the render of the object at part poses [T, P, 4, 4]
    (contact.lift_keypoints: with cfg.contact_rigid_parts the parts rendered rigid, per-keypoint offsets from
    contact.grip_offsets); with cfg.contact_anchor, held rigid in the held part's frame (contact.anchor_keypoints)."""
    from arthoi_jax import contact as contact_lib

    H, W = bundle.human_masks.shape[1:]
    K = np.asarray(bundle.K, np.float64)
    # Lifted over the moving part's render only: behind a hand the whole object often shows the static body
    # (the cabinet behind a drawer handle), 10-30 cm behind the touched handle (drawer_hoi).
    lift_obj = obj
    if cfg.contact_rigid_parts:
        lift_obj = obj.replace(weights=jnp.asarray(contact_lib.rigid_parts(obj.weights)))
    alpha, depth = object_depth(lift_obj, poses, K, (H, W), cfg.render_downsample, render_cfg, moving_only=True,
                                T_cam_world=bundle.T_cam_world)
    offsets = contact_lib.grip_offsets(cfg.contact_offset_m, cfg.contact_finger_offsets_m, cfg.contact_thumb_offsets_m)
    kp, kw = contact_lib.lift_keypoints(bundle.hand_keypoints, bundle.hand_keypoint_conf, contact, depth, alpha, K,
                                        (H, W), cfg.contact_conf, cfg.contact_alpha, offsets,
                                        cfg.contact_depth_band_m, cfg.contact_window_px)
    if bundle.T_cam_world is not None:  # lifted in camera t -> world
        inv = np.linalg.inv(np.asarray(bundle.T_cam_world, np.float64))
        kp = np.where(kw[..., None] > 0, np.einsum("tij,tknj->tkni", inv[:, :3, :3], kp)
                      + inv[:, None, None, :3, 3], 0.0).astype(kp.dtype)
    hand_part = np.full(2, -1)
    if poses.shape[1] > 0 and (cfg.contact_anchor or cfg.contact_depth_shift):
        means, part_of = np.asarray(obj.gaussians.means), np.asarray(obj.part_of)
        valid = np.asarray(obj.valid)
        parts = [means[valid & (part_of == p + 1)] for p in range(poses.shape[1])]
        hand_part = contact_lib.held_part(kp, kw, poses, parts)
    if cfg.contact_anchor:
        kp, kw = contact_lib.anchor_keypoints(kp, kw, contact, poses, hand_part)
    if cfg.contact_depth_shift:  # frame 0 = camera 0 = world
        dp, ok = contact_lib.depth_keypoints(bundle.hand_keypoints[0], bundle.hand_keypoint_conf[0], bundle.depth,
                                             bundle.human_masks[0], K, cfg.contact_conf)
        kp, _ = contact_lib.depth_shift(kp, kw, contact, dp, ok, poses, hand_part)
    return kp, kw


def prepare(bundle, seg, poses: np.ndarray, model: BodyModel, cfg: Stage2Config, stage1_cfg, render_cfg: RenderConfig,
            binding_radius_m: float, contact: np.ndarray | None = None) -> Stage2Data:
    """Stage2Data of a scene bundle with a human, its segmentation and the object part poses [T, P, 4, 4]
    (Stage I's; in joint mode the closed-form initial poses). contact: [T, 2] bool hand-contact frames, or None to
    detect them from 2D proximity of the hand keypoints to the moving-part masks (see `contact`).

    Raises InputError when the bundle has no HMR initialization or no hand keypoints.
    """
    from arthoi_jax import contact as contact_lib
    from arthoi_jax import stage1
    from arthoi_jax.body.model import params_from_smplx

    if bundle.smplx_init is None:
        raise InputError("bundle.smplx_init: Stage II needs an SMPL-X initialization (HMR) of the person")
    if bundle.hand_keypoints is None:
        raise InputError("bundle.hand_keypoints: Stage II's contact keypoints need 2D hand keypoints")
    T, H, W = bundle.human_masks.shape
    K = np.asarray(bundle.K, np.float64)
    obj = stage1.build_scene(seg, K, (H, W), stage1_cfg, binding_radius_m)
    if contact is None:
        contact = contact_lib.detect_contact_frames(bundle.hand_keypoints, bundle.hand_keypoint_conf,
                                                    seg.part_masks.any(axis=1), cfg.contact_conf,
                                                    cfg.contact_radius_px)
    kp, kw = contact_keypoints(bundle, obj, poses, contact, cfg, render_cfg)
    M = obj.track_points.shape[0]
    tracks = np.zeros((T, M, 2), np.float32)
    vis = np.zeros((T, M), bool)
    tracks[:, : bundle.tracks.shape[1]] = bundle.tracks
    vis[:, : bundle.tracks.shape[1]] = bundle.visibility
    init = params_from_smplx(model, bundle.smplx_init)
    if cfg.align == "depth":
        init = align_to_depth(model, init, bundle.depth, bundle.human_masks[0], K)
    boxes = scene_boxes(obj, poses.shape[1], cfg)
    if cfg.keypoint_clearance_m > 0:
        kp = keypoints_out_of_boxes(kp, kw, boxes, poses, cfg.keypoint_clearance_m)
    if cfg.arm_ik and cfg.use_kinematic_loss:
        clear = (boxes, poses, cfg.penetration_clearance_m) if cfg.arm_ik_clearance else None
        init = refit_arms(model, init, kp, kw, clear)
    return build_data(model, init, bundle.frames, bundle.human_masks, K, obj, poses, kp, kw, contact,
                      bundle.foot_contact, tracks, vis, cfg, T_cam_world=bundle.T_cam_world)
