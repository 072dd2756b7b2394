"""Depth shift of the contact keypoints (contact.depth_keypoints, contact.depth_shift): the hand's keypoints lifted
at frame 0 with the depth map move the lifted grasp by their median offset, turned with the held part."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from arthoi_jax import contact

K = np.array([[100.0, 0, 32], [0, 100.0, 24], [0, 0, 1]])


def test_depth_keypoints_lift_covered_confident_pixels_under_the_skin():
    depth = np.full((48, 64), 2.0, np.float32)
    mask = np.zeros((48, 64), bool)
    mask[:, :40] = True
    kp = np.zeros((2, 21, 2), np.float32)
    kp[0, 1] = (32, 24)  # the principal point: the ray is +z
    kp[0, 2] = (42, 24)  # off the human mask
    kp[0, 3] = (12, 44)
    conf = np.full((2, 21), 0.9, np.float32)
    conf[0, 3] = 0.2  # below min_conf
    p, ok = contact.depth_keypoints(kp, conf, depth, mask, K, min_conf=0.5, skin_m=0.01)
    assert ok[0, 1] and not ok[0, 2] and not ok[0, 3]
    np.testing.assert_allclose(p[0, 1], [0, 0, 2.01], atol=1e-6)
    assert np.all(p[~ok] == 0)
    # Off axis the point moves skin_m along its ray: 1 cm further from the camera centre than the skin.
    kp[0, 4] = (12, 4)
    p, ok = contact.depth_keypoints(kp, conf, depth, mask, K, min_conf=0.5, skin_m=0.01)
    skin = np.array([(12 - 32) / 100 * 2, (4 - 24) / 100 * 2, 2.0])
    assert np.linalg.norm(p[0, 4]) == pytest.approx(np.linalg.norm(skin) + 0.01, abs=1e-5)


def turning_part(T, deg_per_frame=4.0):
    """[T, 1, 4, 4] a part turning about a vertical axis through (0.3, 0, 2)."""
    poses = np.tile(np.eye(4), (T, 1, 1, 1))
    pivot = np.array([0.3, 0.0, 2.0])
    for t in range(T):
        R = Rotation.from_rotvec([0, np.radians(deg_per_frame * t), 0]).as_matrix()
        poses[t, 0, :3, :3], poses[t, 0, :3, 3] = R, pivot - R @ pivot
    return poses


def test_depth_shift_moves_the_first_grasp_by_the_median_offset_turned_with_the_part():
    T = 10
    rng = np.random.default_rng(0)
    poses = turning_part(T)
    pts = rng.normal([0, 0, 2], 0.05, (T, 2, 21, 3)).astype(np.float32)
    w = np.zeros((T, 2, 21), np.float32)
    w[:, 0, 1:] = 1.0
    w[3, 0, 5] = 0.0  # not lifted on this frame: not moved
    contact_frames = np.zeros((T, 2), bool)
    contact_frames[:6, 0] = contact_frames[8:, 0] = True  # two grasps of the left hand
    offset = np.array([0.01, -0.02, 0.03], np.float32)
    depth_pts = pts[0] + offset
    depth_ok = np.zeros((2, 21), bool)
    depth_ok[0, 1:8] = True
    depth_pts[0, 7] += 0.5  # one outlier: the median ignores it
    out, shifts = contact.depth_shift(pts, w, contact_frames, depth_pts, depth_ok, poses, np.array([0, -1]))
    np.testing.assert_allclose(shifts[0], offset, atol=1e-6)
    assert np.all(shifts[1] == 0)
    for t in range(6):
        moved = poses[t, 0, :3, :3] @ offset
        on = w[t, 0] > 0
        np.testing.assert_allclose(out[t, 0][on], pts[t, 0][on] + moved, atol=1e-6)
        np.testing.assert_array_equal(out[t, 0][~on], pts[t, 0][~on])
    np.testing.assert_array_equal(out[6:, 0], pts[6:, 0])  # the second grasp and the gap keep their lifting
    np.testing.assert_array_equal(out[:, 1], pts[:, 1])  # the right hand has no contact


def test_depth_shift_needs_keypoints_seen_both_ways_and_contact_at_frame_zero():
    T = 4
    pts = np.ones((T, 2, 21, 3), np.float32)
    w = np.ones((T, 2, 21), np.float32)
    poses = turning_part(T)
    depth_ok = np.zeros((2, 21), bool)
    depth_ok[:, :2] = True  # two keypoints: under DEPTH_MIN_KEYPOINTS
    contact_frames = np.ones((T, 2), bool)
    out, shifts = contact.depth_shift(pts, w, contact_frames, pts[0] + 0.1, depth_ok, poses, np.array([0, 0]))
    assert np.all(shifts == 0) and np.array_equal(out, pts)
    depth_ok[:, :5] = True
    contact_frames[0] = False  # no grasp at frame 0: the depth map says nothing about the later ones
    out, shifts = contact.depth_shift(pts, w, contact_frames, pts[0] + 0.1, depth_ok, poses, np.array([0, 0]))
    assert np.all(shifts == 0) and np.array_equal(out, pts)
