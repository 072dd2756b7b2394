"""Synthetic scenes seen by a moving camera, for tests: the generator's scene with every part's world vertices
moved into camera t by known extrinsics before rendering (the renderer's camera sits at the origin), so frames,
masks, depth and ground-truth tracks are those of camera t while the ground-truth joints and part poses stay in
the world (= camera 0) frame."""

import dataclasses

import numpy as np
from scipy.spatial.transform import Rotation

from arthoi_jax.config import SyntheticConfig
from arthoi_jax.io.bundle import SceneBundle
from arthoi_jax.synthetic.motion import apply
from arthoi_jax.synthetic.scene import build_scene, render_bundle


def orbit(T: int, deg_per_frame: float = 0.8, step_m=(0.03, -0.005, 0.01)) -> np.ndarray:
    """[T, 4, 4] world-to-camera extrinsics: a pan about a tilted vertical axis and a sideways dolly, I at 0."""
    out = np.tile(np.eye(4), (T, 1, 1))
    axis = np.array([0.1, 1.0, 0.05]) / np.linalg.norm([0.1, 1.0, 0.05])
    for t in range(1, T):
        out[t, :3, :3] = Rotation.from_rotvec(axis * np.radians(deg_per_frame * t)).as_matrix()
        out[t, :3, 3] = np.asarray(step_m) * t
    return out


def moving_camera_bundle(cfg: SyntheticConfig, T_cam_world: np.ndarray) -> SceneBundle:
    """The synthetic scene of cfg seen by cameras T_cam_world [T, 4, 4] (world = camera 0): the bundle carries
    them; its ground-truth joints and part poses are in the world frame."""
    scene = build_scene(cfg)
    parts = tuple(dataclasses.replace(p, vertices=np.stack([apply(T, v) for T, v in zip(T_cam_world, p.vertices)]))
                  for p in scene.parts)
    return dataclasses.replace(render_bundle(dataclasses.replace(scene, parts=parts)), T_cam_world=T_cam_world)
