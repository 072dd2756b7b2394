"""Stage II: human motion conditioned on the recovered object (Eq. 9-12, App. A), plus the joint baseline.

Parameters (`Stage2Params`): per-frame body pose, global orientation and translation (SMPL-X, betas fixed to
the initialization's) and a per-sequence human-to-scene alignment: the HMR body's vertices v are placed in the
scene at exp(log_scale) * v + offset. Scaling about the camera centre keeps the body's projection and changes
its depth: the monocular ambiguity Stage II resolves (the paper's "camera parameters", lr_camera).
In "joint" mode the object's part poses (a se(3) tangent per frame and part around the closed-form initial
poses) are optimized with the human in one stage (see `joint_opt`); in "decoupled" mode (the paper) they are
Stage I's, fixed.

Frame subsampling: each step sees a random window of `window_frames` consecutive frames (all terms on it, sums
scaled by T / W), because the body forward pass and the point-to-surface searches grow with the frame count.

Objective: L_r^h + lambda_p L_p + lambda_fs L_fs + lambda_s L_s + lambda_k L_k + lambda_c L_contact +
lambda_pen L_pen (+ joint mode: the object's tracking loss; + lambda_depth L_depth, beyond the paper, when set).
L_fs and L_s see the body in its own metres: on the scene's scaled body they shrink with the scale and would
pull the body towards the camera. One jitted `step`; `run_steps` scans
`steps_per_chunk` of them; `optimize_scenes` drives the chunks of one or several scenes in one program
(`run_steps_batched`; arthoi_jax.batch pads and shards around it), `optimize` is its one-scene case.
L_r^h renders `render_frames` random frames per step (human Gaussians composited with the object's, so the
object occludes the body); every other term sees every frame.

Stage2Data is built from a scene bundle and Stage I's object in `stage2_init` (`prepare`: contact keypoints, depth
alignment, arm refit); a result is re-rendered in `stage2_render`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp
import jaxlie
import numpy as np
import optax
from flax import struct
from tqdm import tqdm

from arthoi_jax import joint_opt
from arthoi_jax import stage2_losses as L
from arthoi_jax.body import joint_names as jn
from arthoi_jax.body.human_gaussians import HumanGaussianTemplate, pose_gaussians
from arthoi_jax.body.model import BodyModel, BodyParams, forward_sequence
from arthoi_jax.config import RenderConfig, Stage2Config
from arthoi_jax.errors import OptimizationError
from arthoi_jax.render.rasterize import render
from arthoi_jax.render.types import Camera
from arthoi_jax.stage1 import Stage1Scene, move_gaussians, pad_rows, stack_trees

TERMS = ("render", "prior", "foot", "smooth", "kinematic", "contact", "penetration", "object", "depth")
HAND_JOINTS = np.array([[jn.joint_index(n) for n in (f"{s}_wrist",) + tuple(
    x for f in ("thumb", "index", "middle", "ring", "pinky") for x in (f"{s}_{f}1", f"{s}_{f}2", f"{s}_{f}3",
                                                                        f"{s}_{f}"))] for s in ("left", "right")])
LR_FINAL_FRACTION = 0.05  # of the learning rates at the end of their decay (see optimizer)


@struct.dataclass
class Stage2Params:
    body_pose: jnp.ndarray  # [T, 21, 3] axis-angle
    global_orient: jnp.ndarray  # [T, 3] axis-angle
    transl: jnp.ndarray  # [T, 3] metres
    log_scale: jnp.ndarray  # [] human-to-scene scale about the camera centre (log)
    offset: jnp.ndarray  # [3] metres, human-to-scene translation
    object_delta: jnp.ndarray  # [T, P, 6] se(3) tangent (v, omega) around the data's object poses (joint mode)


@struct.dataclass
class Stage2Data:
    """Everything Stage II holds fixed (T frames, h x w render size, P parts, G object Gaussians)."""

    model: BodyModel
    init: BodyParams  # [T] the HMR initialization (betas, hands, face and the L_p targets)
    template: HumanGaussianTemplate  # human Gaussians on the body surface
    images: jnp.ndarray  # [T, h, w, 3] in [0, 1]
    human_masks: jnp.ndarray  # [T, h, w] in [0, 1]
    K_render: jnp.ndarray  # [3, 3]
    obj: Stage1Scene  # object Gaussians and their parts (Stage I)
    object_poses: jnp.ndarray  # [T, P, 4, 4] part poses (Stage I's, or the closed-form init in joint mode)
    object_colors: jnp.ndarray  # [G, 4] rgb + 0 (the fourth channel marks human coverage)
    surface_idx: jnp.ndarray  # [S] int32 object Gaussians used as surface points
    surface_normals0: jnp.ndarray  # [S, 3] their outward normals at frame 0
    keypoints: jnp.ndarray  # [T, 42, 3] lifted contact keypoints (left hand 21, right hand 21)
    keypoint_weights: jnp.ndarray  # [T, 42]
    hand_contact: jnp.ndarray  # [T, 2] float: hand in contact
    foot_vertices: jnp.ndarray  # [F] int32
    foot_contact: jnp.ndarray  # [T, F] float: label of the foot joint each vertex follows
    body_points: jnp.ndarray  # [N] int32 vertices tested for penetration
    part_boxes: jnp.ndarray  # [P + 1, 5, 3] solid boxes of the parts at frame 0 (penetration_model box; part_boxes)
    tracks: jnp.ndarray  # [T, M, 2] pixels (joint mode)
    track_vis: jnp.ndarray  # [T, M] bool
    # [T] bool; False for the frames a batch pads a scene with (arthoi_jax.batch.stage2_batch): they come after
    # the scene's frames and the random window never reaches them, so every per-frame sum sees valid frames only.
    frame_valid: jnp.ndarray
    T_cam_world: jnp.ndarray  # [T, 4, 4] world-to-camera extrinsics per frame (world = camera 0; identity: static)


@struct.dataclass
class Stage2State:
    params: Stage2Params
    opt_state: optax.OptState
    key: jnp.ndarray
    step: jnp.ndarray  # [] int32
    loss: jnp.ndarray  # [] last total
    terms: jnp.ndarray  # [len(TERMS)] last weighted terms
    bad_step: jnp.ndarray  # [] int32 first step with a non-finite loss or gradient (-1: none)
    bad_what: jnp.ndarray  # [len(TERMS) + 1] bool


def _labels(params: Stage2Params, joint: bool) -> Stage2Params:
    return Stage2Params(body_pose="pose", global_orient="pose", transl="pose", log_scale="camera",
                        offset="camera", object_delta="pose" if joint else "frozen")


def optimizer(cfg: Stage2Config) -> optax.GradientTransformation:
    """Adam with the paper's two learning rates (pose, camera) after clipping the global gradient norm; over the
    last cfg.lr_decay_fraction of the iterations both fall (cosine) to LR_FINAL_FRACTION of theirs (0: constant,
    the paper)."""
    joint = cfg.mode == "joint"
    n0 = cfg.iters - round(cfg.lr_decay_fraction * cfg.iters)

    def rate(lr):
        if n0 >= cfg.iters:
            return lr
        return optax.join_schedules([optax.constant_schedule(lr), optax.cosine_decay_schedule(
            lr, cfg.iters - n0, LR_FINAL_FRACTION)], [n0])

    return optax.chain(
        optax.clip_by_global_norm(cfg.grad_clip),
        optax.multi_transform({"pose": optax.adam(rate(cfg.lr_pose)), "camera": optax.adam(rate(cfg.lr_camera)),
                               "frozen": optax.set_to_zero()}, partial(_labels, joint=joint)))


def body_params(p: Stage2Params, init: BodyParams) -> BodyParams:
    return init.replace(body_pose=p.body_pose, global_orient=p.global_orient, transl=p.transl)


def human_in_body(p: Stage2Params, data: Stage2Data):
    """-> vertices [T, V, 3], joints [T, J, 3] in the body model's own metres (before the scene alignment)."""
    out = forward_sequence(data.model, body_params(p, data.init))
    return out.vertices, out.joints


