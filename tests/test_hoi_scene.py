"""Synthetic HOI scenes: the hand follows the handle, feet stay planted, human and object render together;
the simulated HMR initialization makes exactly the configured errors."""

import dataclasses

import cv2
import numpy as np
import pytest

from arthoi_jax import interaction_metrics as im
from arthoi_jax.body import joint_names as jn
from arthoi_jax.body.model import forward_sequence, params_from_smplx, rest_joints
from arthoi_jax.config import BodyConfig, HmrSimConfig, SyntheticConfig
from arthoi_jax.errors import ConfigError
from arthoi_jax.io.body_model_file import load_body_model
from arthoi_jax.io.bundle import HUMAN_ID, validate_bundle
from arthoi_jax.synthetic import hoi
from arthoi_jax.synthetic.hmr_sim import simulate_hmr


@pytest.fixture(scope="module")
def model():
    return load_body_model(BodyConfig())


@pytest.fixture(scope="module")
def door(model):
    cfg = SyntheticConfig(object="door", human=True, num_frames=4, width=128, height=96, max_angle_deg=25.0)
    return hoi.generate_hoi_scene(cfg, model, HmrSimConfig())


def test_the_hand_holds_the_handle_and_the_feet_stay_planted(model, door):
    b, truth = door
    validate_bundle(b)
    joints = np.asarray(forward_sequence(model, params_from_smplx(model, b.gt.human)).joints)
    grip = joints[:, jn.joint_index(hoi.GRIP_JOINT.format(side=truth.hand))]
    assert truth.contact_frames.all()
    assert np.linalg.norm(grip - truth.handle, axis=-1).max() < hoi.CONTACT_RESIDUAL_M
    feet = joints[:, hoi.FOOT_JOINT_INDEX]
    assert np.linalg.norm(feet - feet[:1], axis=-1).max() < 0.005
    # The handle point is on the object: within palm offset + bar half thickness (+ 5 mm) of its boxes.
    d = [im.box_distance(truth.handle[t][None], truth.boxes[t])[0] for t in range(len(grip))]
    assert 0 < min(d) and max(d) < hoi.PALM_OFFSET_M + 0.013


def test_human_and_object_are_rendered_with_occlusions(door):
    b, _ = door
    assert b.human_masks.any(axis=(1, 2)).all()
    np.testing.assert_array_equal(b.human_masks, b.gt.part_ids == HUMAN_ID)
    assert not (b.human_masks & b.object_masks).any()


def test_visible_hand_keypoints_are_confident_and_on_the_hand(door):
    b, truth = door
    side = 0 if truth.hand == "left" else 1
    conf = b.hand_keypoint_conf[:, side]
    assert (conf == hoi.VISIBLE_CONF).mean() > 0.3
    t, _ = np.nonzero(conf == hoi.VISIBLE_CONF)
    kp = b.hand_keypoints[:, side][conf == hoi.VISIBLE_CONF]
    # Fingers are ~1 px wide here and keypoints carry 1 px noise: each lands within 3 px of the person's pixels.
    near = np.stack([cv2.dilate(m.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0 for m in b.human_masks])
    assert near[t, kp[:, 1].astype(int).clip(0, 95), kp[:, 0].astype(int).clip(0, 127)].all()


def test_hmr_simulation_moves_the_pelvis_along_the_camera_ray(model, door):
    b, _ = door
    gt = b.gt.human
    cfg = HmrSimConfig(rotation_noise_deg=0.0, jitter_deg=0.0, jitter_m=0.0, depth_scale_error=0.1)
    init = simulate_hmr(model, gt, cfg)
    j0 = np.asarray(rest_joints(model, gt.betas, np.zeros(10, np.float32))[0])
    np.testing.assert_allclose(init.transl + j0, 1.1 * (gt.transl + j0), atol=1e-5)
    np.testing.assert_allclose(init.body_pose, gt.body_pose, atol=1e-5)
    noisy = simulate_hmr(model, gt, dataclasses.replace(cfg, rotation_noise_deg=10.0, depth_scale_error=0.0))
    R = np.linalg.norm(noisy.body_pose - gt.body_pose, axis=-1)
    assert 0.02 < R.mean() < 0.5
    np.testing.assert_array_equal(noisy.body_pose, simulate_hmr(model, gt, dataclasses.replace(
        cfg, rotation_noise_deg=10.0, depth_scale_error=0.0)).body_pose)  # deterministic


def test_an_object_without_a_placement_is_refused(model):
    with pytest.raises(ConfigError, match="synthetic.object: 'cabinet2' has no human placement"):
        hoi.generate_hoi_scene(SyntheticConfig(object="cabinet2", human=True, num_frames=2), model, HmrSimConfig())
