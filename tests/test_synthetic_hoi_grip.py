"""The synthetic HOI ground truth holds the handle without passing through the object (issue 8): the IK keeps the
arm and the curled grip hand outside the object's boxes while the grip knuckle stays on the handle."""

import dataclasses

import numpy as np
import pytest

from arthoi_jax import interaction_metrics as im
from arthoi_jax.body import ik
from arthoi_jax.body import joint_names as jn
from arthoi_jax.body.model import forward_sequence
from arthoi_jax.config import BodyConfig, SyntheticConfig
from arthoi_jax.geometry.boxes import box_sdf
from arthoi_jax.io.body_model_file import load_body_model
from arthoi_jax.synthetic import hoi
from arthoi_jax.synthetic.scene import build_scene


def test_box_sdf_matches_the_metric():
    rng = np.random.default_rng(0)
    boxes = rng.normal(size=(1, 3, 4, 3))
    v0 = boxes[0, :, 0]  # orthogonal edges from corner 0, as object_boxes writes them
    q, _ = np.linalg.qr(rng.normal(size=(3, 3, 3)))
    boxes[0, :, 1:] = v0[:, None] + q * rng.uniform(0.1, 0.5, size=(3, 3, 1))
    points = rng.normal(size=(50, 3))
    c = ik.clearance(np.arange(1), boxes)
    got = np.asarray(box_sdf(points, c.centre[0], c.axes[0], c.half[0]))
    np.testing.assert_allclose(got, im.box_distance(points, boxes[0]), atol=1e-5)


@pytest.fixture(scope="module")
def door_truth():
    model = load_body_model(BodyConfig())
    cfg = SyntheticConfig(object="door", human=True, num_frames=4, width=128, height=96, max_angle_deg=25.0)
    scene = build_scene(dataclasses.replace(cfg, human=False))
    params, truth = hoi.pose_human(model, scene, cfg)
    return forward_sequence(model, params), truth


def test_the_grip_hand_holds_the_handle_without_entering_the_object(door_truth):
    out, truth = door_truth
    verts, joints = np.asarray(out.vertices), np.asarray(out.joints)
    # The flat hand the IK used to push into the bar gave 0.14 % here; the target is 0.05 %.
    assert im.penetration_percent(verts, truth.boxes) <= 0.05
    assert truth.contact_frames.all()
    grip = joints[:, jn.joint_index(hoi.GRIP_JOINT.format(side=truth.hand))]
    assert np.linalg.norm(grip - truth.handle, axis=-1).max() < hoi.CONTACT_RESIDUAL_M
    # The fingers touch it: the hand's keypoints come within the Contact % threshold of the object every frame.
    hand = joints[:, hoi.HAND_KEYPOINT_INDEX[0 if truth.hand == "left" else 1]]
    assert im.contact_percent(hand, truth.boxes, truth.contact_frames)["percent"] == 100.0