def to_scene(p: Stage2Params, x: jnp.ndarray) -> jnp.ndarray:
    """Body-frame points [..., 3] placed in the scene: exp(log_scale) x + offset."""
    return jnp.exp(p.log_scale) * x + p.offset


def human_in_scene(p: Stage2Params, data: Stage2Data):
    """-> vertices [T, V, 3], joints [T, J, 3] in the scene (world = camera-0) frame."""
    v, j = human_in_body(p, data)
    return to_scene(p, v), to_scene(p, j)


def object_poses(p: Stage2Params, data: Stage2Data) -> jnp.ndarray:
    """[T, P, 4, 4] part poses: the data's, moved by the tangent deltas (zero in decoupled mode)."""
    return (jaxlie.SE3.from_matrix(data.object_poses) @ jaxlie.SE3.exp(p.object_delta)).as_matrix()


def _surface(data: Stage2Data, poses: jnp.ndarray):
    """Object surface points [T, S, 3] and normals [T, S, 3] at part poses [T, P, 4, 4]."""
    means = jax.vmap(lambda q: move_gaussians(data.obj, q).means[data.surface_idx])(poses)
    part = data.obj.part_of[data.surface_idx]
    rots = jnp.concatenate([jnp.broadcast_to(jnp.eye(3), poses.shape[:1] + (1, 3, 3)), poses[:, :, :3, :3]], 1)
    normals = jnp.einsum("tsij,sj->tsi", rots[:, part], data.surface_normals0)
    return means, normals


