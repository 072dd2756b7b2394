"""Interaction metrics of App. C, plus pose errors against ground truth on synthetic scenes (numpy, no IO).

Thresholds App. C leaves open, chosen here (each is an argument with this default):
  * Smoothness: std over all frames and the 22 body joints of the joint speeds, in m/s, after resampling the
    per-frame displacements to 30 FPS (a displacement d per frame at `fps` is a speed d * fps).
  * Foot Sliding: the four foot joints (ankles, feet/toe bases). A joint is in ground contact at a frame when
    its height above the floor plane is at most its height in a standing body (soles on the floor) plus
    FOOT_CONTACT_M; it slides when its displacement projected on the floor plane exceeds the paper's
    0.001 m/frame. Score = (sliding frames / contact frames) x mean sliding distance in cm/frame (lower is
    better). Contact is measured against the floor, not against the joint's own lowest height over the clip:
    that rule called a foot that rose 8 cm while sliding 0.7 cm/frame "not in contact" and scored it 0 (the
    "w/o L_fs" ablation on door_hoi). floor_gap_cm reports how far the feet float above (or sink below) the
    floor, so that feet kept off the ground cannot pass for planted ones.
  * Contact %: share of the hand-contact frames where the contacting hand (wrist and 20 finger points) comes
    within CONTACT_M of the object surface.
  * Penetration %: share of human vertices strictly inside the object's solids, averaged over frames.
Objects are given as posed boxes (the synthetic objects are unions of boxes) `[T, B, 4, 3]`: per box the corner
v0 and the three neighbouring corners along its edges (v0 + e_x, v0 + e_y, v0 + e_z).
"""

from __future__ import annotations

import numpy as np

from arthoi_jax.geometry.boxes import box_frames

FOOT_SLIDE_M_PER_FRAME = 0.001
FOOT_CONTACT_M = 0.02
CONTACT_M = 0.02
METRIC_FPS = 30.0
NUM_BODY_JOINTS = 22  # pelvis + the 21 body_pose joints (SMPL-X skeleton order)


def smoothness(joints: np.ndarray, fps: float) -> float:
    """joints [T, J, 3] metres -> std of joint speeds (m/s) at 30 FPS over frames and joints."""
    d = np.linalg.norm(np.diff(joints, axis=0), axis=-1) * fps / METRIC_FPS  # metres per 30-FPS frame
    return float(np.std(d * METRIC_FPS))


def foot_sliding(foot: np.ndarray, up: np.ndarray, floor_offset: float, stand_height: np.ndarray,
                 contact_m: float = FOOT_CONTACT_M, slide_m: float = FOOT_SLIDE_M_PER_FRAME) -> dict:
    """foot [T, 4, 3] metres; floor plane {x : up . x = floor_offset} (up unit); stand_height [4] metres: each
    joint's height above the floor in a standing body -> score and its parts. contact_steps counts the (joint,
    step) pairs in ground contact at both ends; floor_gap_cm is the median height above the standing height."""
    up = np.asarray(up, np.float64) / np.linalg.norm(up)
    gap = foot @ up - floor_offset - np.asarray(stand_height)  # [T, 4]
    contact = gap <= contact_m
    step = np.diff(foot, axis=0)
    horiz = np.linalg.norm(step - (step @ up)[..., None] * up, axis=-1)  # [T-1, 4]
    both = contact[1:] & contact[:-1]
    sliding = both & (horiz > slide_m)
    n_contact, n_slide = int(both.sum()), int(sliding.sum())
    mean_cm = float(horiz[sliding].mean() * 100) if n_slide else 0.0
    score = (n_slide / n_contact) * mean_cm if n_contact else 0.0
    return {"score": score, "sliding_ratio": n_slide / max(n_contact, 1), "mean_sliding_cm": mean_cm,
            "contact_steps": n_contact, "floor_gap_cm": float(100 * np.median(gap))}


