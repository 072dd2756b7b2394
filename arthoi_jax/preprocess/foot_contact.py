"""Foot-contact labels from the image-space speed of MediaPipe's ankle, heel and toe landmarks.

A foot joint is in contact at frame t when its landmark hardly moves in the image: its speed, the larger of
its displacements to the previous and to the next frame (px/frame; both must be small, so lift-off and strike
frames count as moving), is below `max_speed * body_height_px / fps`. `max_speed` is in body heights per
second, so the rule is the same at any resolution, distance to the camera and frame rate: the default 0.15 body
heights/s is about 0.25 m/s for a 1.7 m person, about 5x the landmark jitter on a planted foot measured on the
shared clips (~0.03 body heights/s at 10 fps) and below the swing of even a slow walk there (~0.35). Body
height in px is the median over found frames of the vertical extent of the confident landmarks (head to feet),
so a crouch in a few frames does not change it.

Joints, in the bundle's `FOOT_CONTACT_JOINTS` order (left_ankle, left_foot, right_ankle, right_foot): an ankle
joint uses the slower of the ankle and heel landmarks (either resting means the rear foot rests); a foot (SMPL-X
toe-base) joint uses the foot-index (toe) landmark.

A moving camera moves planted feet in the image: pass the static-background tracks (e.g. those of
`camera_motion.track_background`) and the speed is measured relative to the background next to the foot: the
median motion, between the two frames, of the `neighbours` background tracks nearest the foot (visible in both)
is subtracted. Local ground tracks move like a planted foot whatever the camera does (rotation, translation,
zoom), which one global homography of a 3D background would not capture. Frames where the body is not found, or
the landmark's confidence is below `min_conf`, are labelled "no contact" (no constraint); so is a frame whose
neighbour frames both lack the landmark.
"""

from __future__ import annotations

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
                                background_tracks: np.ndarray | None = None,
                                background_visibility: np.ndarray | None = None,
                                neighbours: int = 8) -> np.ndarray:
    """Foot-contact labels.

    Args:
      landmarks: [T, 33, 2] body landmarks (x, y) pixels, order `BODY_LANDMARKS`.
      conf: [T, 33] confidences in [0, 1]; found: [T] bool, body found in the frame.
      fps: frames per second (> 0).
      max_speed: contact threshold in body heights per second (module docstring).
      min_conf: landmarks below this confidence are not trusted (labelled no contact).
      background_tracks: optional [T, N, 2] (x, y) pixels of static-background points, with
      background_visibility: [T, N] bool; neighbours: how many tracks near the foot give the local motion.
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
    background = None
    if background_tracks is not None:
        background = (np.asarray(background_tracks, np.float64), np.asarray(background_visibility, bool))
        if background[0].ndim != 3 or background[0].shape[::2] != (T, 2) or background[1].shape != background[0].shape[:2]:
            raise InputError(f"foot contact: expected background tracks [T={T}, N, 2] and visibility [T, N], got "
                             f"{list(background[0].shape)} and {list(background[1].shape)}")
    contact = np.zeros((T, len(FOOT_CONTACT_JOINTS)), bool)
    height = body_height_px(landmarks, conf, found, min_conf)
    if T < 2 or height <= 0:
        return contact
    threshold = max_speed * height / fps  # px/frame
    for j, joint in enumerate(FOOT_CONTACT_JOINTS):
        idx = [BODY_LANDMARKS.index(name) for name in JOINT_LANDMARKS[joint]]
        speeds = [_speed(landmarks[:, i], (conf[:, i] >= min_conf) & found, background, neighbours) for i in idx]
        contact[:, j] = np.min(speeds, axis=0) < threshold
    return contact


def _speed(xy: np.ndarray, ok: np.ndarray, background, neighbours: int) -> np.ndarray:
    """[T] image speed (px/frame) of one landmark, +inf where it cannot be measured."""
    T = len(xy)
    speed = np.full(T, np.inf)
    for t in range(T):
        if not ok[t]:
            continue
        steps = [np.linalg.norm(xy[s] + _local_motion(xy[t], s, t, background, neighbours) - xy[t])
                 for s in (t - 1, t + 1) if 0 <= s < T and ok[s]]
        if steps:
            speed[t] = max(steps)
    return speed


def _local_motion(xy: np.ndarray, s: int, t: int, background, neighbours: int) -> np.ndarray:
    """Median displacement from frame s to t of the background tracks nearest xy (at frame t); 0 without any."""
    if background is None:
        return np.zeros(2)
    tracks, vis = background
    both = np.flatnonzero(vis[s] & vis[t])
    if both.size == 0:
        return np.zeros(2)
    near = both[np.argsort(np.linalg.norm(tracks[t, both] - xy, axis=1))[:neighbours]]
    return np.median(tracks[t, near] - tracks[s, near], axis=0)
