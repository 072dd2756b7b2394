"""Stage I's shared-joint refinement (arthoi_jax/stage1_joint.py): the grid path search and Adam over the shared
axis, pivot and all frames' values, on the tiny analytic door."""

import dataclasses

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from arthoi_jax import stage1, stage1_joint
from arthoi_jax.metrics import axis_error_deg
from tests.test_stage1 import CFG, RENDER, _setup


def test_smooth_path_follows_the_cost_and_bridges_a_wrong_frame():
    grid = np.linspace(-1.0, 1.0, 21)
    truth = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])  # frames 1..6
    cost = (grid[None] - truth[:, None]) ** 2
    cost[3] = 0.2 - 0.2 * np.exp(-((grid + 0.6) ** 2) / 0.01)  # frame 4 alone has its minimum elsewhere
    path = stage1_joint.smooth_path(cost, grid, weight=10.0)
    np.testing.assert_allclose(path, np.concatenate([[0.0], truth]), atol=1e-9)
    free = stage1_joint.smooth_path(cost, grid, weight=0.0)
    assert free[4] == pytest.approx(-0.6)  # without the prior each frame takes its own minimum


def test_smooth_path_monotone_never_turns_back():
    grid = np.linspace(-1.0, 1.0, 21)
    target = np.array([0.2, 0.4, 0.6, 0.3, 0.7])  # frame 4 dips
    cost = (grid[None] - target[:, None]) ** 2
    path = stage1_joint.smooth_path(cost, grid, weight=0.0, monotone=True)
    assert np.all(np.diff(path) >= 0), path
    assert stage1_joint.smooth_path(cost, grid, weight=0.0)[4] == pytest.approx(0.3)


def test_smooth_path_through_pinned_frames_carries_on_at_their_pace():
    """Frames 1-3 pinned to the tracks' values (their render cost cannot tell: minimum at 0), frames 4-6 flat
    (a lid seen edge-on): the path passes through the pins and goes on at constant velocity."""
    grid = np.round(np.linspace(-1.0, 1.0, 21), 12)
    cost = np.zeros((6, 21))
    cost[:3] = grid[None] ** 2
    pinned = np.array([0.0, 0.1, 0.2, 0.3, np.nan, np.nan, np.nan])
    path = stage1_joint.smooth_path(cost, grid, weight=1.0, pinned=pinned)
    np.testing.assert_allclose(path, [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6], atol=1e-9)
    np.testing.assert_allclose(stage1_joint.smooth_path(cost, grid, weight=1.0), 0.0, atol=1e-9)


def test_refine_corrects_a_tilted_axis_with_all_frames():
    b, seg = _setup("door", T=6)
    cfg = dataclasses.replace(CFG, articulation="revolute", joint_iters=40, joint_lr_axis=5e-3,
                              joint_lr_pivot=3e-3, joint_lr_value=3e-3)
    p = stage1.prepare(b.frames, b.object_masks, b.tracks, b.visibility, b.K, seg,
                       dataclasses.replace(cfg, joint_iters=0), RENDER, 0.05)
    j = p.joints[0]
    tilt = Rotation.from_rotvec([np.deg2rad(8.0), 0.0, 0.0]).as_matrix()
    bad = dataclasses.replace(j, axis=tilt @ j.axis)
    start = axis_error_deg(bad.axis, b.gt.axes[0])
    refined = stage1.refine_joints(dataclasses.replace(p, joints=(bad,), cfg=cfg))
    end = axis_error_deg(refined.joints[0].axis, b.gt.axes[0])
    assert start > 6.0 and end < 0.6 * start, (start, end)  # 8 deg -> ~4 deg in 40 steps
    np.testing.assert_allclose(np.asarray(refined.scene.joint_axis[0]), refined.joints[0].axis, atol=1e-6)


def test_refine_searches_only_the_frames_a_part_lost_its_tracks_in():
    """The door's tracks hidden from frame 3 on and its joint's values there zeroed: the search puts them back
    near the truth (pinned to the tracked frames' values); with every frame tracked nothing is searched."""
    b, seg = _setup("door", T=6)
    cfg = dataclasses.replace(CFG, articulation="revolute", search_values=61, search_range_deg=60.0)
    p = stage1.prepare(b.frames, b.object_masks, b.tracks, b.visibility, b.K, seg, cfg, RENDER, 0.05)
    assert p.joints[0] is not None
    truth = b.gt.joint_values[:, 0]
    lost = dataclasses.replace(p.joints[0], values=np.where(np.arange(len(truth)) >= 3, 0.0, truth))
    counts = np.where(np.arange(len(truth)) >= 3, 0, 50)[:, None]
    T, M = p.num_frames, p.scene.track_points.shape[0]
    frames = stage1.stack_trees([stage1.frame_inputs(p, t, M, np.tile(np.eye(4), (T, 1, 1, 1)), np.zeros((T, 1)))
                                 .replace(init_value=np.zeros(1, np.float32)) for t in range(1, T)])
    (found,), _ = stage1_joint.refine((lost,), p.scene, frames, counts, cfg, RENDER)
    assert np.rad2deg(np.abs(lost.values - truth).max()) > 30.0
    assert np.rad2deg(np.abs(found.values - truth).max()) < 5.0  # 3.7 deg (grid step 2 deg)
    np.testing.assert_allclose(found.values[:3], truth[:3], atol=1e-6)  # the tracked frames keep theirs
    (kept,), _ = stage1_joint.refine((lost,), p.scene, frames, np.full_like(counts, 50), cfg, RENDER)
    assert kept is lost