def _render_frames(vertices, poses, data: Stage2Data, frames, render_cfg: RenderConfig):
    """Human + object composited for frames [F] -> rgb [F, h, w, 3], human coverage [F, h, w]."""
    h, w = data.images.shape[1:3]
    human_cols = jnp.concatenate([data.template.colors, jnp.ones_like(data.template.colors[:, :1])], -1)

    def one(t):
        g_h = pose_gaussians(data.template, vertices[t], data.model.faces).replace(colors=human_cols)
        g_o = move_gaussians(data.obj, poses[t]).replace(colors=data.object_colors)
        g = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), g_h, g_o)
        valid = jnp.concatenate([jnp.ones(g_h.means.shape[0], bool), data.obj.valid])
        cam = Camera(K=data.K_render, T_cam_world=data.T_cam_world[t], width=w, height=h)
        out = render(g, cam, render_cfg, background=jnp.zeros(4), valid=valid)
        return out.rgb[..., :3], out.rgb[..., 3]

    return jax.lax.map(one, frames)


def window(p: Stage2Params, data: Stage2Data, t0: jnp.ndarray, W: int) -> tuple[Stage2Params, Stage2Data]:
    """Frames [t0, t0 + W) of everything that has a frame axis (W static, t0 traced)."""
    sl = lambda x: jax.lax.dynamic_slice_in_dim(x, t0, W, 0)  # noqa: E731
    p_w = p.replace(body_pose=sl(p.body_pose), global_orient=sl(p.global_orient), transl=sl(p.transl),
                    object_delta=sl(p.object_delta))
    init = jax.tree.map(sl, data.init.replace(betas=None)).replace(betas=data.init.betas)  # betas: no frame axis
    d_w = data.replace(init=init, **{k: sl(getattr(data, k)) for k in (
        "images", "human_masks", "object_poses", "keypoints", "keypoint_weights", "hand_contact", "foot_contact",
        "tracks", "track_vis", "T_cam_world")})
    return p_w, d_w


