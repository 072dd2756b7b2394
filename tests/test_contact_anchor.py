"""Grasp anchoring (contact.anchor_keypoints, contact.held_part): contact keypoints held rigid in the frame of the
part the hand holds, outlier frames dropped, frames without lifting filled."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from arthoi_jax import contact
from arthoi_jax.errors import InputError

T = 12


def door_poses(T=T, pivot=(0.3, 0.0, 2.0)):
    """[T, 1, 4, 4] a part turning about a vertical axis (y) through `pivot`, 0 to 60 degrees."""
    poses = np.tile(np.eye(4), (T, 1, 1, 1))
    for t, a in enumerate(np.radians(np.linspace(0, 60, T))):
        R = Rotation.from_rotvec([0, a, 0]).as_matrix()
        poses[t, 0, :3, :3] = R
        poses[t, 0, :3, 3] = np.asarray(pivot) - R @ pivot
    return poses


def held(poses, canon):
    """[T, 21, 3] world positions of canonical (frame-0) points [21, 3] moved with part 0."""
    return np.einsum("tij,kj->tki", poses[:, 0, :3, :3], canon) + poses[:, 0, None, :3, 3]


@pytest.fixture()
def grasp():
    rng = np.random.default_rng(0)
    poses = door_poses()
    canon = np.array([0.0, -0.1, 1.9]) + rng.uniform(-0.05, 0.05, (21, 3))
    truth = held(poses, canon)
    pts = np.zeros((T, 2, 21, 3), np.float32)
    w = np.zeros((T, 2, 21), np.float32)
    pts[:, 0] = truth + rng.normal(scale=0.003, size=truth.shape)  # left hand: lifted with 3 mm noise
    w[:, 0, 1:] = 1.0
    w[6:, 0, 1:15] = 0.0  # late frames lift only a few keypoints (the door turns edge-on) ...
    w[9:, 0, 15:] = 0.0  # ... and the last ones none
    pts[4, 0, 18] += [0.0, 0.0, 0.3]  # a depth from the face behind the hand: an outlier
    pts[w == 0] = 0.0
    on = np.zeros((T, 2), bool)
    on[:, 0] = True
    return poses, truth, pts, w, on


def test_anchored_keypoints_follow_the_parts_rigid_motion_and_fill_missing_frames(grasp):
    poses, truth, pts, w, on = grasp
    out, ow = contact.anchor_keypoints(pts, w, on, poses, np.array([0, -1]))
    # Every keypoint with >= 3 lifted frames is anchored on every contact frame, lifted there or not: weight 1
    # where lifted, elsewhere its support (keypoints 1-14 lifted on 6 of 12 frames, 15-20 on 9).
    np.testing.assert_array_equal(ow[:6, 0, 1:], 1.0)
    np.testing.assert_array_equal(ow[6:, 0, 1:15], 0.5)
    np.testing.assert_array_equal(ow[6:9, 0, 15:], 1.0)
    np.testing.assert_array_equal(ow[9:, 0, 15:], 0.75)
    assert np.all(ow[:, 0, contact.WRIST] == 0)
    # Its position is the part's motion of one fixed point: within noise of the truth (the 30 cm outlier dropped).
    err = np.linalg.norm(out[:, 0, 1:] - truth[:, 1:], axis=-1)
    assert err.max() < 0.005
    assert np.linalg.norm(out[4, 0, 18] - truth[4, 18]) < 0.005
    # The per-frame lifting would leave frame 11 empty and frame 4's keypoint 30 cm off.
    assert w[11, 0].sum() == 0 and np.linalg.norm(pts[4, 0, 18] - truth[4, 18]) > 0.29
    # The hand with no part (-1) is left as it was.
    np.testing.assert_array_equal(out[:, 1], pts[:, 1])
    np.testing.assert_array_equal(ow[:, 1], w[:, 1])


def test_a_keypoint_lifted_on_too_few_frames_keeps_its_per_frame_lifting(grasp):
    poses, _, pts, w, on = grasp
    w[2:, 0, 5] = 0.0  # keypoint 5 lifted on frames 0 and 1 only
    pts[w == 0] = 0.0
    out, ow = contact.anchor_keypoints(pts, w, on, poses, np.array([0, -1]))
    np.testing.assert_array_equal(ow[:, 0, 5], w[:, 0, 5])
    np.testing.assert_array_equal(out[:, 0, 5], pts[:, 0, 5])


def test_frames_off_contact_are_not_anchored(grasp):
    poses, truth, pts, w, on = grasp
    on[:3, 0] = False
    w[:3] = 0.0
    pts[:3] = 0.0
    out, ow = contact.anchor_keypoints(pts, w, on, poses, np.array([0, -1]))
    assert np.all(ow[:3] == 0) and np.all(out[:3] == 0)
    # Keypoints 1-14 now rest on 3 frames (3 mm noise per axis): their mean is within 8 mm.
    assert np.linalg.norm(out[3:, 0, 1:] - truth[3:, 1:], axis=-1).max() < 0.008


def test_the_held_part_is_the_one_nearest_the_lifted_keypoints(grasp):
    poses, _, pts, w, _ = grasp
    # Part 1: a second door, static, 40 cm to the right of the hand; part 0 carries the hand.
    two = np.concatenate([poses, np.tile(np.eye(4), (T, 1, 1, 1))], axis=1)
    rng = np.random.default_rng(1)
    canon = np.array([0.0, -0.1, 1.9])
    door0 = canon + rng.uniform(-0.1, 0.1, (200, 3))
    door1 = canon + [0.4, 0.0, 0.0] + rng.uniform(-0.1, 0.1, (200, 3))
    np.testing.assert_array_equal(contact.held_part(pts, w, two, [door0, door1]), [0, -1])
    np.testing.assert_array_equal(contact.held_part(pts, w, two[:, ::-1], [door1, door0]), [1, -1])


def test_anchor_rejects_bad_shapes(grasp):
    poses, _, pts, w, on = grasp
    with pytest.raises(InputError, match=r"contact: expected shape \[T=12, 2\], got \[12\]"):
        contact.anchor_keypoints(pts, w, on[:, 0], poses, np.array([0, -1]))
    with pytest.raises(InputError, match=r"part_poses: expected shape \[T=12, P, 4, 4\], got \[12, 4, 4\]"):
        contact.anchor_keypoints(pts, w, on, poses[:, 0], np.array([0, -1]))


def test_each_grasp_is_anchored_on_its_own(grasp):
    poses, truth, pts, w, on = grasp
    # The hand lets go at frame 6 and takes the part 10 cm lower from frame 7 on.
    on[6, 0] = False
    w[6] = 0.0
    pts[6] = 0.0
    lower = held(poses, truth[0] + [0.0, 0.1, 0.0])  # the part's pose at frame 0 is the identity
    pts[7:, 0] = lower[7:]
    w[7:, 0, 1:] = 1.0
    out, ow = contact.anchor_keypoints(pts, w, on, poses, np.array([0, -1]))
    assert [m.nonzero()[0].tolist() for m in contact.grasps(on[:, 0])] == [list(range(6)), list(range(7, 12))]
    assert np.all(ow[6] == 0)
    assert np.linalg.norm(out[:6, 0, 1:] - truth[:6, 1:], axis=-1).max() < 0.008
    np.testing.assert_allclose(out[7:, 0, 1:], lower[7:, 1:], atol=1e-5)
