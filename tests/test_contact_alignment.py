"""Stage II's start: contact keypoints lifted at the nearest surface near them, the body placed by the frame-0
depth over its mask, and the arms refitted to the keypoints (stage2_init.align_to_depth, stage2_init.refit_arms)."""

import numpy as np
import pytest

from arthoi_jax import contact, stage2, stage2_init
from arthoi_jax.body import joint_names as jn
from arthoi_jax.body.model import forward_sequence
from arthoi_jax.config import BodyConfig
from arthoi_jax.io.body_model_file import load_body_model
from tests.stage2_scene import init_params

K = np.array([[100.0, 0, 40.0], [0, 100.0, 30.0], [0, 0, 1.0]])
H, W = 60, 80


@pytest.fixture(scope="module")
def model():
    return load_body_model(BodyConfig())


def test_a_keypoint_takes_the_nearest_surface_in_its_window_not_the_face_behind_it():
    kp = np.zeros((1, 2, 21, 2), np.float32)
    kp[..., 0], kp[..., 1] = 50.5, 20.5  # pixel (col 50, row 20)
    conf, on = np.ones((1, 2, 21), np.float32), np.ones((1, 2), bool)
    alpha = np.ones((1, H, W), np.float32)
    depth = np.full((1, H, W), 2.5, np.float32)  # the face seen between the fingers, 50 cm behind ...
    depth[:, :, 53:56] = 2.0  # ... the edge they grip, 3 px to the right
    own, _ = contact.lift_keypoints(kp, conf, on, depth, alpha, K, (H, W), 0.5, 0.5)
    near, w = contact.lift_keypoints(kp, conf, on, depth, alpha, K, (H, W), 0.5, 0.5, window_px=4.0)
    assert own[0, 0, 1, 2] == pytest.approx(2.5)
    assert near[0, 0, 1, 2] == pytest.approx(2.0)
    np.testing.assert_allclose(near[..., 1:, :2] / near[..., 1:, 2:] * 100 + [40, 30], kp[..., 1:, :], atol=1e-4)
    # The window is in full-resolution pixels: at half resolution 2 px reach the edge, 1 px does not.
    half = lambda x: x[:, ::2, ::2]  # noqa: E731
    z2, _ = contact.lift_keypoints(kp, conf, on, half(depth), half(alpha), K, (H, W), 0.5, 0.5, window_px=4.0)
    z1, _ = contact.lift_keypoints(kp, conf, on, half(depth), half(alpha), K, (H, W), 0.5, 0.5, window_px=1.0)
    assert z2[0, 0, 1, 2] == pytest.approx(2.0) and z1[0, 0, 1, 2] == pytest.approx(2.5)
    assert w[..., 1:].min() == 1.0


def _depth_of(vertices: np.ndarray) -> np.ndarray:
    """A depth map [H, W] of the body (its vertices splatted 3 x 3, nearest kept; 0 off the body)."""
    uv = vertices[:, :2] / vertices[:, 2:] * [K[0, 0], K[1, 1]] + K[:2, 2]
    z = np.full((H, W), np.inf)
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            r, c = np.clip(uv[:, 1].astype(int) + dr, 0, H - 1), np.clip(uv[:, 0].astype(int) + dc, 0, W - 1)
            np.minimum.at(z, (r, c), vertices[:, 2])
    return np.where(np.isfinite(z), z, 0.0).astype(np.float32)


def test_depth_alignment_moves_the_body_along_its_ray_to_the_depth_over_its_mask(model):
    truth = init_params(model)  # 2.5 m from the camera
    pelvis = np.asarray(forward_sequence(model, truth).joints[0, 0])
    depth = _depth_of(np.asarray(forward_sequence(model, truth).vertices[0]))
    hmr = truth.replace(transl=truth.transl + 0.15 * pelvis)  # 15 % too deep along the pelvis ray (as hmr_sim)
    out = stage2_init.align_to_depth(model, hmr, depth, depth > 0, K, cell_px=2)
    moved = np.asarray(out.transl - hmr.transl)
    np.testing.assert_allclose(np.cross(moved[0], pelvis), 0.0, atol=1e-4)  # along the pelvis ray ...
    np.testing.assert_allclose(np.asarray(out.transl), np.asarray(truth.transl), atol=0.015)  # ... back (1.1 cm)
    unknown = stage2_init.align_to_depth(model, hmr, np.zeros_like(depth), depth > 0, K)  # no depth: unchanged
    np.testing.assert_array_equal(np.asarray(unknown.transl), np.asarray(hmr.transl))


def test_refit_arms_brings_the_hand_joints_to_their_keypoints_and_leaves_the_rest(model):
    init = init_params(model)
    joints = np.asarray(forward_sequence(model, init).joints)
    T = joints.shape[0]
    kp = np.zeros((T, 2, 21, 3), np.float32)
    kw = np.zeros((T, 2, 21), np.float32)
    right = stage2.HAND_JOINTS[1]
    kp[:, 1] = joints[:, right] + [0.0, 0.0, -0.12]  # the right hand's keypoints 12 cm towards the camera
    kw[:, 1, 1:] = 1.0
    kw[2, 1] = 0.0  # a frame without keypoints follows its neighbours
    out = stage2_init.refit_arms(model, init, kp, kw)
    after = np.asarray(forward_sequence(model, out).joints)
    skel = right[(right < jn.NUM_JOINTS) & (np.arange(21) > 0)]
    err = np.linalg.norm(after[:, skel] - kp[:, 1][:, (right < jn.NUM_JOINTS) & (np.arange(21) > 0)], axis=-1)
    assert np.median(err[[0, 1, 3, 4, 5]]) < 0.02 and np.median(err[2]) < 0.04  # from 12 cm
    legs = [jn.SKELETON.index(n) for n in ("left_ankle", "right_ankle", "left_wrist", "head")]
    np.testing.assert_allclose(after[:, legs], joints[:, legs], atol=1e-5)  # only the right arm turned
    same = stage2_init.refit_arms(model, init, kp, np.zeros_like(kw))
    np.testing.assert_array_equal(np.asarray(same.body_pose), np.asarray(init.body_pose))