def window_start(key: jnp.ndarray, T: jnp.ndarray, W: int) -> jnp.ndarray:
    """[] int32 first frame of a random W-frame window of T frames: drawn from [1 - W, T - 1] and clipped to
    [0, T - W], so that the first and last frames lie in the window as often as the middle ones
    (W / (T + W - 1)), the frames within W of the ends up to twice as often. A start drawn from [0, T - W]
    reached the end frames W times less often than the middle ones, and they kept the HMR jitter (drawer_hoi:
    the feet slid 1.2 and 2.1 cm on the first and last steps, 0.1-0.8 cm in between)."""
    return jnp.clip(jax.random.randint(key, (), 1 - W, T), 0, T - W)


def loss_terms(p: Stage2Params, data: Stage2Data, key: jnp.ndarray, cfg: Stage2Config,
               render_cfg: RenderConfig) -> jnp.ndarray:
    """[len(TERMS)] weighted loss terms on a random window of W = cfg.window_frames frames from `window_start`
    (sums scaled by T / W). T counts the valid frames (data.frame_valid); a batch keeps W <= T for every scene
    (see stage2_batch)."""
    T = jnp.sum(data.frame_valid)
    T_all = p.transl.shape[0]
    W = T_all if cfg.window_frames == 0 else min(cfg.window_frames, T_all)
    k_window, k_render = jax.random.split(key)
    p, data = window(p, data, window_start(k_window, T, W), W)
    body_verts, body_joints = human_in_body(p, data)
    verts, joints = to_scene(p, body_verts), to_scene(p, body_joints)
    poses = object_poses(p, data) if cfg.mode == "joint" else data.object_poses
    z = jnp.zeros((), jnp.float32)
    terms = dict.fromkeys(TERMS, z)
    if cfg.use_render_loss:
        F = W if cfg.render_frames == 0 else min(cfg.render_frames, W)
        frames = jax.random.choice(k_render, W, (F,), replace=False)
        rgb, sil = _render_frames(verts, poses, data, frames, render_cfg)
        terms["render"] = W / F * L.render_loss(rgb, sil, data.images[frames], data.human_masks[frames], cfg.beta_h)
    if cfg.use_prior_loss:
        terms["prior"] = cfg.lambda_p * L.prior_loss(p.body_pose, data.init.body_pose, p.global_orient,
                                                     data.init.global_orient, cfg.eta)
    if cfg.use_foot_loss:
        terms["foot"] = cfg.lambda_fs * L.foot_sliding_loss(body_verts[:, data.foot_vertices], data.foot_contact)
    if cfg.use_smoothness_loss:
        terms["smooth"] = cfg.lambda_s * L.smoothness_loss(body_joints[:, : jn.NUM_JOINTS])
    hands = joints[:, HAND_JOINTS.reshape(-1)]  # [W, 42, 3]
    if cfg.use_kinematic_loss:
        terms["kinematic"] = cfg.lambda_k * L.kinematic_loss(hands, data.keypoints, data.keypoint_weights,
                                                              cfg.kinematic_sigma_m)
    if cfg.use_contact_loss or (cfg.use_penetration_loss and cfg.penetration_model == "shell"):
        surf, normals = _surface(data, poses)
        valid = data.obj.valid[data.surface_idx]
    if cfg.use_contact_loss:
        per_hand = [L.contact_loss(hands[:, 21 * s: 21 * (s + 1)], surf, valid, data.hand_contact[:, s],
                                    cfg.contact_tolerance_m)
                    for s in range(2)]
        terms["contact"] = cfg.lambda_c * (per_hand[0] + per_hand[1])
    if cfg.use_penetration_loss and cfg.penetration_model == "box":
        terms["penetration"] = cfg.lambda_pen * L.box_penetration_loss(verts[:, data.body_points], poses,
                                                                       data.part_boxes, cfg.penetration_margin_m)
    elif cfg.use_penetration_loss and cfg.penetration_model == "arm_box":
        terms["penetration"] = cfg.lambda_pen * L.box_penetration_loss(verts[:, data.body_points], poses,
                                                                       data.part_boxes, -cfg.penetration_clearance_m)
    elif cfg.use_penetration_loss:
        terms["penetration"] = cfg.lambda_pen * L.penetration_loss(verts[:, data.body_points], surf, normals,
                                                                   valid, cfg.penetration_radius_m,
                                                                   cfg.penetration_margin_m)
    if cfg.lambda_depth > 0:
        # The pelvis is the root joint: J_pelvis(betas) + transl, so the start's is the body's moved by its transl.
        start = body_joints[:, 0] - p.transl + data.init.transl
        terms["depth"] = cfg.lambda_depth * L.depth_anchor_loss(joints[:, 0], start)
    if cfg.mode == "joint":
        terms["object"] = joint_opt.tracking_loss(data.obj, poses, data.tracks, data.track_vis, data.obj.K,
                                                  data.T_cam_world)
    return T / W * jnp.stack([terms[k] for k in TERMS])


