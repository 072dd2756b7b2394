"""A tiny Stage II problem: the license-free body standing 2.5 m in front of the camera, one object part (a
square plane of Gaussians) beside its right hand, and a 3D contact keypoint for the right wrist on that plane."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from arthoi_jax import stage1, stage2_init
from arthoi_jax.body import joint_names as jn
from arthoi_jax.body.model import BodyParams, forward_sequence
from arthoi_jax.config import RenderConfig, Stage1Config, Stage2Config
from arthoi_jax.render.types import Gaussians
from arthoi_jax.segmentation import PartSegmentation

T, H, W = 6, 48, 64
K = np.array([[60.0, 0, W / 2], [0, 60.0, H / 2], [0, 0, 1.0]])
FAST = Stage2Config(iters=40, steps_per_chunk=20, window_frames=4, render_frames=1, human_gaussians=64,
                    surface_points=64, body_points=64, render_downsample=4)


def init_params(model) -> BodyParams:
    p = BodyParams.zeros(model, T)
    # Upright in the OpenCV camera frame (y down): turn the y-up body by pi about x, 2.5 m away.
    return p.replace(global_orient=jnp.tile(jnp.array([np.pi, 0.0, 0.0]), (T, 1)),
                     transl=jnp.tile(jnp.array([0.0, 0.0, 2.5]), (T, 1)))


def segmentation(centre: np.ndarray, n: int = 8, size: float = 0.3) -> PartSegmentation:
    g = np.linspace(-size / 2, size / 2, n)
    xy = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    means = np.concatenate([xy, np.zeros((len(xy), 1))], -1) + centre  # a plane facing the camera
    G = len(means)
    gauss = Gaussians(means=means.astype(np.float32), quats=np.tile([1.0, 0, 0, 0], (G, 1)).astype(np.float32),
                      log_scales=np.tile(np.log([0.02, 0.02, 0.002]), (G, 1)).astype(np.float32),
                      opacity_logits=np.full(G, 2.0, np.float32), colors=np.full((G, 3), 0.5, np.float32))
    uv = means[:, :2] / means[:, 2:] * 60 + [W / 2, H / 2]
    return PartSegmentation(
        track_labels=np.ones(G, np.int32), track_points=means.astype(np.float32),
        track_motion_px=np.ones(G, np.float32), quasi_static=np.zeros(G, bool),
        part_masks=np.ones((T, 1, H, W), bool), gaussians=gauss, gaussian_uv=uv.astype(np.float32),
        weights=np.tile([0.0, 1.0], (G, 1)).astype(np.float32), binding_pairs=np.zeros((0, 2), np.int32))


def problem(model, cfg: Stage2Config = FAST, target_offset=(0.0, 0.0, 0.1)):
    """-> (Stage2Data, the right wrist's keypoint target [3])."""
    init = init_params(model)
    wrist = np.asarray(forward_sequence(model, init).joints[0, jn.joint_index("right_wrist")])
    target = wrist + np.asarray(target_offset)
    seg = segmentation(target)
    obj = stage1.build_scene(seg, K, (H, W), Stage1Config(), 0.05)
    kp = np.zeros((T, 2, 21, 3), np.float32)
    kw = np.zeros((T, 2, 21), np.float32)
    kp[:, 1, 0], kw[:, 1, 0] = target, 1.0
    contact = np.zeros((T, 2), bool)
    contact[:, 1] = True
    frames = np.full((T, H, W, 3), 128, np.uint8)
    masks = np.zeros((T, H, W), bool)
    masks[:, 8:40, 24:40] = True
    poses = np.tile(np.eye(4), (T, 1, 1, 1))
    M = obj.track_points.shape[0]
    data = stage2_init.build_data(model, init, frames, masks, K, obj, poses, kp, kw, contact, np.ones((T, 4), bool),
                                  np.zeros((T, M, 2), np.float32), np.zeros((T, M), bool), cfg)
    return data, target


RENDER = dataclasses.replace(RenderConfig(), tile_capacity=64)
