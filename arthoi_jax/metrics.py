"""Articulation metrics (paper App. C) against ground truth. Numpy, evaluated once after optimization.

Rotation error: per frame, the geodesic angle between the estimated and the GT rotation of a part relative to
frame 0 (frames 1..T-1; frame 0 is the identity in both by construction). Reported as mean/std/max/min/median in
degrees. Translation error: per frame |t_est - t_gt| of the part pose relative to frame 0, metres. Axis error: the
angle between the fitted and the GT joint axis as lines (0..90 deg). Pivot error (revolute): distance of the GT
pivot from the fitted axis line, metres. Segmentation: IoU of the dynamic-part mask against the GT part ids.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from arthoi_jax.io.bundle import MOVING_PART_ID0


def rotation_errors_deg(R_est: np.ndarray, R_gt: np.ndarray) -> np.ndarray:
    """Geodesic angles. R_est, R_gt: [..., 3, 3] -> [...] degrees in [0, 180]."""
    rel = np.einsum("...ji,...jk->...ik", R_est, R_gt)
    cos = (np.trace(rel, axis1=-2, axis2=-1) - 1.0) / 2.0
    return np.rad2deg(np.arccos(np.clip(cos, -1.0, 1.0)))


def summary(x: np.ndarray) -> dict:
    """mean/std/max/min/median of a 1-D array (NaN entries for an empty one)."""
    x = np.asarray(x, np.float64).reshape(-1)
    if x.size == 0:
        return {k: float("nan") for k in ("mean", "std", "max", "min", "median")}
    return {"mean": float(x.mean()), "std": float(x.std()), "max": float(x.max()), "min": float(x.min()),
            "median": float(np.median(x))}


def axis_error_deg(axis_est: np.ndarray, axis_gt: np.ndarray) -> float:
    """Angle between two axes as lines, degrees in [0, 90]."""
    c = abs(float(np.dot(axis_est, axis_gt) / (np.linalg.norm(axis_est) * np.linalg.norm(axis_gt))))
    return float(np.rad2deg(np.arccos(min(c, 1.0))))


def point_line_distance(point: np.ndarray, line_point: np.ndarray, line_dir: np.ndarray) -> float:
    """Distance of `point` [3] from the line through `line_point` [3] along `line_dir` [3], metres."""
    d = line_dir / np.linalg.norm(line_dir)
    v = point - line_point
    return float(np.linalg.norm(v - np.dot(v, d) * d))


def mask_iou(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-frame IoU. pred, gt: [T, H, W] bool -> [T] (1.0 where both are empty)."""
    inter = np.logical_and(pred, gt).sum((-2, -1))
    union = np.logical_or(pred, gt).sum((-2, -1))
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def match_parts(part_masks: np.ndarray, gt_part_ids: np.ndarray, num_gt_parts: int) -> np.ndarray:
    """Matches estimated moving parts to GT parts by frame-0 mask IoU (Hungarian).

    part_masks: [P_est, H, W] bool frame-0 masks; gt_part_ids: [H, W] uint8 frame-0 ids -> [P_est] int, the GT part
    index (0-based) of each estimated part, -1 when unmatched.
    """
    iou = np.zeros((len(part_masks), num_gt_parts))
    for j in range(num_gt_parts):
        gt = gt_part_ids == MOVING_PART_ID0 + j
        for i, m in enumerate(part_masks):
            union = np.logical_or(m, gt).sum()
            iou[i, j] = np.logical_and(m, gt).sum() / union if union else 0.0
    rows, cols = linear_sum_assignment(-iou)
    out = np.full(len(part_masks), -1)
    out[rows] = np.where(iou[rows, cols] > 0, cols, -1)
    return out


def part_articulation_metrics(poses_est: np.ndarray, poses_gt: np.ndarray, joint_est: dict | None = None,
                              joint_gt: dict | None = None) -> dict:
    """Errors of one part. poses_*: [T, 4, 4] relative to frame 0. joint_*: {"type", "axis", "pivot"} or None."""
    rot = rotation_errors_deg(poses_est[1:, :3, :3], poses_gt[1:, :3, :3])
    trans = np.linalg.norm(poses_est[1:, :3, 3] - poses_gt[1:, :3, 3], axis=-1)
    out = {"rotation_error_deg": summary(rot), "translation_error_m": summary(trans),
           "rotation_error_deg_per_frame": [0.0] + rot.tolist(),
           "translation_error_m_per_frame": [0.0] + trans.tolist()}
    if joint_est is not None and joint_gt is not None:
        out["joint_type_correct"] = joint_est["type"] == joint_gt["type"]
        out["axis_error_deg"] = axis_error_deg(np.asarray(joint_est["axis"]), np.asarray(joint_gt["axis"]))
        if joint_est["type"] == joint_gt["type"] == "revolute":
            out["pivot_error_m"] = point_line_distance(np.asarray(joint_gt["pivot"]), np.asarray(joint_est["pivot"]),
                                                       np.asarray(joint_est["axis"]))
    return out


def articulation_report(poses: np.ndarray, joints: list, part_masks: np.ndarray, gt) -> dict:
    """All Stage I metrics of a run against a synthetic scene's GroundTruth `gt` (or fit residuals only when None).

    poses: [T, P, 4, 4] estimated part poses; joints: [P] articulation.JointFit; part_masks: [T, P, H, W] bool.
    Estimated parts are matched to GT parts by frame-0 mask IoU; GT parts without a match are listed as missed.
    """
    report = {"num_parts": int(poses.shape[1]), "parts": []}
    if gt is None:
        report["parts"] = [{"joint": j.to_json()} for j in joints]
        return report
    P_gt = len(gt.joint_types)
    match = match_parts(part_masks[0], gt.part_ids[0], P_gt)
    for p, (j, g) in enumerate(zip(joints, match)):
        entry = {"gt_part": int(g), "joint": j.to_json()}
        if g >= 0:
            gt_joint = {"type": gt.joint_types[g], "axis": gt.axes[g], "pivot": gt.pivots[g]}
            entry.update(part_articulation_metrics(poses[:, p], gt.part_poses[:, g], j.to_json(), gt_joint))
            iou = mask_iou(part_masks[:, p], gt.part_ids == MOVING_PART_ID0 + g)
            entry["segmentation_iou"] = summary(iou)
            entry["segmentation_iou_per_frame"] = iou.tolist()
        report["parts"].append(entry)
    report["missed_gt_parts"] = sorted(set(range(P_gt)) - {int(g) for g in match if g >= 0})
    matched = [e for e in report["parts"] if e["gt_part"] >= 0]
    rev = [e for e in matched if gt.joint_types[e["gt_part"]] == "revolute"]
    pri = [e for e in matched if gt.joint_types[e["gt_part"]] == "prismatic"]
    if rev:
        rot = np.concatenate([e["rotation_error_deg_per_frame"][1:] for e in rev])
        report["revolute_rotation_error_deg"] = summary(rot)
    if pri:
        tr = np.concatenate([e["translation_error_m_per_frame"][1:] for e in pri])
        report["prismatic_translation_error_m"] = summary(tr)
    if matched:
        report["axis_error_deg_max"] = float(max(e["axis_error_deg"] for e in matched))
        report["segmentation_iou_mean"] = float(np.mean([e["segmentation_iou"]["mean"] for e in matched]))
    return report
