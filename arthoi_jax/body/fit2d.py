"""Checkpoint-free HMR initialization: the body model fitted to 2D body landmarks per frame, SMPLify-style, in JAX.

Objective (summed over frames; every frame's body comes from one vmapped forward pass, all frames optimized
jointly with Adam in one jitted step):
  * data: confidence-weighted Geman-McClure reprojection error of the mapped joints (`LANDMARK_MAP`), scale
    `robust_sigma` (a fraction of the image size), in units of (1 % of the image size)^2: ~1 for a 5 px error at
    512 px, so a few pixels outweigh the priors, while an outlier adds at most (sigma / 1 %)^2 = 25;
  * pose prior: L2 on `body_pose` (a zero-mean Gaussian; no VPoser/GMM weights needed), plus SMPLify's bending
    prior exp(+-theta)^2 on elbows and knees, which penalises bending them the wrong way;
  * shape prior: L2 on betas;
  * body height: the shaped rest body's height (model y extent) against `body_height_m`. Monocular 2D fixes the
    body only up to scale (a body twice as large twice as far projects the same); the height prior fixes the
    scale, and with it the metric distance along the ray through the focal length;
  * temporal smoothness: squared frame-to-frame motion (metres) of the mapped joints.
Two phases, as SMPLify: first the global orientation and translation only (from a torso-length depth guess and
the facing direction read off the shoulders' left/right order), then everything.

Mapping of MediaPipe Pose's 33 landmarks to SMPL-X output joints (`LANDMARK_MAP`; unmapped: eye inner/outer
corners, mouth corners and the three hand landmarks, which the hand keypoints cover):

  MediaPipe         SMPL-X joint      weight  note
  nose              nose              1.0     vertex joint
  left/right_eye    left/right_eye    1.0     vertex joints (eye centres)
  left/right_ear    left/right_ear    1.0     vertex joints
  left/right_shoulder  left/right_shoulder  1.0
  left/right_elbow  left/right_elbow  1.0
  left/right_wrist  left/right_wrist  1.0
  left/right_hip    left/right_hip    0.5     MediaPipe's hips sit higher and wider than SMPL-X's hip joints
  left/right_knee   left/right_knee   1.0
  left/right_ankle  left/right_ankle  1.0
  left/right_heel   left/right_heel   1.0     vertex joints
  left/right_foot_index  left/right_big_toe  1.0  vertex joints

Frames: the camera frame of each video frame (OpenCV axes); with a moving camera the caller re-poses frame t into
the world with its extrinsics (`body.model.repose`). Frames where no body was found (all confidences 0) are
filled by the smoothness and prior terms; `FitResult.body_found` marks them.
"""

from __future__ import annotations

import dataclasses
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax

from arthoi_jax.body import joint_names as jn
from arthoi_jax.body import lbs
from arthoi_jax.body.model import BodyModel, BodyParams, joints_and_vertices, rest_joints
from arthoi_jax.errors import InputError, OptimizationError
from arthoi_jax.io.bundle import SmplxParams
from arthoi_jax.preprocess.mediapipe_human import BODY_LANDMARKS