def init_state(params: Stage2Params, cfg: Stage2Config, seed: int = 0) -> Stage2State:
    return Stage2State(params=params, opt_state=optimizer(cfg).init(params), key=jax.random.PRNGKey(seed),
                       step=jnp.int32(0), loss=jnp.float32(jnp.inf), terms=jnp.zeros(len(TERMS), jnp.float32),
                       bad_step=jnp.int32(-1), bad_what=jnp.zeros(len(TERMS) + 1, bool))


def step(state: Stage2State, data: Stage2Data, cfg: Stage2Config, render_cfg: RenderConfig) -> Stage2State:
    """One clipped Adam step; a step whose loss or gradient is not finite is skipped and recorded, and the
    parameters stay as they were before it (the last good state `optimize` reports)."""
    key, sub = jax.random.split(state.key)

    def objective(p):
        terms = loss_terms(p, data, sub, cfg, render_cfg)
        return jnp.sum(terms), terms

    (loss, terms), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
    grad_ok = jnp.all(jnp.stack([jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(grads)]))
    ok = jnp.isfinite(loss) & grad_ok
    grads = jax.tree.map(lambda g: jnp.where(ok, g, 0.0), grads)  # keep Adam's moments finite
    updates, opt_state = optimizer(cfg).update(grads, state.opt_state, state.params)
    good = ok & (state.bad_step < 0)  # after a bad step the parameters stay at the last good state
    keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(good, a, b), new, old)  # noqa: E731
    first_bad = ~ok & (state.bad_step < 0)
    return Stage2State(
        params=keep(optax.apply_updates(state.params, updates), state.params),
        opt_state=keep(opt_state, state.opt_state), key=key, step=state.step + 1, loss=loss, terms=terms,
        bad_step=jnp.where(first_bad, state.step, state.bad_step),
        bad_what=jnp.where(first_bad, jnp.concatenate([~jnp.isfinite(terms), ~grad_ok[None]]), state.bad_what))


@partial(jax.jit, static_argnames=("cfg", "render_cfg", "num_steps"))
def run_steps(state: Stage2State, data: Stage2Data, cfg: Stage2Config, render_cfg: RenderConfig,
              num_steps: int) -> tuple[Stage2State, jnp.ndarray]:
    """`num_steps` steps under lax.scan -> (state, loss per step [num_steps])."""

    def body(s, _):
        s = step(s, data, cfg, render_cfg)
        return s, s.loss

    return jax.lax.scan(body, state, None, length=num_steps)


TRACE_COUNT = {"steps": 0}  # traces (= compiles) of run_steps_batched, for tests and benchmarks


