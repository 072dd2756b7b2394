"""App. C articulation metrics."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from arthoi_jax.articulation import fit_joint
from arthoi_jax.io.bundle import GroundTruth
from arthoi_jax.metrics import (
    articulation_report,
    axis_error_deg,
    mask_iou,
    match_parts,
    part_articulation_metrics,
    point_line_distance,
    rotation_errors_deg,
    summary,
)


def test_rotation_error_is_the_geodesic_angle():
    R_gt = Rotation.from_rotvec([0, 0.5, 0]).as_matrix()
    R_est = Rotation.from_rotvec([0, 0.5 + np.deg2rad(7.0), 0]).as_matrix()
    assert rotation_errors_deg(R_est, R_gt) == pytest.approx(7.0, abs=1e-6)
    # An error about another axis: angle of R_est^T R_gt, not a difference of angles.
    R_est2 = Rotation.from_rotvec([np.deg2rad(3.0), 0, 0]).as_matrix() @ R_gt
    assert rotation_errors_deg(R_est2, R_gt) == pytest.approx(3.0, abs=1e-6)
    assert rotation_errors_deg(np.eye(3), Rotation.from_rotvec([np.pi, 0, 0]).as_matrix()) == pytest.approx(180.0)


def test_summary_statistics():
    s = summary(np.array([1.0, 2.0, 3.0, 10.0]))
    assert s == {"mean": 4.0, "std": pytest.approx(np.std([1, 2, 3, 10])), "max": 10.0, "min": 1.0, "median": 2.5}
    assert np.isnan(summary(np.array([]))["mean"])


def test_axis_error_ignores_direction_sign():
    assert axis_error_deg(np.array([0, 1.0, 0]), np.array([0, -1.0, 0])) == pytest.approx(0.0, abs=1e-6)
    a = np.array([np.sin(np.deg2rad(4)), np.cos(np.deg2rad(4)), 0])
    assert axis_error_deg(a, np.array([0, -2.0, 0])) == pytest.approx(4.0, abs=1e-6)
    assert point_line_distance(np.array([1.0, 5, 0]), np.zeros(3), np.array([0, 3.0, 0])) == pytest.approx(1.0)


def test_mask_iou_per_frame():
    a = np.zeros((2, 4, 4), bool)
    b = np.zeros((2, 4, 4), bool)
    a[0, :2] = True  # 8 px
    b[0, 1:3] = True  # 8 px, 4 shared
    np.testing.assert_allclose(mask_iou(a, b), [4 / 12, 1.0])


def test_match_parts_follows_mask_overlap_not_order():
    ids = np.zeros((6, 6), np.uint8)
    ids[:, :3], ids[:, 3:] = 2, 3
    masks = np.stack([ids == 3, ids == 2])
    np.testing.assert_array_equal(match_parts(masks, ids, 2), [1, 0])
    np.testing.assert_array_equal(match_parts(np.zeros((1, 6, 6), bool), ids, 2), [-1])


def _door(T=8):
    axis, pivot = np.array([0, 1.0, 0]), np.array([0.4, 0, 3.0])
    poses = np.tile(np.eye(4), (T, 1, 1))
    for t, a in enumerate(np.linspace(0, 1.0, T)):
        R = Rotation.from_rotvec(axis * a).as_matrix()
        poses[t, :3, :3], poses[t, :3, 3] = R, pivot - R @ pivot
    return axis, pivot, poses


def test_part_metrics_zero_for_exact_and_known_for_offset():
    _, _, poses = _door()
    m = part_articulation_metrics(poses, poses)
    assert m["rotation_error_deg"]["max"] == pytest.approx(0.0, abs=1e-5)
    off = poses.copy()
    off[1:, :3, :3] = Rotation.from_rotvec([0, 0, np.deg2rad(2.0)]).as_matrix() @ off[1:, :3, :3]
    m = part_articulation_metrics(off, poses)
    assert m["rotation_error_deg"]["mean"] == pytest.approx(2.0, abs=1e-5)
    assert len(m["rotation_error_deg_per_frame"]) == len(poses)


def test_articulation_report_against_ground_truth():
    axis, pivot, poses = _door()
    T, H, W = len(poses), 8, 8
    ids = np.zeros((T, H, W), np.uint8)
    ids[:, :, 4:] = 2
    gt = GroundTruth(joint_types=("revolute",), axes=axis[None], pivots=pivot[None],
                     joint_values=np.linspace(0, 1.0, T)[:, None], part_poses=poses[:, None], part_ids=ids,
                     depth=np.ones((T, H, W), np.float32), tracks=np.zeros((T, 1, 2), np.float32),
                     visibility=np.ones((T, 1), bool), track_part=np.array([2], np.uint8))
    pts = np.random.default_rng(0).uniform(0, 1, (50, 3)) + [0, 0, 3]
    joint = fit_joint(poses, pts, "auto")
    r = articulation_report(poses[:, None], [joint], ids[:, None] == 2, gt)
    assert r["revolute_rotation_error_deg"]["max"] == pytest.approx(0.0, abs=1e-5)
    assert r["axis_error_deg_max"] == pytest.approx(0.0, abs=1e-4)
    assert r["parts"][0]["pivot_error_m"] == pytest.approx(0.0, abs=1e-6)
    assert r["segmentation_iou_mean"] == 1.0 and r["missed_gt_parts"] == []