LANDMARK_MAP = (
    ("nose", "nose", 1.0), ("left_eye", "left_eye", 1.0), ("right_eye", "right_eye", 1.0),
    ("left_ear", "left_ear", 1.0), ("right_ear", "right_ear", 1.0),
    ("left_shoulder", "left_shoulder", 1.0), ("right_shoulder", "right_shoulder", 1.0),
    ("left_elbow", "left_elbow", 1.0), ("right_elbow", "right_elbow", 1.0),
    ("left_wrist", "left_wrist", 1.0), ("right_wrist", "right_wrist", 1.0),
    ("left_hip", "left_hip", 0.5), ("right_hip", "right_hip", 0.5),
    ("left_knee", "left_knee", 1.0), ("right_knee", "right_knee", 1.0),
    ("left_ankle", "left_ankle", 1.0), ("right_ankle", "right_ankle", 1.0),
    ("left_heel", "left_heel", 1.0), ("right_heel", "right_heel", 1.0),
    ("left_foot_index", "left_big_toe", 1.0), ("right_foot_index", "right_big_toe", 1.0),
)  # fmt: skip
LANDMARK_IDS = np.array([BODY_LANDMARKS.index(m) for m, _, _ in LANDMARK_MAP])
JOINT_IDS = np.array([jn.joint_index(s) for _, s, _ in LANDMARK_MAP])  # into the 127 output joints
LANDMARK_WEIGHTS = np.array([w for _, _, w in LANDMARK_MAP], np.float32)
# SMPLify's bending prior on body_pose (flattened [21 * 3]): elbows about y, knees about x, with signs.
BEND_IDS, BEND_SIGNS = np.array([52, 55, 9, 12]), np.array([1.0, -1.0, -1.0, -1.0], np.float32)
FACING, FACING_AWAY = (np.pi, 0.0, 0.0), (0.0, 0.0, np.pi)  # global_orient: model y-up -> camera y-down
STEPS_PER_CHUNK = 50
DATA_UNIT = 0.01  # the data term's pixel unit, a fraction of max(H, W) (module docstring)
ORIENT_PHASE = 0.3  # fraction of the steps that fit only the global orientation and translation


@dataclasses.dataclass(frozen=True)
class FitSettings:
    """Weights and schedule (the `human` config section carries the same names)."""

    steps: int = 400
    lr: float = 0.02
    min_conf: float = 0.3
    robust_sigma: float = 0.05  # fraction of max(H, W)
    body_height_m: float = 1.7
    body_height_sigma_m: float = 0.05
    lambda_pose: float = 1.0
    lambda_shape: float = 1.0
    lambda_bend: float = 1.0
    lambda_smooth: float = 100.0


@dataclasses.dataclass(frozen=True)
class FitResult:
    params: BodyParams  # [T] leading axis (betas [B] shared), camera frame of each video frame
    joints3d: np.ndarray  # [T, 21, 3] mapped joints, metres, camera frame of each frame, `LANDMARK_MAP` order
    joints2d: np.ndarray  # [T, 21, 2] their projections, pixels
    reprojection_px: np.ndarray  # [T] mean pixel error over the used landmarks (nan where none)
    body_found: np.ndarray  # [T] bool, frames with at least 4 used landmarks
    height_m: float  # the fitted body's rest height
    rest_pelvis: np.ndarray  # [3] pelvis J0 of the shaped rest body (what global_orient rotates about)

    @property
    def mean_reprojection_px(self) -> float:
        return float(np.nanmean(self.reprojection_px)) if self.body_found.any() else float("nan")


def mapped_joints(model: BodyModel, betas, global_orient, body_pose, transl) -> jnp.ndarray:
    """The `LANDMARK_MAP` joints of one posed body: betas [B], global_orient [3], body_pose [21, 3], transl [3]
    -> [21, 3] metres. Skins only the few vertex joints needed (not all vertices); matches `forward`'s joints."""
    params = BodyParams.zeros(model).replace(betas=betas, global_orient=global_orient, body_pose=body_pose,
                                             transl=transl)
    posed, extra = joints_and_vertices(model, params, np.asarray(jn.EXTRA_VERTEX_IDS))
    return jnp.concatenate([posed, extra])[JOINT_IDS]  # skeleton then vertex joints, as the output order


def body_height(model: BodyModel, betas) -> jnp.ndarray:
    """Rest height (metres, model y extent) of the shaped body."""
    y = model.v_template[:, 1] + model.shapedirs[:, 1] @ betas
    return y.max() - y.min()


def project(K, points):
    """points [..., 3] camera frame -> pixels [..., 2] (depth clamped at 5 cm)."""
    uvw = points @ K.T
    return uvw[..., :2] / jnp.maximum(uvw[..., 2:], 0.05)