def _run_steps_batched(state, data, model, cfg, render_cfg, num_steps):
    TRACE_COUNT["steps"] += 1  # runs once per trace, i.e. once per compile
    run = lambda s, d: run_steps(s, d.replace(model=model), cfg=cfg, render_cfg=render_cfg,  # noqa: E731
                                 num_steps=num_steps)
    if state.step.shape[0] == 1:
        # One slot: run_steps' own program. Vmapped over an axis of 1 a step took 1.4x the CPU time (48x36 renders):
        # on XLA CPU the tile compositor's forward+backward ran 1.8x slower with the extra batch axis.
        return jax.tree.map(lambda x: x[None], run(*jax.tree.map(lambda x: x[0], (state, data))))
    return jax.vmap(run)(state, data)


# run_steps vmapped over a leading slot axis of state and data (data.model None: `model` is shared, not copied)
# -> (state [n], losses [n, num_steps]).
run_steps_batched = jax.jit(_run_steps_batched, static_argnames=("cfg", "render_cfg", "num_steps"))


# ---------------------------------------------------------------------------------------------------------
# Host side: driving the optimization.


@dataclasses.dataclass(frozen=True)
class Stage2Result:
    params: BodyParams  # [T] SMPL-X parameters (the HMR body, before the scene alignment)
    scale: float  # human-to-scene scale about the camera centre
    offset: np.ndarray  # [3] metres
    object_poses: np.ndarray  # [T, P, 4, 4] (Stage I's in decoupled mode)
    vertices: np.ndarray  # [T, V, 3] in the scene
    joints: np.ndarray  # [T, J, 3] in the scene
    losses: np.ndarray  # [iters] total loss per step
    terms: np.ndarray  # [len(TERMS)] final weighted terms


def initial_params(init: BodyParams, num_parts: int) -> Stage2Params:
    T = init.global_orient.shape[0]
    return Stage2Params(body_pose=init.body_pose, global_orient=init.global_orient, transl=init.transl,
                        log_scale=jnp.zeros((), jnp.float32), offset=jnp.zeros(3, jnp.float32),
                        object_delta=jnp.zeros((T, num_parts, 6), jnp.float32))


def align_to_keypoints(params: Stage2Params, data: Stage2Data) -> Stage2Params:
    """Closed-form start of the human-to-scene offset: the body moved along the mean viewing ray of the lifted
    contact keypoints by their median depth gap to the initialization's hand joints (weights as L_k). This resolves
    most of the monocular depth error before the optimization: left to Adam at lr_camera (1e-4 m per step) the
    offset cannot cover a 30 cm error in 1000 steps, and the per-frame translations absorbed it instead, lifting
    the feet off the floor and sliding them (door_hoi). Unchanged without lifted keypoints."""
    w = np.asarray(data.keypoint_weights)  # [T, 42]
    if w.sum() == 0:
        return params
    joints = np.asarray(human_in_scene(params, data)[1])[:, HAND_JOINTS.reshape(-1)]  # [T, 42, 3]
    K = np.asarray(data.keypoints)
    C = np.asarray(data.T_cam_world)
    centres = -np.einsum("tji,tj->ti", C[:, :3, :3], C[:, :3, 3])  # [T, 3] camera centres in the world
    d = K - centres[:, None]  # viewing rays from each keypoint's own camera
    ray = d / np.maximum(np.linalg.norm(d, axis=-1, keepdims=True), 1e-9)
    on = w > 0
    gap = np.median(np.sum(ray * (K - joints), -1)[on])  # median: a few keypoints at a wrong depth cannot move it
    mean_ray = np.sum(w[..., None] * ray, (0, 1))
    return params.replace(offset=params.offset + jnp.asarray(gap * mean_ray / np.linalg.norm(mean_ray), jnp.float32))


def start_params(data: Stage2Data, align_keypoints: bool) -> Stage2Params:
    """The parameters `optimize` starts from (the batch driver, arthoi_jax.batch.stage2_batch, too): data.init
    (the HMR body, which stage2_init.prepare may have moved by `align_to_depth` and refitted by `refit_arms`), moved by
    `align_to_keypoints` when align_keypoints (config `stage2.align: keypoints`). After the depth cue the
    keypoint gap would pull the body by the HMR arm error again, so the two are alternatives."""
    p = initial_params(data.init, data.object_poses.shape[1])
    return align_to_keypoints(p, data) if align_keypoints else p


