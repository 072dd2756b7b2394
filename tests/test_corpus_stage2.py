"""Bad inputs to Stage II, the contact keypoints and the human-motion files: each case names what is at fault."""

import dataclasses

import jax
import numpy as np
import pytest

from arthoi_jax import config as config_lib
from arthoi_jax import contact, stage2_init
from arthoi_jax.body.model import BodyParams
from arthoi_jax.config import BodyConfig, RenderConfig, Stage1Config, Stage2Config
from arthoi_jax.errors import BundleError, ConfigError, InputError
from arthoi_jax.io.body_model_file import load_body_model
from arthoi_jax.io.human_motion import load_human_motion
from tests.factories import tiny_bundle
from tests.stage2_scene import FAST, K, T, init_params


def prepare(b):
    return stage2_init.prepare(b, None, None, None, Stage2Config(), Stage1Config(), RenderConfig(), 0.05)


def test_stage2_rejects_a_bundle_without_smplx_init():
    with pytest.raises(InputError, match=r"bundle.smplx_init: Stage II needs an SMPL-X initialization"):
        prepare(dataclasses.replace(tiny_bundle(), smplx_init=None))


def test_stage2_rejects_a_bundle_without_hand_keypoints():
    b = dataclasses.replace(tiny_bundle(), hand_keypoints=None, hand_keypoint_conf=None)
    with pytest.raises(InputError, match=r"bundle.hand_keypoints: .*need 2D hand keypoints"):
        prepare(b)


def test_contact_rejects_hand_keypoints_of_the_wrong_shape():
    with pytest.raises(InputError, match=r"hand_keypoints: expected shape \[T=3, 2, 21, 2\], got \[3, 21, 2\]"):
        contact.detect_contact_frames(np.zeros((3, 21, 2)), np.zeros((3, 2, 21)), np.zeros((3, 8, 8), bool), 0.5, 4)


def test_contact_rejects_confidences_of_the_wrong_shape():
    with pytest.raises(InputError, match=r"hand_keypoint_conf: expected shape \[T=3, 2, 21\], got \[3, 42\]"):
        contact.detect_contact_frames(np.zeros((3, 2, 21, 2)), np.zeros((3, 42)), np.zeros((3, 8, 8), bool), 0.5, 4)


def test_lift_rejects_contact_labels_of_the_wrong_shape():
    d = np.ones((3, 8, 8), np.float32)
    with pytest.raises(InputError, match=r"contact: expected shape \[T=3, 2\], got \[3\]"):
        contact.lift_keypoints(np.zeros((3, 2, 21, 2)), np.ones((3, 2, 21)), np.ones(3, bool), d, d, np.eye(3),
                               (8, 8), 0.5, 0.5)


def test_contact_frames_with_an_empty_part_mask_are_no_contact():
    kp = np.full((2, 2, 21, 2), 4.0, np.float32)
    c = contact.detect_contact_frames(kp, np.ones((2, 2, 21)), np.zeros((2, 8, 8), bool), 0.5, 100.0)
    assert not c.any()


def test_stage2_rejects_an_init_with_another_frame_count():
    model = load_body_model(BodyConfig())
    init = jax.tree.map(lambda x: x[:T - 1], init_params(model)).replace(betas=BodyParams.zeros(model).betas)
    masks = np.zeros((T, 48, 64), bool)
    with pytest.raises(InputError, match=rf"smplx_init: {T - 1} frames for a {T}-frame video"):
        stage2_init.build_data(model, init, np.zeros((T, 48, 64, 3), np.uint8), masks, K, None, None, None, None, None,
                               None, None, None, FAST)


def test_human_motion_file_missing_an_array_is_named(tmp_path):
    np.savez(tmp_path / "human_motion.npz", betas=np.zeros((1, 10)), transl=np.zeros((2, 3)))
    with pytest.raises(BundleError, match=r"human_motion.npz: missing array\(s\) global_orient, body_pose"):
        load_human_motion(tmp_path)


def test_human_motion_file_absent_is_named(tmp_path):
    with pytest.raises(BundleError, match=r"human_motion.npz: missing"):
        load_human_motion(tmp_path)


def test_config_rejects_an_unknown_stage2_mode():
    with pytest.raises(ConfigError, match=r"stage2.mode: 'both' is not allowed; allowed values: 'decoupled', 'joint'"):
        config_lib.load_config(None, ["stage2.mode=both"])


def test_config_rejects_a_negative_penetration_weight():
    with pytest.raises(ConfigError, match=r"stage2.lambda_pen: -1.0 is out of range"):
        config_lib.load_config(None, ["stage2.lambda_pen=-1.0"])


def test_config_rejects_an_out_of_range_depth_error():
    with pytest.raises(ConfigError, match=r"hmr_sim.depth_scale_error: 0.9 is out of range; allowed: \[-0.5, 0.5\]"):
        config_lib.load_config(None, ["hmr_sim.depth_scale_error=0.9"])