def _loss(free, model, K, target, weight, sigma, unit, s: FitSettings):
    T = target.shape[0]
    joints = jax.vmap(mapped_joints, in_axes=(None, None, 0, 0, 0))(
        model, free["betas"], free["global_orient"], free["body_pose"], free["transl"])
    r2 = jnp.sum((project(K, joints) - target) ** 2, -1)
    data = jnp.sum(weight * sigma**2 * r2 / (r2 + sigma**2)) / (T * unit**2)  # Geman-McClure
    pose = free["body_pose"].reshape(T, -1)
    prior = s.lambda_pose * jnp.mean(jnp.sum(pose**2, -1))
    bend = s.lambda_bend * jnp.mean(jnp.sum(jnp.exp(pose[:, BEND_IDS] * BEND_SIGNS) ** 2, -1))
    shape = s.lambda_shape * jnp.sum(free["betas"] ** 2)
    height = ((body_height(model, free["betas"]) - s.body_height_m) / s.body_height_sigma_m) ** 2
    smooth = s.lambda_smooth * jnp.sum((joints[1:] - joints[:-1]) ** 2) / max(T - 1, 1)
    return data + prior + bend + shape + height + smooth


@partial(jax.jit, static_argnames=("settings",))
def _chunk(free, opt_state, bad, trainable, model, K, target, weight, sigma, unit, settings: FitSettings):
    """STEPS_PER_CHUNK Adam steps; `trainable` (a pytree of 0/1 like `free`) freezes parameters.
    bad [3] int32: steps taken, the first step whose loss or gradient was non-finite (-1: none) and what was
    (1 loss, 2 gradient, 3 both); from that step on the parameters stay at their last good values."""
    opt = optax.adam(settings.lr)

    def step(carry, _):
        free, opt_state, bad = carry
        loss, grads = jax.value_and_grad(_loss)(free, model, K, target, weight, sigma, unit, settings)
        grads = jax.tree.map(lambda g, m: g * m, grads, trainable)
        loss_ok = jnp.isfinite(loss)
        grad_ok = jnp.all(jnp.stack([jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(grads)]))
        good, first = loss_ok & grad_ok & (bad[1] < 0), ~(loss_ok & grad_ok) & (bad[1] < 0)
        updates, new_state = opt.update(jax.tree.map(lambda g: jnp.where(good, g, 0.0), grads), opt_state, free)
        keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(good, a, b), new, old)  # noqa: E731
        what = (~loss_ok).astype(jnp.int32) + 2 * (~grad_ok).astype(jnp.int32)
        bad = jnp.stack([bad[0] + 1, jnp.where(first, bad[0], bad[1]), jnp.where(first, what, bad[2])])
        return (keep(optax.apply_updates(free, updates), free), keep(new_state, opt_state), bad), loss

    (free, opt_state, bad), losses = jax.lax.scan(step, (free, opt_state, bad), None, length=STEPS_PER_CHUNK)
    return free, opt_state, bad, losses