PER_FRAME = ("body_pose", "global_orient", "transl", "object_delta")  # Stage2Params fields with a frame axis
Progress = dict  # str -> np.ndarray: the loop's state after a chunk (see new_progress); checkpointable


def new_progress(datas: list[Stage2Data], num_frames: int, num_slots: int, cfg: Stage2Config,
                 seed: int = 0) -> Progress:
    """Progress before the first step: "chunk" (next chunk), "losses" [n, iters], "failed" [n] bool,
    "failed_terms" [n, len(TERMS)] (the terms at the end of the chunk a scene failed in), "state" (the batched
    Stage2State). Every slot starts from stage2.start_params of its scene's unpadded data and a fresh optimizer
    (slots past the scenes: copies of the first), the per-frame parameters zero-padded to num_frames."""
    states = []
    for d in datas + [datas[0]] * (num_slots - len(datas)):
        p = start_params(d, cfg.align == "keypoints")
        p = p.replace(**{k: pad_rows(np.asarray(getattr(p, k)), num_frames) for k in PER_FRAME})
        states.append(init_state(p, cfg, seed))
    return {"chunk": np.int64(0), "losses": np.zeros((num_slots, cfg.iters), np.float32),
            "failed": np.zeros(num_slots, bool), "failed_terms": np.zeros((num_slots, len(TERMS)), np.float32),
            "state": stack_trees(states)}


def optimize_scenes(datas: list[Stage2Data], data_b: Stage2Data, model: BodyModel, cfg: Stage2Config,
                    render_cfg: RenderConfig, *, seed: int = 0, put: Callable = jax.device_put, get: Callable = jax.device_get,
                    resume: Progress | None = None, on_chunk: Callable[[Progress, int], None] | None = None,
                    progress: bool = True) -> list[Stage2Result | OptimizationError]:
    """Stage II of several scenes of the same shapes in one program: cfg.iters steps in chunks of
    cfg.steps_per_chunk (`run_steps_batched`), every scene from its own start (`new_progress`).

    datas: the scenes' Stage2Data (unpadded, with the model; results are cut to their frames). data_b: the same
    scenes padded to common shapes (arthoi_jax.batch.stage2_batch.pad_data: frames marked in frame_valid,
    Gaussians, tracks, pairs), the model left out (None), stacked on a leading slot axis of n >= len(datas) slots
    and already placed where the program runs (slots past the scenes: copies of the first, results dropped).
    put / get move a numpy pytree with that leading axis to the devices and back (arthoi_jax.batch shards it).
    A scene whose loss or gradient turns non-finite keeps its last good parameters (see `step`) while the others
    go on; the loop stops early once every scene has failed.
    on_chunk(progress, steps_run) is called after every chunk; `resume` continues from such a progress.
    Returns, per scene, its Stage2Result or the OptimizationError naming the step and the non-finite quantities
    (its `last_good`: the Stage2Params, by field name, before that step).
    """
    n, T = data_b.frame_valid.shape[:2]
    snap = resume if resume is not None else new_progress(datas, T, n, cfg, seed)
    state = put(snap["state"])
    chunks = math.ceil(cfg.iters / cfg.steps_per_chunk)
    done = min(int(snap["chunk"]) * cfg.steps_per_chunk, cfg.iters)
    one = len(datas) == 1
    bar = tqdm(total=cfg.iters, initial=done, desc="stage2" if one else f"stage2 x{len(datas)}",
               disable=not progress, dynamic_ncols=True)
    for c in range(int(snap["chunk"]), chunks):
        if snap["failed"][: len(datas)].all():
            break
        k = min(cfg.steps_per_chunk, cfg.iters - c * cfg.steps_per_chunk)
        state, losses = run_steps_batched(state, data_b, model, cfg=cfg, render_cfg=render_cfg, num_steps=k)
        host = get(state)
        snap["losses"][:, c * cfg.steps_per_chunk: c * cfg.steps_per_chunk + k] = get(losses)
        new = (host.bad_step >= 0) & ~snap["failed"]
        snap["failed"][new], snap["failed_terms"][new] = True, host.terms[new]
        snap.update(chunk=np.int64(c + 1), state=host)
        if on_chunk is not None:
            on_chunk(snap, k)
        ok = host.bad_step[: len(datas)] < 0
        if one:
            bar.set_postfix({t: f"{v:.3g}" for t, v in zip(TERMS, host.terms[0]) if v != 0})
        else:
            bar.set_postfix(step=int(host.step.max()), failed=int((~ok).sum()),
                            loss=f"{host.loss[: len(datas)][ok].mean() if ok.any() else 0.0:.4g}")
        bar.update(k)
    bar.close()
    return [scene_result(d, snap, s) for s, d in enumerate(datas)]


