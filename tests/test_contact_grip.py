"""Contact keypoints of a grip: lifted over the parts rendered rigid (no Eq. 4 blend) and with per-keypoint offsets
(contact.rigid_parts, contact.grip_offsets, Stage2Config.contact_rigid_parts / contact_*_offsets_m)."""

import dataclasses
import types

import numpy as np
import pytest

from arthoi_jax import contact, stage2_init
from arthoi_jax.config import RenderConfig, Stage2Config
from arthoi_jax.errors import InputError
from arthoi_jax.render.types import Gaussians
from arthoi_jax.stage1 import Stage1Scene

K = np.array([[400.0, 0, 40.0], [0, 400.0, 30.0], [0, 0, 1.0]])
H, W = 60, 80
PIVOT = np.array([-0.15, 0.0, 2.0])  # the door's hinge (vertical axis through it)
BAR = np.array([0.01, 0.0, 1.95])  # the handle bar's centre, 5 cm in front of the panel at z = 2


def _pose(deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    R = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, PIVOT - R @ PIVOT
    return T


def _door() -> Stage1Scene:
    """A door panel (part 1, x in [-0.15, 0.05] m at z = 2) with a bar handle 5 cm in front of it near its free
    edge, and the static frame beside the edge; the bar's Gaussians blend both parts (w = 0.4 / 0.6), as Stage I's
    weights do within the binding radius of another part."""
    grid = lambda xs: np.array([[x, y, 2.0] for x in xs for y in np.arange(-0.1, 0.1001, 0.01)])  # noqa: E731
    panel, frame = grid(np.arange(-0.15, 0.0501, 0.01)), grid(np.arange(0.06, 0.1201, 0.01))
    bar = np.array([[x, 0.0, BAR[2]] for x in np.arange(-0.02, 0.0401, 0.005)])
    means = np.concatenate([panel, frame, bar]).astype(np.float32)
    n = len(means)
    weights = np.concatenate([np.tile([0.0, 1.0], (len(panel), 1)), np.tile([1.0, 0.0], (len(frame), 1)),
                              np.tile([0.4, 0.6], (len(bar), 1))]).astype(np.float32)
    scale = np.concatenate([np.full(len(panel) + len(frame), 0.006), np.full(len(bar), 0.004)])
    g = Gaussians(means=means, quats=np.tile([1.0, 0, 0, 0], (n, 1)).astype(np.float32),
                  log_scales=np.log(np.repeat(scale[:, None], 3, 1)).astype(np.float32),
                  opacity_logits=np.full(n, 5.0, np.float32), colors=np.full((n, 3), 0.5, np.float32))
    return Stage1Scene(gaussians=g, valid=np.ones(n, bool), weights=weights,
                       part_of=np.argmax(weights, 1).astype(np.int32), track_points=np.zeros((1, 3), np.float32),
                       track_part=np.zeros(1, np.int32), pairs=np.zeros((1, 2), np.int32), pair_valid=np.zeros(1, bool),
                       binding_radius=np.float32(0.05), K=K, K_render=K, joint_type=np.zeros(1, np.int32),
                       joint_axis=np.array([[0.0, 1.0, 0.0]]), joint_pivot=PIVOT[None])


def _lift(rigid: bool, offsets=None):
    """The 20 finger keypoints of the left hand all on the turned bar's centre pixel (frame 0: 0 deg, frame 1:
    25 deg) -> lifted points [2, 21, 3] and the bar's true centre [2, 3]."""
    poses = np.stack([_pose(0.0), _pose(25.0)])[:, None]  # [T, P, 4, 4]
    truth = np.einsum("tij,j->ti", poses[:, 0, :3, :3], BAR) + poses[:, 0, :3, 3]
    uv = truth[:, :2] / truth[:, 2:] * K[[0, 1], [0, 1]] + K[:2, 2]
    kp = np.broadcast_to(uv[:, None, None], (2, 2, 21, 2)).astype(np.float32)
    bundle = types.SimpleNamespace(human_masks=np.zeros((2, H, W), bool), K=K, hand_keypoints=kp,
                                   hand_keypoint_conf=np.ones((2, 2, 21), np.float32), T_cam_world=None)
    cfg = dataclasses.replace(Stage2Config(), render_downsample=1, contact_window_px=0.0, contact_offset_m=0.0,
                              contact_rigid_parts=rigid, contact_finger_offsets_m=offsets)
    pts, w = stage2_init.contact_keypoints(bundle, _door(), poses, np.array([[True, False]] * 2), cfg,
                                           RenderConfig(mode="dense"))
    return pts[:, 0], w[:, 0], truth


def test_the_bar_is_lifted_to_its_depth_with_rigid_parts_and_off_it_with_the_blend():
    rigid, w, truth = _lift(rigid=True)
    blend, _, _ = _lift(rigid=False)
    assert w[:, 1:].min() == 1.0 and w[:, 0].max() == 0.0  # the wrist is never lifted
    # Rest pose: both renders agree (the blend of two identities); lifted at the bar, not the panel 5 cm behind.
    assert abs(rigid[0, 1, 2] - truth[0, 2]) < 0.01 and abs(blend[0, 1, 2] - truth[0, 2]) < 0.01
    # Turned 25 deg: the blended bar is half-way between the parts' poses, off the door; the rigid one is on it.
    assert np.linalg.norm(rigid[1, 1] - truth[1]) < 0.01
    assert np.linalg.norm(blend[1, 1] - truth[1]) > 0.02  # 0.4 x the bar's 7 cm displacement


def test_grip_offsets_put_each_finger_segment_at_its_own_depth():
    plain, _, _ = _lift(rigid=True)
    grip, _, _ = _lift(rigid=True, offsets=(0.04, 0.015, 0.0, -0.015))
    ray = plain[1, 1] / np.linalg.norm(plain[1, 1])
    moved = np.einsum("kj,j->k", plain[1] - grip[1], ray)  # towards the camera, per keypoint
    np.testing.assert_allclose(moved[1:5], 0.0, atol=1e-6)  # the thumb keeps contact_offset_m (0 here)
    np.testing.assert_allclose(moved[5:].reshape(4, 4), np.tile([0.04, 0.015, 0.0, -0.015], (4, 1)), atol=1e-5)
    np.testing.assert_allclose(np.cross(grip[1, 5:], ray), 0.0, atol=1e-5)  # along the viewing ray only


def test_grip_offsets_layout_and_errors():
    o = contact.grip_offsets(0.015, finger_m=(4, 3, 2, 1), thumb_m=(9, 8, 7, 6))
    assert o[0] == pytest.approx(0.015) and o[1:5].tolist() == [9, 8, 7, 6] and o[5:].tolist() == [4, 3, 2, 1] * 4
    assert contact.grip_offsets(0.02).tolist() == pytest.approx([0.02] * 21)
    with pytest.raises(InputError, match=r"grip offsets: expected 4 values .* got \[0.04, 0.01\]"):
        contact.grip_offsets(0.015, finger_m=(0.04, 0.01))