def _initial(model: BodyModel, lm: np.ndarray, w: np.ndarray, K: np.ndarray, height_m: float) -> dict:
    """Per-frame global orientation (facing the camera or away, from the shoulders) and translation (depth from
    the shoulder-hip length, interpolated over frames without a torso)."""
    T = lm.shape[0]
    B = model.num_betas
    J = np.asarray(rest_joints(model, jnp.zeros(B), jnp.zeros(model.num_expression)))
    scale = height_m / float(body_height(model, jnp.zeros(B)))
    torso_m = scale * np.linalg.norm((J[16] + J[17]) / 2 - (J[1] + J[2]) / 2)  # shoulders to hips
    ls, rs, lh, rh = (BODY_LANDMARKS.index(n) for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip"))
    ok = (w[:, [ls, rs, lh, rh]] > 0).all(1)
    mid_s, mid_h = (lm[:, ls] + lm[:, rs]) / 2, (lm[:, lh] + lm[:, rh]) / 2
    torso_px = np.linalg.norm(mid_s - mid_h, axis=1)
    ok &= torso_px > 1.0
    if not ok.any():
        raise InputError("body fit: no frame shows both shoulders and both hips with enough confidence; "
                         "cannot place the body (check the video or lower human.fit_min_conf)")
    frames = np.arange(T)
    z = np.interp(frames, frames[ok], K[0, 0] * torso_m / torso_px[ok])
    mid_h = np.stack([np.interp(frames, frames[ok], mid_h[ok, i]) for i in range(2)], -1)
    centre = np.stack([(mid_h[:, 0] - K[0, 2]) / K[0, 0] * z, (mid_h[:, 1] - K[1, 2]) / K[1, 1] * z, z], -1)
    away = np.interp(frames, frames[ok], (lm[ok, ls, 0] < lm[ok, rs, 0]).astype(float)) > 0.5
    orient = np.where(away[:, None], FACING_AWAY, FACING)
    return {"betas": jnp.zeros(B, jnp.float32), "global_orient": jnp.asarray(orient, jnp.float32),
            "body_pose": jnp.zeros((T, jn.NUM_BODY_JOINTS, 3), jnp.float32),
            "transl": jnp.asarray(centre - J[0], jnp.float32)}


def fit_body_to_landmarks(model: BodyModel, landmarks: np.ndarray, conf: np.ndarray, K: np.ndarray,
                          image_hw: tuple[int, int], settings: FitSettings = FitSettings()) -> FitResult:
    """Fits the body model to 2D landmarks, all frames jointly (module docstring).

    Args:
      model: the body (license-free or SMPL-X); landmarks: [T, 33, 2] MediaPipe Pose landmarks, pixels;
      conf: [T, 33] in [0, 1] (0 where no body); K: [3, 3] intrinsics of those pixels; image_hw: (H, W).
      Landmarks below `settings.min_conf` or not finite are not used.
    Returns:
      FitResult; params in each frame's camera frame (OpenCV axes), metres.
    Raises:
      InputError: malformed inputs, or no frame with both shoulders and hips.
      OptimizationError: a non-finite loss or gradient (its step named; `last_good`: the parameters before it).
    """
    lm, conf, K = np.asarray(landmarks, np.float64), np.asarray(conf, np.float64), np.asarray(K, np.float64)
    T = lm.shape[0]
    if lm.shape != (T, len(BODY_LANDMARKS), 2) or conf.shape != (T, len(BODY_LANDMARKS)) or K.shape != (3, 3):
        raise InputError(f"body fit: expected landmarks [T, 33, 2], conf [T, 33], K [3, 3]; got "
                         f"{list(lm.shape)}, {list(conf.shape)}, {list(K.shape)}")
    used = (conf >= settings.min_conf) & np.isfinite(lm).all(-1)  # a non-finite landmark is ignored
    w_all = np.where(used, conf, 0.0)
    free = _initial(model, np.where(used[..., None], lm, 0.0), w_all, K, settings.body_height_m)
    target = jnp.asarray(np.where(used[..., None], lm, 0.0)[:, LANDMARK_IDS], jnp.float32)
    weight = jnp.asarray(w_all[:, LANDMARK_IDS] * LANDMARK_WEIGHTS, jnp.float32)
    sigma = jnp.float32(settings.robust_sigma * max(image_hw))
    unit = jnp.float32(DATA_UNIT * max(image_hw))
    Kj = jnp.asarray(K, jnp.float32)
    opt_state = optax.adam(settings.lr).init(free)
    bad = jnp.array([0, -1, 0], jnp.int32)
    chunks = max(1, -(-settings.steps // STEPS_PER_CHUNK))
    orient_chunks = round(ORIENT_PHASE * chunks)
    for c in range(chunks):
        only_orient = c < orient_chunks
        trainable = {k: jnp.full_like(v, 0.0 if only_orient and k in ("betas", "body_pose") else 1.0)
                     for k, v in free.items()}
        free, opt_state, bad, losses = _chunk(free, opt_state, bad, trainable, model, Kj, target, weight, sigma,
                                              unit, settings)
        if int(bad[1]) >= 0:
            raise OptimizationError(
                f"body fit: non-finite {('loss', 'gradient', 'loss and gradient')[int(bad[2]) - 1]} at step "
                f"{int(bad[1])} (human.fit_lr {settings.lr}; loss at the chunk's first and last step "
                f"{np.asarray(losses)[[0, -1]].tolist()})",
                last_good={"step": int(bad[1]), **{k: np.asarray(v) for k, v in free.items()}})
    joints = jax.vmap(mapped_joints, in_axes=(None, None, 0, 0, 0))(
        model, free["betas"], free["global_orient"], free["body_pose"], free["transl"])
    joints2d = np.asarray(project(Kj, joints), np.float64)
    use = used[:, LANDMARK_IDS]
    err = np.linalg.norm(joints2d - lm[:, LANDMARK_IDS], axis=-1)
    found = use.sum(1) >= 4
    per_frame = np.where(found, (err * use).sum(1) / np.maximum(use.sum(1), 1), np.nan)
    params = BodyParams.zeros(model, T).replace(betas=free["betas"], global_orient=free["global_orient"],
                                                body_pose=free["body_pose"], transl=free["transl"])
    J0 = np.asarray(rest_joints(model, free["betas"], jnp.zeros(model.num_expression))[0], np.float64)
    return FitResult(params, np.asarray(joints, np.float64), joints2d, per_frame, found,
                     float(body_height(model, free["betas"])), J0)


def settings_from_config(human_cfg) -> FitSettings:
    """FitSettings from the `human` config section."""
    return FitSettings(
        steps=human_cfg.fit_steps, lr=human_cfg.fit_lr, min_conf=human_cfg.fit_min_conf,
        robust_sigma=human_cfg.robust_sigma, body_height_m=human_cfg.body_height_m,
        body_height_sigma_m=human_cfg.body_height_sigma_m, lambda_pose=human_cfg.lambda_pose,
        lambda_shape=human_cfg.lambda_shape, lambda_bend=human_cfg.lambda_bend,
        lambda_smooth=human_cfg.lambda_smooth)  # fmt: skip


def to_smplx_params(fit: FitResult, T_cam_world: np.ndarray | None = None, *, num_expression: int = 10,
                    flat_hand_mean: bool = True, gender: str = "neutral") -> SmplxParams:
    """The bundle's `SmplxParams` of a fit, moved from each frame's camera into the world (= camera 0) with the
    world-to-camera extrinsics T_cam_world [T, 4, 4] (None: static camera). global_orient rotates about the rest
    pelvis J0 and transl is added after, so x -> R x + t maps them to R go and R (transl + J0) + t - J0."""
    p = fit.params
    go, transl = np.asarray(p.global_orient, np.float64), np.asarray(p.transl, np.float64)
    T = go.shape[0]
    if T_cam_world is not None:
        R = np.transpose(T_cam_world[:, :3, :3], (0, 2, 1))  # camera t -> world
        t = -np.einsum("tij,tj->ti", R, T_cam_world[:, :3, 3])
        go = np.asarray(lbs.rotation_to_axis_angle(jnp.asarray(R @ np.asarray(lbs.rodrigues(jnp.asarray(go))))))
        transl = np.einsum("tij,tj->ti", R, transl + fit.rest_pelvis) + t - fit.rest_pelvis
    zeros = lambda *s: np.zeros((T,) + s, np.float32)
    return SmplxParams(
        betas=np.asarray(p.betas, np.float32), global_orient=go.astype(np.float32),
        body_pose=np.asarray(p.body_pose, np.float32), transl=transl.astype(np.float32),
        left_hand_pose=zeros(15, 3), right_hand_pose=zeros(15, 3), jaw_pose=zeros(3),
        expression=zeros(num_expression), flat_hand_mean=flat_hand_mean, gender=gender)  # fmt: skip
