"""Stage I: object articulation by differentiable rendering (paper Sec. 3.2 Stage I, Eq. 4-8, App. A). No IO.

Per frame t = 1..T-1 and moving part p, a pose T_p(t) drives the canonical object Gaussians (Eq. 4):
mu_i(t) = w_s,i mu_i(0) + sum_p w_p,i T_p(t) mu_i(0), the orientation of each Gaussian turning with its dominant
part. The pose is either a free SE(3) (a tangent delta around an initial pose, jaxlie) or a 1-DOF joint value
(`articulation: revolute | prismatic | auto`, axis and pivot fixed from a joint fit to the initial poses).

Initialization: Adam at the paper's lr 1e-4 moves a parameter about 1e-4 per step, 0.02 (rad or m) in 200 steps,
so it cannot follow a door turning degrees per frame from the previous frame's pose. Each frame therefore starts
from a closed-form pose (`init: joint`, default): RANSAC PnP of the part's tracks per frame (frame-0 3D points from
the depth -> 2D positions at t), a joint fitted to those poses, then refined on all frames' tracks at once (one
shared axis: per-frame PnP of a planar part seen obliquely is ill-conditioned, 25 deg off on LK tracks of the door,
the shared-axis fit 3 deg). The joint is then aligned to the images (`init_photometric`, beyond the paper:
LK tracks slide along a striped front that grows as it comes closer, and a prismatic direction rests on that
growth; a revolute axis fitted to them is 4-5 deg off on the LK cabinet2's doors, 0.1 deg once aligned).
`init: pnp` (per-frame PnP) and `init: previous` (warm start from the previous frame)
are kept for comparison. In the 1-DOF modes (beyond the paper), frames where a part has lost its tracks take its
value from a search of the render loss, and with `joint_iters` > 0 the shared joint and all frames' values are
then refined on all frames' losses together (arthoi_jax/stage1_joint.py, `refine_joints`).
Adam then refines with the paper's losses, weights, clipping and early stopping.

One jitted function runs `steps_per_chunk` steps with lax.scan (no host round trip inside), vmapped over scenes
(`run_steps_batched`); the host loop `optimize_scenes` checks for early stopping and non-finite values once per
chunk. It serves one scene (`optimize`, a batch of one) and a bucket of scenes (arthoi_jax.batch, which pads,
shards and checkpoints around it). Shapes are padded (Gaussians, tracks, pairs to multiples of `PAD`) so one
compile serves every frame and every scene of the same image size.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from functools import partial

import cv2
import jax
import jax.numpy as jnp
import jaxlie
import numpy as np
import optax
from flax import struct
from tqdm.auto import tqdm

from arthoi_jax import losses, stage1_joint
from arthoi_jax.articulation import (
    PRISMATIC,
    REVOLUTE,
    JointFit,
    fit_joint,
    hinge_on_part,
    joint_candidates,
    joint_transform,
    photometric_error,
    pick_joint,
    refine_joint_photometric,
    reprojection_error_px,
)
from arthoi_jax.config import RenderConfig, Stage1Config
from arthoi_jax.errors import OptimizationError
from arthoi_jax.object_gaussians import pad_gaussians
from arthoi_jax.preprocess.lk_tracker import corner_ratio
from arthoi_jax.render.rasterize import render
from arthoi_jax.render.types import Camera, Gaussians
from arthoi_jax.segmentation import PartSegmentation, pnp_poses

PAD = 256
MIN_INIT_TRACKS = 12  # init_min_corner_ratio keeps every track of a part that would be left with fewer
# init_photometric (photometric_samples): erosion of the part mask, blur of the grey frames (the basin of the
# wood-grain stripes), fewest pixels worth aligning. Drawer on LK tracks (bundle depth, before the trimming step
# of refine_joint_photometric; scratch, session 6), erosion 1 / 3 / 5 px: axis 2.3 / 0.2 / 3.8 deg; blur sigma
# 0.7 / 1 / 1.5 px: 0.5 / 0.2 / 1.5 deg.
PHOTOMETRIC_ERODE_PX = 3
PHOTOMETRIC_BLUR_PX = 1.0
MIN_PHOTOMETRIC_PIXELS = 50
# A joint that reprojects its tracks within this median error (px) is kept as it is: the alignment is good to
# ~0.5 px on the drawer (from the exact tracks' joint, 0.00 deg, it moves to 0.7 deg, displacement up to 0.4 cm
# off); the LK tracks' joint reprojects at 0.60 px, exact tracks at 0.00.
PHOTOMETRIC_MIN_TRACK_PX = 0.25
# ... and aligns only the frames where the part keeps at least this many tracks: where all are lost its frame-0 face
# has turned away or is hidden (the LK lid's top face from frame 8 of 32: aligning every frame, axis 44 deg off;
# the tracked frames, 2.6 deg).
PHOTOMETRIC_MIN_TRACKS = 3
# With `auto`, where the two joint types' track errors are within this factor, both are aligned and the type is
# picked on the alignment's errors instead (articulation.pick_joint). Track errors prismatic / revolute on LK
# tracks: lid 1.05 (turns 15 deg before its tracks are lost: prismatic by the tracks, revolute by the images),
# drawer 0.92, cabinet2's doors 1.97 and 1.35, door 4.8, fridge 10.4.
TYPE_MARGIN = 1.5
TERMS = ("rgb", "silhouette", "tracking", "articulation", "smoothness")


@struct.dataclass
class Stage1Scene:
    """Everything fixed over the optimization of one scene. G Gaussians, M tracks, E pairs, P parts (padded)."""

    gaussians: Gaussians  # [G] canonical (frame-0) object Gaussians, world = camera-0 frame
    valid: jnp.ndarray  # [G] bool, False for padding
    weights: jnp.ndarray  # [G, P + 1] (w_s, w_d per part)
    part_of: jnp.ndarray  # [G] int32 dominant part (0 static): whose rotation turns the Gaussian
    track_points: jnp.ndarray  # [M, 3] metres, frame-0 3D points of the tracks
    track_part: jnp.ndarray  # [M] int32, p >= 1 for tracks of moving part p, else 0 (unused)
    pairs: jnp.ndarray  # [E, 2] int32 binding pairs (Eq. 3)
    pair_valid: jnp.ndarray  # [E] bool
    binding_radius: jnp.ndarray  # [] metres, the unit of L_a
    K: jnp.ndarray  # [3, 3] intrinsics of the tracks (full resolution)
    K_render: jnp.ndarray  # [3, 3] intrinsics of the rendered (downsampled) images
    joint_type: jnp.ndarray  # [P] int32 REVOLUTE | PRISMATIC (1-DOF modes)
    joint_axis: jnp.ndarray  # [P, 3] unit
    joint_pivot: jnp.ndarray  # [P, 3] metres


@struct.dataclass
class Stage1Frame:
    """The observations and initialization of one frame t >= 1 (h x w: render resolution)."""

    image: jnp.ndarray  # [h, w, 3] float in [0, 1]
    mask: jnp.ndarray  # [h, w] float object mask M^o(t)
    tracks: jnp.ndarray  # [M, 2] pixels (full resolution)
    track_vis: jnp.ndarray  # [M] bool
    init_pose: jnp.ndarray  # [P, 4, 4] free_se3: the tangent delta is taken around this pose
    init_value: jnp.ndarray  # [P] 1-DOF modes: the joint value the delta is added to
    prev_poses: jnp.ndarray  # [2, P, 4, 4] poses at t-1 and t-2 (for L_s)
    smooth_valid: jnp.ndarray  # [] bool, t >= 2
    # [4, 4] world-to-camera extrinsics of frame t (world = camera 0; identity: a static camera)
    T_cam_world: jnp.ndarray = struct.field(default_factory=lambda: np.eye(4, dtype=np.float32))


@struct.dataclass
class Stage1State:
    params: jnp.ndarray  # [P, 6] se(3) tangent (v, omega) or [P, 1] joint value delta
    opt_state: optax.OptState
    step: jnp.ndarray  # [] int32 steps taken
    loss: jnp.ndarray  # [] last total loss
    terms: jnp.ndarray  # [5] last loss terms, order TERMS (weighted)
    best: jnp.ndarray  # [] best total loss so far (early stopping)
    since_best: jnp.ndarray  # [] int32
    done: jnp.ndarray  # [] bool
    bad_step: jnp.ndarray  # [] int32 first step with a non-finite loss or gradient, -1 if none
    bad_what: jnp.ndarray  # [6] bool: which of TERMS + ("gradient",) was non-finite at bad_step


def _optimizer(cfg: Stage1Config) -> optax.GradientTransformation:
    return optax.chain(optax.clip_by_global_norm(cfg.grad_clip), optax.adam(cfg.lr))


def _is_free(cfg: Stage1Config) -> bool:
    return cfg.articulation == "free_se3"


def init_state(cfg: Stage1Config, num_parts: int) -> Stage1State:
    params = jnp.zeros((num_parts, 6 if _is_free(cfg) else 1), jnp.float32)
    return Stage1State(params=params, opt_state=_optimizer(cfg).init(params), step=jnp.int32(0),
                       loss=jnp.float32(jnp.inf), terms=jnp.zeros(len(TERMS), jnp.float32),
                       best=jnp.float32(jnp.inf), since_best=jnp.int32(0), done=jnp.bool_(False),
                       bad_step=jnp.int32(-1), bad_what=jnp.zeros(len(TERMS) + 1, bool))


def part_poses(params: jnp.ndarray, scene: Stage1Scene, frame: Stage1Frame, cfg: Stage1Config) -> jnp.ndarray:
    """[P, 4, 4] poses (frame 0 -> t) of the moving parts for the parameters."""
    if _is_free(cfg):
        return (jaxlie.SE3.from_matrix(frame.init_pose) @ jaxlie.SE3.exp(params)).as_matrix()
    return jax.vmap(joint_transform)(scene.joint_type, scene.joint_axis, scene.joint_pivot,
                                     frame.init_value + params[:, 0])


def _quat_mul(a: jnp.ndarray, b: jnp.ndarray) -> jnp.ndarray:
    aw, ax, ay, az = jnp.moveaxis(a, -1, 0)
    bw, bx, by, bz = jnp.moveaxis(b, -1, 0)
    return jnp.stack([aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
                      aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw], -1)


def move_gaussians(scene: Stage1Scene, poses: jnp.ndarray) -> Gaussians:
    """Eq. 4: the canonical Gaussians at poses [P, 4, 4] -> Gaussians (means blended by the weights, orientations
    turned by each Gaussian's dominant part)."""
    g = scene.gaussians
    all_poses = jnp.concatenate([jnp.eye(4, dtype=poses.dtype)[None], poses], 0)  # [P + 1, 4, 4], 0: static
    moved = jnp.einsum("pij,nj->pni", all_poses[:, :3, :3], g.means) + all_poses[:, None, :3, 3]
    means = jnp.einsum("np,pni->ni", scene.weights, moved)
    q_parts = jaxlie.SO3.from_matrix(all_poses[:, :3, :3]).wxyz  # [P + 1, 4]
    quats = _quat_mul(q_parts[scene.part_of], g.quats)
    return g.replace(means=means, quats=quats)


def loss_terms(params: jnp.ndarray, scene: Stage1Scene, frame: Stage1Frame, cfg: Stage1Config,
               render_cfg: RenderConfig) -> jnp.ndarray:
    """[5] weighted loss terms (order TERMS) of Eq. 5 at the parameters; the objective is their sum."""
    poses = part_poses(params, scene, frame, cfg)
    g_t = move_gaussians(scene, poses)
    zero = jnp.zeros((), params.dtype)
    if cfg.use_render_loss:
        h, w = frame.mask.shape
        cam = Camera(K=scene.K_render, T_cam_world=frame.T_cam_world, width=w, height=h)
        out = render(g_t, cam, render_cfg, background=jnp.zeros(3, params.dtype), valid=scene.valid)
        rgb, sil = losses.reconstruction_loss(out.rgb, out.alpha, frame.image, frame.mask, cfg.beta_o)
        rgb, sil = cfg.lambda_r * rgb, cfg.lambda_r * sil
    else:
        rgb = sil = zero
    if cfg.use_tracking_loss:
        all_poses = jnp.concatenate([jnp.eye(4, dtype=poses.dtype)[None], poses], 0)
        T = all_poses[scene.track_part]
        pts = jnp.einsum("mij,mj->mi", T[:, :3, :3], scene.track_points) + T[:, :3, 3]
        C = frame.T_cam_world  # world -> camera t
        pts = jnp.einsum("ij,mj->mi", C[:3, :3], pts, precision=jax.lax.Precision.HIGHEST) + C[:3, 3]
        weight = (frame.track_vis & (scene.track_part > 0)).astype(params.dtype)
        tr = cfg.lambda_tr * losses.tracking_loss(pts, scene.K, frame.tracks, weight, cfg.track_robust_px)
    else:
        tr = zero
    if cfg.use_articulation_loss:
        art = cfg.lambda_a * losses.articulation_loss(g_t.means, scene.gaussians.means, scene.pairs,
                                                      scene.pair_valid, scene.binding_radius)
    else:
        art = zero
    if cfg.use_smoothness_loss:
        se3 = jaxlie.SE3.from_matrix
        sm = cfg.lambda_s * losses.smoothness_loss(se3(poses), se3(frame.prev_poses[0]), se3(frame.prev_poses[1]),
                                                   frame.smooth_valid)
    else:
        sm = zero
    return jnp.stack([rgb, sil, tr, art, sm])


def step(state: Stage1State, scene: Stage1Scene, frame: Stage1Frame, cfg: Stage1Config,
         render_cfg: RenderConfig) -> Stage1State:
    """One Adam step with clipping, early stopping and the non-finite guard (a finished state is left as is)."""

    def objective(p):
        terms = loss_terms(p, scene, frame, cfg, render_cfg)
        return jnp.sum(terms), terms

    (loss, terms), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
    grad_ok = jnp.all(jnp.isfinite(grads))
    ok = jnp.isfinite(loss) & grad_ok
    updates, opt_state = _optimizer(cfg).update(grads, state.opt_state, state.params)
    active = ~state.done & ok
    keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(active, a, b), new, old)
    improved = loss < state.best * (1.0 - cfg.early_stop_rel_tol)
    since = jnp.where(improved, 0, state.since_best + 1)
    stepped = state.step + active.astype(jnp.int32)
    first_bad = ~state.done & ~ok & (state.bad_step < 0)
    return Stage1State(
        params=keep(optax.apply_updates(state.params, updates), state.params),
        opt_state=keep(opt_state, state.opt_state),
        step=stepped,
        loss=jnp.where(state.done, state.loss, loss),
        terms=jnp.where(state.done, state.terms, terms),
        best=jnp.where(active & improved, loss, state.best),
        since_best=jnp.where(state.done, state.since_best, since),
        done=state.done | ~ok | (since >= cfg.early_stop_patience) | (stepped >= cfg.iters_per_frame),
        bad_step=jnp.where(first_bad, state.step, state.bad_step),
        bad_what=jnp.where(first_bad, jnp.concatenate([~jnp.isfinite(terms), ~grad_ok[None]]), state.bad_what),
    )


