"""A simulated HMR initialization: ground-truth SMPL-X motion spoiled by the errors a monocular method makes.

* per-joint rotation noise, fixed over the clip (a biased pose): each body joint turned by a random axis-angle
  of norm ~ N(0, rotation_noise_deg);
* a depth/scale error: the whole body moved along the camera ray through its pelvis by `depth_scale_error`
  (pelvis p -> (1 + e) p; the body keeps its size, so it projects slightly smaller or larger);
* temporal jitter: i.i.d. per frame and joint (jitter_deg, root included) and per frame translation (jitter_m).
Real HMR results (GVHMR, issue 5/6) fill the same bundle field, `SceneBundle.smplx_init`.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy.spatial.transform import Rotation

from arthoi_jax.body.model import BodyModel, rest_joints
from arthoi_jax.config import HmrSimConfig
from arthoi_jax.io.bundle import SmplxParams


def _turn(aa: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """Axis-angles [..., 3] pre-multiplied by the rotations `noise` [..., 3] (axis-angle)."""
    shape = aa.shape
    r = Rotation.from_rotvec(noise.reshape(-1, 3)) * Rotation.from_rotvec(aa.reshape(-1, 3))
    return r.as_rotvec().reshape(shape).astype(np.float32)


def _random_rotvecs(rng, shape, sigma_deg: float) -> np.ndarray:
    axis = rng.normal(size=shape + (3,))
    axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
    return axis * rng.normal(scale=np.deg2rad(sigma_deg), size=shape + (1,))


def simulate_hmr(model: BodyModel, gt: SmplxParams, cfg: HmrSimConfig) -> SmplxParams:
    """The HMR-like initialization of ground-truth parameters `gt` (world = camera-0 frame). Deterministic."""
    rng = np.random.default_rng([cfg.seed, 8])
    T = gt.global_orient.shape[0]
    bias = _random_rotvecs(rng, (1, 21), cfg.rotation_noise_deg)
    jitter = _random_rotvecs(rng, (T, 21), cfg.jitter_deg)
    body = _turn(_turn(gt.body_pose, np.broadcast_to(bias, (T, 21, 3))), jitter)
    root = _turn(gt.global_orient, _random_rotvecs(rng, (T,), cfg.jitter_deg))
    n = model.num_betas
    betas = np.zeros(n, np.float32)
    betas[: min(n, len(gt.betas))] = gt.betas[:n]
    j0 = np.asarray(rest_joints(model, betas, np.zeros(model.num_expression, np.float32))[0])
    pelvis = gt.transl + j0  # the root turns about J0, so the pelvis is at J0 + transl
    transl = gt.transl + cfg.depth_scale_error * pelvis + rng.normal(scale=cfg.jitter_m, size=(T, 3))
    return dataclasses.replace(gt, global_orient=root, body_pose=body, transl=transl.astype(np.float32))
