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
the shared-axis fit 3 deg). `init: pnp` (per-frame PnP) and `init: previous` (warm start from the previous frame)
are kept for comparison. Adam then refines with the paper's losses, weights, clipping and early stopping.

One jitted function runs `steps_per_chunk` steps with lax.scan (no host round trip inside); the host loop checks
for early stopping and non-finite values once per chunk. Shapes are padded (Gaussians, tracks, pairs to multiples
of `PAD`) so one compile serves every frame and every scene of the same image size; `run_steps` vmaps over scenes.
"""

from __future__ import annotations

import dataclasses
import math
from functools import partial

import cv2
import jax
import jax.numpy as jnp
import jaxlie
import numpy as np
import optax
from flax import struct
from tqdm.auto import tqdm

from arthoi_jax import losses
from arthoi_jax.articulation import PRISMATIC, REVOLUTE, JointFit, fit_joint, joint_from_tracks, joint_transform
from arthoi_jax.config import RenderConfig, Stage1Config
from arthoi_jax.errors import OptimizationError
from arthoi_jax.object_gaussians import pad_gaussians
from arthoi_jax.render.rasterize import render
from arthoi_jax.render.types import Camera, Gaussians
from arthoi_jax.segmentation import PartSegmentation, pnp_poses

PAD = 256
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
        cam = Camera(K=scene.K_render, T_cam_world=jnp.eye(4, dtype=params.dtype), width=w, height=h)
        out = render(g_t, cam, render_cfg, background=jnp.zeros(3, params.dtype), valid=scene.valid)
        rgb, sil = losses.reconstruction_loss(out.rgb, out.alpha, frame.image, frame.mask, cfg.beta_o)
        rgb, sil = cfg.lambda_r * rgb, cfg.lambda_r * sil
    else:
        rgb = sil = zero
    if cfg.use_tracking_loss:
        all_poses = jnp.concatenate([jnp.eye(4, dtype=poses.dtype)[None], poses], 0)
        T = all_poses[scene.track_part]
        pts = jnp.einsum("mij,mj->mi", T[:, :3, :3], scene.track_points) + T[:, :3, 3]
        weight = (frame.track_vis & (scene.track_part > 0)).astype(params.dtype)
        tr = cfg.lambda_tr * losses.tracking_loss(pts, scene.K, frame.tracks, weight)
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
# Host-side driver.


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


def _pad(x: np.ndarray, n: int, fill=0) -> np.ndarray:
    out = np.full((n,) + x.shape[1:], fill, x.dtype)
    out[: len(x)] = x
    return out


def render_size(height: int, width: int, downsample: int) -> tuple[int, int]:
    """(h, w) of the images the reconstruction loss compares."""
    return max(1, height // downsample), max(1, width // downsample)


def build_scene(seg: PartSegmentation, K: np.ndarray, image_hw: tuple[int, int], cfg: Stage1Config,
                binding_radius_m: float, joints: tuple[JointFit, ...] | None = None) -> Stage1Scene:
    """Pads the segmentation into a Stage1Scene. joints: the fixed joints of the 1-DOF modes (None: free_se3)."""
    G = len(seg.weights)
    g, valid = pad_gaussians(seg.gaussians, _round_up(G))
    weights = _pad(seg.weights, len(valid))
    weights[G:, 0] = 1.0
    M = len(seg.track_labels)
    E = len(seg.binding_pairs)
    P = seg.num_parts
    h, w = render_size(*image_hw, cfg.render_downsample)
    K_render = np.diag([w / image_hw[1], h / image_hw[0], 1.0]) @ K
    jt = np.array([REVOLUTE if (j.joint_type == "revolute") else PRISMATIC for j in joints] if joints else [0] * P)
    axis = np.stack([j.axis for j in joints]) if joints else np.tile([0.0, 1.0, 0.0], (P, 1))
    pivot = np.stack([j.pivot for j in joints]) if joints else np.zeros((P, 3))
    f32 = lambda x: jnp.asarray(x, jnp.float32)
    return Stage1Scene(
        gaussians=jax.tree.map(f32, g), valid=jnp.asarray(valid), weights=f32(weights),
        part_of=jnp.asarray(np.argmax(weights, -1), jnp.int32),
        track_points=f32(_pad(seg.track_points, _round_up(M))),
        track_part=jnp.asarray(_pad(np.maximum(seg.track_labels, 0), _round_up(M)), jnp.int32),
        pairs=jnp.asarray(_pad(seg.binding_pairs.reshape(-1, 2), _round_up(E)), jnp.int32),
        pair_valid=jnp.asarray(np.arange(_round_up(E)) < E), binding_radius=f32(binding_radius_m),
        K=f32(K), K_render=f32(K_render), joint_type=jnp.asarray(jt, jnp.int32), joint_axis=f32(axis),
        joint_pivot=f32(pivot))


def _frame_arrays(frames: np.ndarray, object_masks: np.ndarray, hw: tuple[int, int]):
    h, w = hw
    images = np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in frames]).astype(np.float32) / 255
    masks = np.stack([cv2.resize(m.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA) for m in object_masks])
    return images, masks


def _part_points(seg: PartSegmentation, p: int) -> np.ndarray:
    return seg.track_points[seg.track_labels == p + 1]


def initial_poses(seg: PartSegmentation, tracks: np.ndarray, visibility: np.ndarray, K: np.ndarray,
                  cfg: Stage1Config) -> tuple[np.ndarray, np.ndarray, tuple[JointFit, ...]]:
    """Closed-form initialization from the tracks -> (init poses [T, P, 4, 4], per-frame PnP poses [T, P, 4, 4],
    joints [P]). Per part: RANSAC PnP per frame (segmentation.pnp_poses), a joint fitted to those poses (type from
    `articulation`, auto in free_se3), refined on the tracks of all frames at once
    (articulation.refine_joint_on_tracks). init "joint" starts each frame from the refined joint's pose, "pnp"
    from the PnP pose ("previous" uses neither)."""
    T, P = tracks.shape[0], seg.num_parts
    pnp = np.tile(np.eye(4), (T, P, 1, 1))
    joints = []
    kind = "auto" if _is_free(cfg) else cfg.articulation
    for p in range(P):
        m = seg.track_labels == p + 1
        pnp[:, p] = pnp_poses(seg.track_points[m], tracks[:, m], visibility[:, m], K, cfg.init_reproj_px)
        joints.append(joint_from_tracks(pnp[:, p], seg.track_points[m], tracks[:, m], visibility[:, m], K, kind))
    init = np.stack([j.poses() for j in joints], 1) if cfg.init == "joint" else pnp
    return init, pnp, tuple(joints)


def optimize(frames: np.ndarray, object_masks: np.ndarray, tracks: np.ndarray, visibility: np.ndarray,
             K: np.ndarray, seg: PartSegmentation, cfg: Stage1Config, render_cfg: RenderConfig,
             binding_radius_m: float, progress: bool = True) -> Stage1Result:
    """Runs Stage I over frames 1..T-1 (arrays as in arthoi_jax.io.bundle; seg from segmentation.segment).

    Raises OptimizationError naming the frame, step and quantity when a loss or gradient becomes non-finite.
    """
    T, H, W = object_masks.shape
    P = seg.num_parts
    K = np.asarray(K, np.float64)
    init, pnp, init_joints = initial_poses(seg, tracks, visibility, K, cfg)
    joint_kind = "auto" if _is_free(cfg) else cfg.articulation
    joints = None if _is_free(cfg) else init_joints
    scene = build_scene(seg, K, (H, W), cfg, binding_radius_m, joints)
    images, masks = _frame_arrays(frames, object_masks, render_size(H, W, cfg.render_downsample))
    M = scene.track_points.shape[0]
    poses = np.tile(np.eye(4), (T, P, 1, 1))
    values = np.zeros((T, P))
    iterations, final_loss, final_terms = np.zeros(T, int), np.zeros(T), np.zeros((T, len(TERMS)))
    state0 = init_state(cfg, P)
    chunks = math.ceil(cfg.iters_per_frame / cfg.steps_per_chunk)
    bar = tqdm(total=T - 1, desc="stage1", disable=not progress, dynamic_ncols=True)
    for t in range(1, T):
        warm = cfg.init == "previous"
        init_value = values[t - 1] if warm else (np.array([j.values[t] for j in joints]) if joints else np.zeros(P))
        frame = Stage1Frame(
            image=jnp.asarray(images[t]), mask=jnp.asarray(masks[t]),
            tracks=jnp.asarray(_pad(tracks[t].astype(np.float32), M)), track_vis=jnp.asarray(_pad(visibility[t], M)),
            init_pose=jnp.asarray(poses[t - 1] if warm else init[t], jnp.float32),
            init_value=jnp.asarray(init_value, jnp.float32),
            prev_poses=jnp.asarray(np.stack([poses[t - 1], poses[max(t - 2, 0)]]), jnp.float32),
            smooth_valid=jnp.bool_(t >= 2))
        state = state0
        for _ in range(chunks):
            state, _ = run_steps_jit(state, scene, frame, cfg=cfg, render_cfg=render_cfg,
                                     num_steps=cfg.steps_per_chunk)
            if int(state.bad_step) >= 0:
                what = [n for n, bad in zip(TERMS + ("gradient",), np.asarray(state.bad_what)) if bad]
                raise OptimizationError(
                    f"stage1: non-finite {' and '.join(what) or 'loss'} at frame {t}, step {int(state.bad_step)} "
                    f"(loss terms {dict(zip(TERMS, np.asarray(state.terms).round(6).tolist()))})")
            bar.set_postfix(frame=t, step=int(state.step), loss=f"{float(state.loss):.4g}")
            if bool(state.done):
                break
        poses[t] = np.asarray(part_poses(state.params, scene, frame, cfg))
        if not _is_free(cfg):
            values[t] = init_value + np.asarray(state.params[:, 0])
        iterations[t], final_loss[t] = int(state.step), float(state.loss)
        final_terms[t] = np.asarray(state.terms)
        bar.update(1)
    bar.close()
    fits = tuple(fit_joint(poses[:, p], _part_points(seg, p), joint_kind) for p in range(P))
    return Stage1Result(poses=poses, init_poses=init, pnp_poses=pnp, joints=fits, iterations=iterations,
                        loss=final_loss, terms=final_terms)


@partial(jax.jit, static_argnames=("render_cfg", "width", "height"))
def _render_frame(scene: Stage1Scene, poses: jnp.ndarray, K: jnp.ndarray, render_cfg: RenderConfig, width: int,
                  height: int) -> jnp.ndarray:
    g = move_gaussians(scene, poses)
    cam = Camera(K=K, T_cam_world=jnp.eye(4, dtype=K.dtype), width=width, height=height)
    return render(g, cam, render_cfg, background=jnp.zeros(3, K.dtype), valid=scene.valid).rgb


def render_sequence(scene: Stage1Scene, poses: np.ndarray, render_cfg: RenderConfig, height: int,
                    width: int) -> np.ndarray:
    """Re-renders the object Gaussians at poses [T, P, 4, 4] at full resolution -> [T, H, W, 3] uint8."""
    out = [np.asarray(_render_frame(scene, jnp.asarray(p, jnp.float32), scene.K, render_cfg, width, height))
           for p in poses]
    return (np.clip(np.stack(out), 0, 1) * 255).round().astype(np.uint8)