def run_steps(state: Stage1State, scene: Stage1Scene, frame: Stage1Frame, cfg: Stage1Config,
              render_cfg: RenderConfig, num_steps: int) -> tuple[Stage1State, jnp.ndarray]:
    """`num_steps` steps under lax.scan -> (state, total loss per step [num_steps]). Pure; vmap over scenes by
    mapping state, scene and frame (same padded shapes)."""

    def body(s, _):
        s = step(s, scene, frame, cfg, render_cfg)
        return s, s.loss

    return jax.lax.scan(body, state, None, length=num_steps)


run_steps_jit = jax.jit(run_steps, static_argnames=("cfg", "render_cfg", "num_steps"))


# ---------------------------------------------------------------------------------------------------------
# Host-side driver: one loop for one scene and for a batch of scenes (arthoi_jax.batch pads, shards and
# checkpoints around it).


@dataclasses.dataclass(frozen=True)
class Stage1Result:
    poses: np.ndarray  # [T, P, 4, 4] part poses, frame 0 -> t (pose 0 = I)
    init_poses: np.ndarray  # [T, P, 4, 4] the closed-form initialization (cfg.init "joint" or "pnp")
    pnp_poses: np.ndarray  # [T, P, 4, 4] per-frame RANSAC PnP poses from the tracks
    joints: tuple[JointFit, ...]  # [P] joint fitted to the optimized poses (the parameterization in 1-DOF modes)
    iterations: np.ndarray  # [T] Adam steps run per frame (0 for frame 0)
    loss: np.ndarray  # [T] final total loss per frame
    terms: np.ndarray  # [T, 5] final weighted loss terms, order TERMS


