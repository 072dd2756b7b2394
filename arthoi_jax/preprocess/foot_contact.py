"""Foot-contact labels from the image-space speed of MediaPipe's ankle, heel and toe landmarks.

A foot joint is in contact at frame t when its landmark hardly moves in the image: its speed, the larger of
its displacements to the previous and to the next frame (px/frame; both must be small, so lift-off and strike
frames count as moving), is below `max_speed * body_height_px / fps`. `max_speed` is in body heights per
second, so the rule is the same at any resolution, distance to the camera and frame rate: the default 0.15 body
heights/s is about 0.25 m/s for a 1.7 m person, about 5x the landmark jitter on a planted foot measured on the
shared clips (~0.03 body heights/s at 10 fps) and below the swing of even a slow walk there (~0.35). Body height in px is the median over found frames of the vertical extent of the confident landmarks
(head to feet), so a crouch in a few frames does not change it.

Joints, in the bundle's `FOOT_CONTACT_JOINTS` order (left_ankle, left_foot, right_ankle, right_foot): an ankle
joint uses the slower of the ankle and heel landmarks (either resting means the rear foot rests); a foot (SMPL-X
toe-base) joint uses the foot-index (toe) landmark.

A moving camera moves planted feet in the image: pass `background_motion` (per-frame homographies of the static
background, e.g. `camera_motion.CameraMotion.homographies`) and the speed is measured after mapping the previous
and next positions into frame t. Frames where the body is not found, or the landmark's confidence is below
`min_conf`, are labelled "no contact" (no constraint); a frame whose neighbours both lack the landmark is also "no contact".
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from arthoi_jax.errors import InputError
from arthoi_jax.io.bundle import FOOT_CONTACT_JOINTS
from arthoi_jax.preprocess.mediapipe_human import BODY_LANDMARKS

# For each FOOT_CONTACT_JOINTS entry, the MediaPipe landmarks whose slowest one decides contact.
JOINT_LANDMARKS = {
    "left_ankle": ("left_ankle", "left_heel"),
    "left_foot": ("left_foot_index",),
    "right_ankle": ("right_ankle", "right_heel"),
    "right_foot": ("right_foot_index",),
}


def body_height_px(landmarks: np.ndarray, conf: np.ndarray, found: np.ndarray, min_conf: float = 0.5) -> float:
    """Median over found frames of the vertical extent (px) of landmarks with confidence >= min_conf; 0 if none."""
    heights = []
    for t in np.flatnonzero(found):
        y = landmarks[t, conf[t] >= min_conf, 1]
        if y.size >= 2:
            heights.append(float(y.max() - y.min()))
    return float(np.median(heights)) if heights else 0.0


def foot_contact_from_landmarks(landmarks: np.ndarray, conf: np.ndarray, found: np.ndarray, fps: float, *,
                                max_speed: float = 0.15, min_conf: float = 0.5,
                                background_motion: Optional[np.ndarray] = None) -> np.ndarray:
    """Foot-contact labels.

    Args:
      landmarks: [T, 33, 2] body landmarks (x, y) pixels, order `BODY_LANDMARKS`.
      conf: [T, 33] confidences in [0, 1]; found: [T] bool, body found in the frame.
      fps: frames per second (> 0).
      max_speed: contact threshold in body heights per second (module docstring).
      min_conf: landmarks below this confidence are not trusted (labelled no contact).
      background_motion: optional [T, 3, 3] homographies mapping frame-0 background pixels to frame t.
    Returns:
      [T, 4] bool in `FOOT_CONTACT_JOINTS` order.
    Raises:
      InputError: inconsistent shapes or a non-positive fps.
    """
    landmarks, conf, found = np.asarray(landmarks, np.float64), np.asarray(conf), np.asarray(found, bool)
    T = landmarks.shape[0]
    if landmarks.shape != (T, len(BODY_LANDMARKS), 2) or conf.shape != (T, len(BODY_LANDMARKS)) or found.shape != (T,):
        raise InputError(f"foot contact: expected landmarks [T, 33, 2], conf [T, 33], found [T]; got "
                         f"{list(landmarks.shape)}, {list(conf.shape)}, {list(found.shape)}")
    if not (np.isfinite(fps) and fps > 0):
        raise InputError(f"foot contact: fps must be > 0, got {fps!r}")
    if background_motion is not None and np.shape(background_motion) != (T, 3, 3):
        raise InputError(f"foot contact: background_motion must be [T, 3, 3], got {list(np.shape(background_motion))}")
    contact = np.zeros((T, len(FOOT_CONTACT_JOINTS)), bool)
    height = body_height_px(landmarks, conf, found, min_conf)
    if T < 2 or height <= 0:
        return contact
    threshold = max_speed * height / fps  # px/frame
    for j, joint in enumerate(FOOT_CONTACT_JOINTS):
        idx = [BODY_LANDMARKS.index(name) for name in JOINT_LANDMARKS[joint]]
        speeds = [_speed(landmarks[:, i], (conf[:, i] >= min_conf) & found, background_motion) for i in idx]
        contact[:, j] = np.min(speeds, axis=0) < threshold
    return contact


def _speed(xy: np.ndarray, ok: np.ndarray, motion: Optional[np.ndarray]) -> np.ndarray:
    """[T] image speed (px/frame) of one landmark, +inf where it cannot be measured."""
    T = len(xy)
    speed = np.full(T, np.inf)
    for t in range(T):
        if not ok[t]:
            continue
        steps = [np.linalg.norm(_carry(xy[s], s, t, motion) - xy[t]) for s in (t - 1, t + 1) if 0 <= s < T and ok[s]]
        if steps:
            speed[t] = max(steps)
    return speed


def _carry(xy: np.ndarray, s: int, t: int, motion: Optional[np.ndarray]) -> np.ndarray:
    """Position xy of frame s moved into frame t by the background's motion (unchanged without one)."""
    if motion is None:
        return xy
    p = motion[t] @ np.linalg.solve(motion[s], np.array([xy[0], xy[1], 1.0]))
    return p[:2] / p[2]
