"""Joint motion and camera placement for the synthetic scenes (4x4 rigid transforms, metres, radians)."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation


def open_and_hold(num_frames: int, peak: float, start: float = 0.0, end: float = 0.75) -> np.ndarray:
    """Joint value per frame: 0 until fraction `start` of the clip, a cosine ease-in-out to `peak` at
    fraction `end`, then held. -> [T] float64; value 0 at frame 0."""
    s = np.linspace(0.0, 1.0, num_frames)
    u = np.clip((s - start) / (end - start), 0.0, 1.0)
    return peak * 0.5 * (1.0 - np.cos(np.pi * u))


def joint_transform(joint_type: str, axis: np.ndarray, pivot: np.ndarray, value: float) -> np.ndarray:
    """The [4, 4] motion of a part at joint value `value`: a rotation by `value` radians about the line
    (pivot, axis) for "revolute", a translation by `value` metres along axis for "prismatic"."""
    T = np.eye(4)
    axis = np.asarray(axis, np.float64)
    if joint_type == "revolute":
        R = Rotation.from_rotvec(axis * value).as_matrix()
        T[:3, :3] = R
        T[:3, 3] = pivot - R @ pivot
    elif joint_type == "prismatic":
        T[:3, 3] = axis * value
    else:
        raise ValueError(f"joint type {joint_type!r} is not 'revolute' or 'prismatic'")
    return T


def look_at(eye: np.ndarray, target: np.ndarray, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """World-to-camera [4, 4] (OpenCV axes: x right, y down, z forward) of a camera at `eye` looking at
    `target`, with `up` (the world's up direction) pointing up in the image."""
    eye, target = np.asarray(eye, np.float64), np.asarray(target, np.float64)
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, up)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    T = np.eye(4)
    T[:3, :3] = np.stack([x, y, z])
    T[:3, 3] = -T[:3, :3] @ eye
    return T


def apply(T: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Rigid transform(s) T [..., 4, 4] applied to points [..., N, 3]."""
    return points @ np.swapaxes(T[..., :3, :3], -1, -2) + T[..., None, :3, 3]