def _round_up(n: int, k: int = PAD) -> int:
    return max(k, math.ceil(n / k) * k)


def pad_rows(x: np.ndarray, n: int, fill=0) -> np.ndarray:
    """x [N, ...] -> [n, ...] (n >= N), the new rows set to `fill`."""
    out = np.full((n,) + x.shape[1:], fill, x.dtype)
    out[: len(x)] = x
    return out


def stack_trees(trees: list):
    """Stacks pytrees of equal structure and shapes along a new leading (scene) axis -> numpy leaves."""
    return jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *trees)


def render_size(height: int, width: int, downsample: int) -> tuple[int, int]:
    """(h, w) of the images the reconstruction loss compares."""
    return max(1, height // downsample), max(1, width // downsample)


def build_scene(seg: PartSegmentation, K: np.ndarray, image_hw: tuple[int, int], cfg: Stage1Config,
                binding_radius_m: float, joints: tuple[JointFit, ...] | None = None) -> Stage1Scene:
    """Pads the segmentation into a Stage1Scene. joints: the fixed joints of the 1-DOF modes (None: free_se3)."""
    G = len(seg.weights)
    g, valid = pad_gaussians(seg.gaussians, _round_up(G))
    weights = pad_rows(seg.weights, len(valid))
    weights[G:, 0] = 1.0
    M = len(seg.track_labels)
    E = len(seg.binding_pairs)
    P = seg.num_parts
    h, w = render_size(*image_hw, cfg.render_downsample)
    K_render = np.diag([w / image_hw[1], h / image_hw[0], 1.0]) @ K
    f32 = lambda x: jnp.asarray(x, jnp.float32)
    return Stage1Scene(
        gaussians=jax.tree.map(f32, g), valid=jnp.asarray(valid), weights=f32(weights),
        part_of=jnp.asarray(np.argmax(weights, -1), jnp.int32),
        track_points=f32(pad_rows(seg.track_points, _round_up(M))),
        track_part=jnp.asarray(pad_rows(np.maximum(seg.track_labels, 0), _round_up(M)), jnp.int32),
        pairs=jnp.asarray(pad_rows(seg.binding_pairs.reshape(-1, 2), _round_up(E)), jnp.int32),
        pair_valid=jnp.asarray(np.arange(_round_up(E)) < E), binding_radius=f32(binding_radius_m),
        K=f32(K), K_render=f32(K_render), **joint_arrays(joints, P))


def joint_arrays(joints: tuple[JointFit, ...] | None, num_parts: int) -> dict:
    """Stage1Scene's joint fields of the fixed joints (None, free_se3: placeholders the step does not read):
    joint_type [P] int32, joint_axis [P, 3] unit, joint_pivot [P, 3] metres."""
    P = num_parts
    jt = [REVOLUTE if j.joint_type == "revolute" else PRISMATIC for j in joints] if joints else [0] * P
    axis = np.stack([j.axis for j in joints]) if joints else np.tile([0.0, 1.0, 0.0], (P, 1))
    pivot = np.stack([j.pivot for j in joints]) if joints else np.zeros((P, 3))
    return {"joint_type": jnp.asarray(jt, jnp.int32), "joint_axis": jnp.asarray(axis, jnp.float32),
            "joint_pivot": jnp.asarray(pivot, jnp.float32)}


def frame_arrays(frames: np.ndarray, object_masks: np.ndarray, hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Frames [T, H, W, 3] uint8 and object masks [T, H, W] resized (area) to hw = (h, w) -> images
    [T, h, w, 3] float32 in [0, 1], masks [T, h, w] float32."""
    h, w = hw
    images = np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in frames]).astype(np.float32) / 255
    masks = np.stack([cv2.resize(m.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA) for m in object_masks])
    return images, masks


def part_points(seg: PartSegmentation, p: int) -> np.ndarray:
    """[N_p, 3] frame-0 3D points (metres) of the tracks of moving part p (0-based)."""
    return seg.track_points[seg.track_labels == p + 1]


def photometric_samples(seg: PartSegmentation, p: int, K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Moving part p's frame-0 pixels for the photometric joint refinement -> (uv [N, 2] pixel centres, points
    [N, 3] world metres). The part mask eroded by PHOTOMETRIC_ERODE_PX (a pixel next to the boundary shows another
    surface once the part moves); depth interpolated linearly from the part's Gaussians (stride
    segmentation.gaussian_stride) over the image, pixels outside their hull dropped."""
    from scipy.interpolate import LinearNDInterpolator
    from scipy.spatial import QhullError

    k = 2 * PHOTOMETRIC_ERODE_PX + 1
    mask = cv2.erode(seg.part_masks[0, p].astype(np.uint8), np.ones((k, k), np.uint8)) > 0
    own = seg.weights[:, p + 1] > 0.5
    if own.sum() < 3 or not mask.any():
        return np.zeros((0, 2)), np.zeros((0, 3))
    rows, cols = np.nonzero(mask)
    uv = np.stack([cols + 0.5, rows + 0.5], -1)
    try:
        z = LinearNDInterpolator(seg.gaussian_uv[own], np.asarray(seg.gaussians.means)[own, 2])(uv)
    except QhullError:  # the part's Gaussians are collinear
        return np.zeros((0, 2)), np.zeros((0, 3))
    ok = np.isfinite(z) & (z > 0)
    uv, z = uv[ok], z[ok]
    points = np.stack([(uv[:, 0] - K[0, 2]) / K[0, 0] * z, (uv[:, 1] - K[1, 2]) / K[1, 1] * z, z], -1)
    return uv, points


def initial_poses(seg: PartSegmentation, tracks: np.ndarray, visibility: np.ndarray, K: np.ndarray,
                  cfg: Stage1Config, T_cam_world: np.ndarray | None = None, frames: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray, tuple[JointFit, ...]]:
    """Closed-form initialization from the tracks -> (init poses [T, P, 4, 4], per-frame PnP poses [T, P, 4, 4],
    joints [P]). Per part: RANSAC PnP per frame (segmentation.pnp_poses), a joint fitted to those poses (type from
    `articulation`, auto in free_se3), refined on the tracks of all frames at once
    (articulation.refine_joint_on_tracks). init "joint" starts each frame from the refined joint's pose, "pnp"
    from the PnP pose ("previous" uses neither). T_cam_world [T, 4, 4]: a moving camera; every pose is in the
    world (= camera 0) frame, PnP converted from camera t and the joint projected through each frame's camera.
    frames [T, H, W, 3] uint8: with cfg.init_min_corner_ratio > 0, a part's tracks whose frame-0 window is
    edge-like (`corner_ratio`) are left out of these fits while at least MIN_INIT_TRACKS remain (L_tr keeps them
    all); with cfg.init_photometric, a joint whose tracks reproject worse than
    PHOTOMETRIC_MIN_TRACK_PX is then refined by aligning the part's frame-0 pixels to the frames where the part
    keeps PHOTOMETRIC_MIN_TRACKS tracks (articulation.refine_joint_photometric; `photometric_samples`), in auto
    both types when their track errors are within TYPE_MARGIN, the type then picked on the alignment; a revolute
    pivot is then slid onto the part along the direction a small turn leaves loose (articulation.hinge_on_part)."""
    T, P = tracks.shape[0], seg.num_parts
    pnp = np.tile(np.eye(4), (T, P, 1, 1))
    joints = []
    kind = "auto" if _is_free(cfg) else cfg.articulation
    cornered = np.ones(len(seg.track_labels), bool)
    blurred = None
    if cfg.init_min_corner_ratio > 0 and frames is not None:
        grey = cv2.cvtColor(np.ascontiguousarray(frames[0]), cv2.COLOR_RGB2GRAY)
        cornered = corner_ratio(grey, tracks[0]) >= cfg.init_min_corner_ratio
    for p in range(P):
        m = seg.track_labels == p + 1
        if (m & cornered).sum() >= MIN_INIT_TRACKS:
            m &= cornered
        pts, tr, vis = seg.track_points[m], tracks[:, m], visibility[:, m]
        pnp[:, p] = pnp_poses(pts, tr, vis, K, cfg.init_reproj_px, T_cam_world)
        part = seg.gaussians.means[np.argmax(seg.weights, -1) == p + 1]  # all of it (the tracks may cover a band)
        fits = joint_candidates(pnp[:, p], pts, tr, vis, K, kind, T_cam_world)
        seen = int(vis[1:, np.all(np.isfinite(pts), -1)].any(0).sum())
        joint = pick_joint(fits, pts, seen)
        if (cfg.init_photometric and frames is not None
                and reprojection_error_px(joint, pts, tr, vis, K, T_cam_world) > PHOTOMETRIC_MIN_TRACK_PX):
            uv, points = photometric_samples(seg, p, K)
            if len(uv) >= MIN_PHOTOMETRIC_PIXELS:
                blurred = blurred if blurred is not None else np.stack([cv2.GaussianBlur(
                    cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY).astype(np.float32), (0, 0),
                    PHOTOMETRIC_BLUR_PX) for f in frames])
                aligned = vis.sum(1) >= PHOTOMETRIC_MIN_TRACKS
                align = partial(refine_joint_photometric, grey=blurred, uv=uv, points=points, K=K,
                                T_cam_world=T_cam_world, frames=aligned)
                errs = [e for _, e in fits.values()]
                if len(fits) == 2 and max(errs) <= TYPE_MARGIN * min(errs):  # the tracks cannot tell: the images
                    fits = {k: (j, photometric_error(j, blurred, uv, points, K, T_cam_world, aligned))
                            for k, j in ((k, align(f)) for k, (f, _) in fits.items())}
                    joint = pick_joint(fits, part, seen)
                else:
                    joint = align(joint)
                joint = hinge_on_part(joint, part, aligned)
        joints.append(joint)
    init = np.stack([j.poses() for j in joints], 1) if cfg.init == "joint" else pnp
    return init, pnp, tuple(joints)


@dataclasses.dataclass(frozen=True)
class Stage1Problem:
    """One scene's Stage I inputs, prepared on the host (T frames, render size h x w, M tracks, P parts)."""

    seg: PartSegmentation
    scene: Stage1Scene  # build_scene (padded to multiples of PAD)
    images: np.ndarray  # [T, h, w, 3] float32 in [0, 1]
    masks: np.ndarray  # [T, h, w] float32
    tracks: np.ndarray  # [T, M, 2] float32 pixels
    visibility: np.ndarray  # [T, M] bool
    init: np.ndarray  # [T, P, 4, 4] closed-form initial poses
    pnp: np.ndarray  # [T, P, 4, 4] per-frame PnP poses
    joints: tuple[JointFit, ...] | None  # the fixed joints of the 1-DOF modes (None: free_se3)
    cfg: Stage1Config
    render_cfg: RenderConfig
    cameras: np.ndarray  # [T, 4, 4] float32 world-to-camera extrinsics (world = camera 0; identity: static)

    @property
    def num_frames(self) -> int:
        return self.images.shape[0]


def prepare(frames: np.ndarray, object_masks: np.ndarray, tracks: np.ndarray, visibility: np.ndarray,
            K: np.ndarray, seg: PartSegmentation, cfg: Stage1Config, render_cfg: RenderConfig,
            binding_radius_m: float, T_cam_world: np.ndarray | None = None) -> Stage1Problem:
    """The host-side inputs of one scene (arguments as for `optimize`): initial poses, padded scene, resized
    images and masks."""
    T, H, W = object_masks.shape
    K = np.asarray(K, np.float64)
    init, pnp, init_joints = initial_poses(seg, tracks, visibility, K, cfg, T_cam_world, frames)
    cameras = np.tile(np.eye(4, dtype=np.float32), (T, 1, 1)) if T_cam_world is None else T_cam_world
    joints = None if _is_free(cfg) else init_joints
    scene = build_scene(seg, K, (H, W), cfg, binding_radius_m, joints)
    images, masks = frame_arrays(frames, object_masks, render_size(H, W, cfg.render_downsample))
    problem = Stage1Problem(seg=seg, scene=scene, images=images, masks=masks, tracks=tracks.astype(np.float32),
                            visibility=np.asarray(visibility, bool), init=init, pnp=pnp, joints=joints, cfg=cfg,
                            render_cfg=render_cfg, cameras=np.asarray(cameras, np.float32))
    if joints is not None:
        problem = refine_joints(problem)
    return problem


def refine_joints(p: Stage1Problem) -> Stage1Problem:
    """The problem with its fixed joints (1-DOF modes) refined on all frames' losses (stage1_joint.refine): the
    per-frame steps then start from the refined joint's values. The joint types stay those of the track-based
    test: compared on this objective, a prismatic joint with free values fits a door whose tracks are lost as
    well as a revolute one (cabinet2's later door went prismatic, 43 deg)."""
    T, P, M = p.num_frames, p.seg.num_parts, p.scene.track_points.shape[0]
    counts = np.stack([(p.visibility & (p.seg.track_labels == q + 1)[None]).sum(1) for q in range(P)], 1)
    if not stage1_joint.has_work(counts, p.cfg):  # the common case: every frame keeps its tracks
        return p
    eye, zeros = np.tile(np.eye(4), (T, P, 1, 1)), np.zeros((T, P))
    frames = stack_trees([frame_inputs(p, t, M, eye, zeros).replace(init_value=np.zeros(P, np.float32))
                          for t in range(1, T)])
    joints, _ = stage1_joint.refine(p.joints, p.scene, frames, counts, p.cfg, p.render_cfg)
    return dataclasses.replace(p, scene=p.scene.replace(**joint_arrays(joints, P)), joints=joints)


def frame_inputs(p: Stage1Problem, t: int, num_tracks: int, poses: np.ndarray, values: np.ndarray) -> Stage1Frame:
    """Frame t >= 1 of a scene (numpy leaves, tracks padded to num_tracks); poses [T, P, 4, 4], values [T, P]:
    that scene's results so far. t past the scene's end gives its last frame (the scene sits out)."""
    t = min(t, p.num_frames - 1)
    warm = p.cfg.init == "previous"
    init_value = (values[t - 1] if warm else
                  (np.array([j.values[t] for j in p.joints]) if p.joints else np.zeros(p.seg.num_parts)))
    return Stage1Frame(
        image=p.images[t], mask=p.masks[t], tracks=pad_rows(p.tracks[t], num_tracks),
        track_vis=pad_rows(p.visibility[t], num_tracks),
        init_pose=np.asarray(poses[t - 1] if warm else p.init[t], np.float32),
        init_value=np.asarray(init_value, np.float32),
        prev_poses=np.asarray(np.stack([poses[t - 1], poses[max(t - 2, 0)]]), np.float32),
        smooth_valid=np.bool_(t >= 2), T_cam_world=p.cameras[t])


TRACE_COUNT = {"steps": 0}  # traces (= compiles) of run_steps_batched, for tests and benchmarks


def _run_steps_batched(state, scene, frame, cfg, render_cfg, num_steps):
    TRACE_COUNT["steps"] += 1  # runs once per trace, i.e. once per compile
    run = partial(run_steps, cfg=cfg, render_cfg=render_cfg, num_steps=num_steps)
    return jax.vmap(run)(state, scene, frame)


# run_steps vmapped over a leading scene axis of state, scene and frame -> (state [B], losses [B, num_steps]).
run_steps_batched = jax.jit(_run_steps_batched, static_argnames=("cfg", "render_cfg", "num_steps"))


@partial(jax.jit, static_argnames=("cfg",))
def part_poses_batched(params: jnp.ndarray, scene: Stage1Scene, frame: Stage1Frame, cfg: Stage1Config) -> jnp.ndarray:
    """part_poses vmapped over a leading scene axis -> [B, P, 4, 4]."""
    return jax.vmap(partial(part_poses, cfg=cfg))(params, scene, frame)


Progress = dict  # str -> np.ndarray: the loop's state after a chunk (see new_progress); checkpointable


def new_progress(num_slots: int, num_frames: int, num_parts: int) -> Progress:
    """Progress before frame 1: t (next frame), chunk (next chunk of frame t), per slot the poses [T, P, 4, 4],
    joint values [T, P], iterations, final loss and terms per frame, and the first failure (frame, step, which
    quantities, loss terms; frame -1: none). After a chunk it also holds `state`, the batched Stage1State."""
    n, T, P = num_slots, num_frames, num_parts
    return {"t": np.int64(1), "chunk": np.int64(0), "poses": np.tile(np.eye(4), (n, T, P, 1, 1)),
            "values": np.zeros((n, T, P)), "iterations": np.zeros((n, T), np.int64), "loss": np.zeros((n, T)),
            "terms": np.zeros((n, T, len(TERMS))), "failed_frame": np.full(n, -1, np.int64),
            "failed_step": np.full(n, -1, np.int64), "failed_what": np.zeros((n, len(TERMS) + 1), bool),
            "failed_terms": np.zeros((n, len(TERMS)))}


def optimize_scenes(problems: list[Stage1Problem], scenes: Stage1Scene, *, put: Callable = jax.device_get,
                    get: Callable = jax.device_get, resume: Progress | None = None,
                    on_chunk: Callable[[Progress, int], None] | None = None,
                    progress: bool = True) -> list[Stage1Result | OptimizationError]:
    """Stage I of several scenes of the same shapes (same cfg, render config, part count), vmapped.

    scenes: the problems' Stage1Scenes stacked on a leading slot axis of n >= len(problems) slots (slots past
    the problems are padding: copies that take no step). put / get move a numpy pytree with that leading axis to
    the devices and back (default: the default device; arthoi_jax.batch shards it).
    For each frame t every scene's frame-t problem starts from a fresh optimizer state and chunks of
    `steps_per_chunk` steps run under one jit until every scene has stopped (early stopping, the iteration cap
    or a non-finite value); a stopped scene's state no longer changes (see `step`), so each scene's result is
    that of its own run. A scene past its last frame, or one that failed, sits out.
    on_chunk(progress, steps_run) is called after every chunk and at the end of every frame (steps_run: the
    steps since its last call); `resume` continues from such a progress.
    Returns, per problem, its Stage1Result or the OptimizationError (frame, step, quantity) that stopped it.
    """
    cfg, render_cfg, P = problems[0].cfg, problems[0].render_cfg, problems[0].seg.num_parts
    n, M = scenes.valid.shape[0], scenes.track_points.shape[1]
    T_of = [p.num_frames for p in problems] + [0] * (n - len(problems))
    T = max(T_of)
    slots = problems + [problems[0]] * (n - len(problems))
    snap = resume if resume is not None else new_progress(n, T, P)
    chunks = math.ceil(cfg.iters_per_frame / cfg.steps_per_chunk)
    desc = "stage1" if len(problems) == 1 else f"stage1 x{len(problems)}"
    bar = tqdm(total=T - 1, initial=int(snap["t"]) - 1, desc=desc, disable=not progress, dynamic_ncols=True)
    start_t, start_chunk = int(snap["t"]), int(snap["chunk"])
    for t in range(start_t, T):
        active = np.array([t < T_of[s] and snap["failed_frame"][s] < 0 for s in range(n)])
        if not active.any():  # every scene failed: nothing left to optimize
            break
        frame_host = stack_trees([frame_inputs(p, t, M, snap["poses"][s], snap["values"][s])
                                  for s, p in enumerate(slots)])
        frame_b = put(frame_host)
        first = start_chunk if t == start_t else 0
        host = snap["state"] if first > 0 else stack_trees([init_state(cfg, P).replace(done=jnp.bool_(not a))
                                                            for a in active])
        state, all_done = put(host), bool(host.done.all())
        for c in range(first, chunks):
            state, _ = run_steps_batched(state, scenes, frame_b, cfg=cfg, render_cfg=render_cfg,
                                         num_steps=cfg.steps_per_chunk)
            host = get(state)
            bad = active & (host.bad_step >= 0) & (snap["failed_frame"] < 0)
            snap["failed_frame"][bad], snap["failed_step"][bad] = t, host.bad_step[bad]
            snap["failed_what"][bad], snap["failed_terms"][bad] = host.bad_what[bad], host.terms[bad]
            snap.setdefault("failed_params", np.zeros_like(host.params))[bad] = host.params[bad]  # before the bad step
            snap.update(t=np.int64(t), chunk=np.int64(c + 1), state=host)
            all_done = bool(host.done.all())
            if on_chunk is not None and not all_done:
                on_chunk(snap, cfg.steps_per_chunk)
            running = active & (snap["failed_frame"] < 0)
            mean_loss = host.loss[running].mean() if running.any() else 0.0
            bar.set_postfix(frame=t, step=int(host.step.max()), loss=f"{mean_loss:.4g}")
            if all_done:
                break
        poses_t = get(part_poses_batched(state.params, scenes, frame_b, cfg=cfg))
        ok = active & (snap["failed_frame"] < 0)
        snap["poses"][ok, t] = poses_t[ok]
        if not _is_free(cfg):
            snap["values"][ok, t] = frame_host.init_value[ok] + host.params[ok, :, 0]
        snap["iterations"][ok, t], snap["loss"][ok, t] = host.step[ok], host.loss[ok]
        snap["terms"][ok, t] = host.terms[ok]
        snap.update(t=np.int64(t + 1), chunk=np.int64(0), state=host)
        if on_chunk is not None:
            on_chunk(snap, cfg.steps_per_chunk if all_done else 0)
        bar.update(1)
    bar.close()
    return [scene_result(p, snap, s) for s, p in enumerate(problems)]


def scene_result(p: Stage1Problem, snap: Progress, s: int) -> Stage1Result | OptimizationError:
    """Slot s of a finished progress -> its Stage1Result (with joints fitted to the optimized poses), or the
    OptimizationError naming the frame, step and non-finite quantities of its failure; its `last_good`: the poses
    [f, P, 4, 4] and joint values [f, P] of the frames before the failed frame f, and frame f's `params` before
    the failing step (with the `init_pose` [P, 4, 4] / `init_value` [P] they are relative to, see `part_poses`)."""
    if snap["failed_frame"][s] >= 0:
        what = [n for n, bad in zip(TERMS + ("gradient",), snap["failed_what"][s]) if bad]
        f = int(snap["failed_frame"][s])
        frame = frame_inputs(p, f, p.tracks.shape[1], snap["poses"][s], snap["values"][s])
        return OptimizationError(
            f"stage1: non-finite {' and '.join(what) or 'loss'} at frame {f}, step "
            f"{int(snap['failed_step'][s])} (loss terms "
            f"{dict(zip(TERMS, snap['failed_terms'][s].round(6).tolist()))})",
            last_good={"frame": f, "step": snap["failed_step"][s], "poses": snap["poses"][s, :f],
                       "values": snap["values"][s, :f], "params": snap["failed_params"][s],
                       "init_pose": frame.init_pose, "init_value": frame.init_value})
    T = p.num_frames
    poses = snap["poses"][s, :T]
    kind = "auto" if _is_free(p.cfg) else p.cfg.articulation
    fits = tuple(fit_joint(poses[:, q], part_points(p.seg, q), kind) for q in range(p.seg.num_parts))
    return Stage1Result(poses=poses, init_poses=p.init, pnp_poses=p.pnp, joints=fits,
                        iterations=snap["iterations"][s, :T], loss=snap["loss"][s, :T], terms=snap["terms"][s, :T])


def optimize(frames: np.ndarray, object_masks: np.ndarray, tracks: np.ndarray, visibility: np.ndarray,
             K: np.ndarray, seg: PartSegmentation, cfg: Stage1Config, render_cfg: RenderConfig,
             binding_radius_m: float, progress: bool = True, T_cam_world: np.ndarray | None = None) -> Stage1Result:
    """Runs Stage I over frames 1..T-1 (arrays as in arthoi_jax.io.bundle; seg from segmentation.segment): the
    one-scene case of `optimize_scenes`. T_cam_world [T, 4, 4]: the bundle's cameras (None: static); the poses
    are in the world (= camera 0) frame either way.

    Raises OptimizationError naming the frame, step and quantity when a loss or gradient becomes non-finite.
    """
    problem = prepare(frames, object_masks, tracks, visibility, K, seg, cfg, render_cfg, binding_radius_m,
                      T_cam_world)
    result = optimize_scenes([problem], stack_trees([problem.scene]), progress=progress)[0]
    if isinstance(result, OptimizationError):
        raise result
    return result


@partial(jax.jit, static_argnames=("render_cfg", "width", "height"))
def _render_frame(scene: Stage1Scene, poses: jnp.ndarray, K: jnp.ndarray, T_cam_world: jnp.ndarray,
                  render_cfg: RenderConfig, width: int, height: int) -> jnp.ndarray:
    g = move_gaussians(scene, poses)
    cam = Camera(K=K, T_cam_world=T_cam_world, width=width, height=height)
    return render(g, cam, render_cfg, background=jnp.zeros(3, K.dtype), valid=scene.valid).rgb


def render_sequence(scene: Stage1Scene, poses: np.ndarray, render_cfg: RenderConfig, height: int,
                    width: int, T_cam_world: np.ndarray | None = None) -> np.ndarray:
    """Re-renders the object Gaussians at world poses [T, P, 4, 4] at full resolution through the cameras
    T_cam_world [T, 4, 4] (None: static) -> [T, H, W, 3] uint8."""
    cams = np.tile(np.eye(4), (len(poses), 1, 1)) if T_cam_world is None else T_cam_world
    out = [np.asarray(_render_frame(scene, jnp.asarray(p, jnp.float32), scene.K, jnp.asarray(c, jnp.float32),
                                    render_cfg, width, height)) for p, c in zip(poses, cams)]
    return (np.clip(np.stack(out), 0, 1) * 255).round().astype(np.uint8)
