"""Contact keypoints (Fig. 3c): lifting with the object render's depth, confidence gating, contact frames."""

import numpy as np
import pytest

from arthoi_jax import contact

K = np.array([[100.0, 0, 40.0], [0, 100.0, 30.0], [0, 0, 1.0]])
H, W = 60, 80


def keypoints(T=2):
    kp = np.zeros((T, 2, 21, 2), np.float32)
    kp[..., 0], kp[..., 1] = 50.5, 20.5  # pixel (col 50, row 20)
    return kp


def test_lifted_keypoint_back_projects_to_the_rendered_surface_depth():
    kp, conf = keypoints(), np.ones((2, 2, 21), np.float32)
    alpha = np.full((2, 30, 40), 0.8, np.float32)  # render at half resolution
    depth = 0.8 * np.full((2, 30, 40), 2.0, np.float32)  # expected depth = alpha * surface depth
    pts, w = contact.lift_keypoints(kp, conf, np.ones((2, 2), bool), depth, alpha, K, (H, W), 0.5, 0.5)
    np.testing.assert_allclose(pts[0, 0, 1], [(50.5 - 40) / 100 * 2, (20.5 - 30) / 100 * 2, 2.0], rtol=1e-6)
    projected = pts[..., 1:, :2] / pts[..., 1:, 2:] * 100 + [40, 30]
    np.testing.assert_allclose(projected, kp[..., 1:, :], atol=1e-4)
    assert w[..., 1:].min() == 1.0
    # The wrist does not touch the object: never lifted.
    assert np.all(w[..., contact.WRIST] == 0) and np.all(pts[..., contact.WRIST, :] == 0)


@pytest.mark.parametrize("what", ["confidence", "alpha", "contact"])
def test_keypoints_below_a_threshold_or_off_contact_are_not_lifted(what):
    kp, conf = keypoints(), np.ones((2, 2, 21), np.float32)
    alpha = np.ones((2, H, W), np.float32)
    depth = np.full((2, H, W), 3.0, np.float32)
    on = np.ones((2, 2), bool)
    if what == "confidence":
        conf[0, 1, :5] = 0.49
    elif what == "alpha":
        alpha[0, 20, 50] = 0.49
    else:
        on[1, 0] = False
    pts, w = contact.lift_keypoints(kp, conf, on, depth, alpha, K, (H, W), 0.5, 0.5)
    expected = np.ones((2, 2, 21))
    expected[..., contact.WRIST] = 0
    if what == "confidence":
        expected[0, 1, :5] = 0
    elif what == "alpha":
        expected[0] = 0
    else:
        expected[1, 0] = 0
    np.testing.assert_array_equal(w, expected)
    assert np.all(pts[w == 0] == 0)


def test_contact_frames_from_2d_proximity_to_the_part_mask():
    T = 3
    kp = keypoints(T)
    conf = np.ones((T, 2, 21), np.float32)
    masks = np.zeros((T, H, W), bool)
    masks[0, 20, 53] = True  # 3 px from the keypoints: contact at radius 4
    masks[1, 20, 60] = True  # 10 px: no contact
    # frame 2: empty mask (the part hidden): no evidence, no contact
    c = contact.detect_contact_frames(kp, conf, masks, 0.5, 4.0)
    np.testing.assert_array_equal(c, [[True, True], [False, False], [False, False]])
    conf[0, 1] = 0.1
    c = contact.detect_contact_frames(kp, conf, masks, 0.5, 4.0)
    np.testing.assert_array_equal(c[0], [True, False])


def test_the_offset_moves_the_lifted_point_towards_the_camera_along_its_ray():
    kp, conf = keypoints(), np.ones((2, 2, 21), np.float32)
    alpha, depth = np.ones((2, H, W), np.float32), np.full((2, H, W), 2.0, np.float32)
    on = np.ones((2, 2), bool)
    p0, _ = contact.lift_keypoints(kp, conf, on, depth, alpha, K, (H, W), 0.5, 0.5)
    p1, _ = contact.lift_keypoints(kp, conf, on, depth, alpha, K, (H, W), 0.5, 0.5, offset_m=0.02)
    p0, p1 = p0[..., 1:, :], p1[..., 1:, :]  # the wrist is not lifted
    np.testing.assert_allclose(np.linalg.norm(p0 - p1, axis=-1), 0.02, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(p0, axis=-1) - np.linalg.norm(p1, axis=-1), 0.02, rtol=1e-4)


def test_keypoints_far_behind_the_hands_nearest_lifted_one_are_dropped():
    kp, conf = keypoints(), np.ones((2, 2, 21), np.float32)
    kp[:, :, 5:, 0] = 20.5  # keypoints 5-20 over pixel column 20 ...
    alpha = np.ones((2, H, W), np.float32)
    depth = np.full((2, H, W), 2.0, np.float32)
    depth[:, :, 20] = 2.3  # ... where the render shows a surface 30 cm behind (the open door's face)
    depth[1, :, 20] = 2.04  # frame 1: only 4 cm behind, within the 5 cm band
    on = np.ones((2, 2), bool)
    _, w = contact.lift_keypoints(kp, conf, on, depth, alpha, K, (H, W), 0.5, 0.5, depth_band_m=0.05)
    assert np.all(w[0, :, 1:5] == 1) and np.all(w[0, :, 5:] == 0)
    assert np.all(w[1, :, 1:] == 1)
    _, w_all = contact.lift_keypoints(kp, conf, on, depth, alpha, K, (H, W), 0.5, 0.5)  # no band: all lifted
    assert np.all(w_all[..., 1:] == 1)