def box_distance(points: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Signed distance of points [N, 3] to the union of boxes [B, 4, 3] -> [N] metres (< 0 inside)."""
    v0, axes, half = box_frames(boxes)
    centre = v0 + np.einsum("bk,bkj->bj", half, axes)
    q = np.einsum("bkj,nbj->nbk", axes, points[:, None] - centre[None])  # [N, B, 3] box coordinates
    d = np.abs(q) - half[None]
    outside = np.linalg.norm(np.maximum(d, 0.0), axis=-1)
    inside = np.minimum(d.max(-1), 0.0)
    return (outside + inside).min(-1)


def penetration_percent(vertices: np.ndarray, boxes: np.ndarray, margin: float = 1e-3) -> float:
    """vertices [T, V, 3]; boxes [T, B, 4, 3] -> % of vertices deeper than `margin` inside a box, mean over T."""
    frac = [np.mean(box_distance(v, b) < -margin) for v, b in zip(vertices, boxes)]
    return float(100 * np.mean(frac))


def contact_percent(hand_points: np.ndarray, boxes: np.ndarray, contact_frames: np.ndarray,
                    threshold: float = CONTACT_M) -> dict:
    """hand_points [T, K, 3] (the contacting hand); boxes [T, B, 4, 3]; contact_frames [T] bool -> % of contact
    frames with the hand within `threshold` of the object, and the mean such distance (m)."""
    frames = np.flatnonzero(contact_frames)
    if len(frames) == 0:
        return {"percent": float("nan"), "mean_distance_m": float("nan")}
    d = np.array([np.maximum(box_distance(hand_points[t], boxes[t]), 0.0).min() for t in frames])
    return {"percent": float(100 * np.mean(d <= threshold)), "mean_distance_m": float(d.mean())}


def mpjpe(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean per-joint position error, mm. pred, gt: [T, J, 3] metres."""
    return float(1000 * np.linalg.norm(pred - gt, axis=-1).mean())


def procrustes_align(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """pred [J, 3] moved by the similarity transform (scale, rotation, translation) that best fits gt [J, 3]."""
    mp, mg = pred.mean(0), gt.mean(0)
    a, b = pred - mp, gt - mg
    U, S, Vt = np.linalg.svd(a.T @ b)
    D = np.diag([1.0, 1.0, np.sign(np.linalg.det(U @ Vt))])
    R = (U @ D @ Vt).T
    s = np.trace(np.diag(S) @ D) / np.sum(a * a)
    return s * a @ R.T + mg


def pa_mpjpe(pred: np.ndarray, gt: np.ndarray) -> float:
    """MPJPE after per-frame Procrustes alignment, mm."""
    return mpjpe(np.stack([procrustes_align(p, g) for p, g in zip(pred, gt)]), gt)


def interaction_report(joints: np.ndarray, vertices: np.ndarray, fps: float, *, foot_idx, hand_idx,
                       boxes: np.ndarray, contact_frames: np.ndarray, up: np.ndarray, floor_offset: float,
                       foot_stand_height: np.ndarray, gt_joints: np.ndarray | None = None,
                       grip: np.ndarray | None = None, gt_grip: np.ndarray | None = None) -> dict:
    """Every metric for one motion. joints [T, J, 3] (smplx output order); vertices [T, V, 3]; foot_idx [4] and
    hand_idx [K] index joints; boxes [T, B, 4, 3]; contact_frames [T] bool; foot_stand_height [4] metres (see
    foot_sliding); grip / gt_grip [T, 3]: the contacting hand's grip point and the handle point it should hold
    (hand-to-handle distance on contact frames).
    """
    body = joints[:, :NUM_BODY_JOINTS]
    out = {
        "smoothness_m_per_s": smoothness(body, fps),
        "foot_sliding": foot_sliding(joints[:, foot_idx], up, floor_offset, foot_stand_height),
        "contact": contact_percent(joints[:, hand_idx], boxes, contact_frames),
        "penetration_percent": penetration_percent(vertices, boxes),
    }
    if gt_joints is not None:
        out["mpjpe_mm"] = mpjpe(body, gt_joints[:, :NUM_BODY_JOINTS])
        out["pa_mpjpe_mm"] = pa_mpjpe(body, gt_joints[:, :NUM_BODY_JOINTS])
    if grip is not None and gt_grip is not None and contact_frames.any():
        d = np.linalg.norm(grip - gt_grip, axis=-1)[contact_frames]
        out["hand_to_handle_m"] = {"median": float(np.median(d)), "mean": float(d.mean()), "max": float(d.max())}
    return out