def scene_result(data: Stage2Data, snap: Progress, s: int) -> Stage2Result | OptimizationError:
    """Slot s of a progress -> its Stage2Result (cut to data's frames), or its OptimizationError."""
    st = jax.tree.map(lambda x: x[s], snap["state"])
    T = data.images.shape[0]
    st = st.replace(params=st.params.replace(**{k: getattr(st.params, k)[:T] for k in PER_FRAME}))
    if snap["failed"][s]:
        return nonfinite_error(st.replace(terms=snap["failed_terms"][s]))
    return result(jax.tree.map(jnp.asarray, st.params), data, snap["losses"][s], np.asarray(st.terms))


def optimize(data: Stage2Data, cfg: Stage2Config, render_cfg: RenderConfig, progress: bool = True,
             seed: int = 0) -> Stage2Result:
    """Runs cfg.iters steps in chunks of cfg.steps_per_chunk: the one-scene case of `optimize_scenes`.

    Raises OptimizationError naming the step and the non-finite quantities; its `last_good` holds the
    Stage2Params (by field name) before that step.
    """
    data_b = jax.tree.map(lambda x: jnp.asarray(x)[None], data.replace(model=None))  # a slot axis, on the device
    out = optimize_scenes([data], data_b, data.model, cfg, render_cfg, seed=seed, progress=progress)[0]
    if isinstance(out, OptimizationError):
        raise out
    return out


def nonfinite_error(state: Stage2State) -> OptimizationError:
    """The OptimizationError of a state whose bad_step >= 0: the step and non-finite quantities named, its
    `last_good` the Stage2Params (by field name) before that step."""
    what = [k for k, bad in zip(TERMS + ("gradient",), np.asarray(state.bad_what)) if bad]
    return OptimizationError(
        f"stage2: non-finite {' and '.join(what) or 'loss'} at step {int(state.bad_step)} "
        f"(terms {dict(zip(TERMS, np.asarray(state.terms).tolist()))})",
        last_good={"step": int(state.bad_step), **{f.name: np.asarray(getattr(state.params, f.name))
                                                  for f in dataclasses.fields(state.params)}})


def result(p: Stage2Params, data: Stage2Data, losses: np.ndarray, terms: np.ndarray) -> Stage2Result:
    """The Stage2Result of the final parameters (losses [iters] per step, terms [len(TERMS)] the last)."""
    verts, joints = human_in_scene(p, data)
    return Stage2Result(params=jax.tree.map(np.asarray, body_params(p, data.init)),
                        scale=float(jnp.exp(p.log_scale)), offset=np.asarray(p.offset),
                        object_poses=np.asarray(object_poses(p, data)), vertices=np.asarray(verts),
                        joints=np.asarray(joints), losses=losses, terms=terms)
