"""Photometric refinement of a joint (articulation.refine_joint_photometric, the `init_photometric` step of
stage1.initial_poses): tracks that slide along the texture in proportion to the displacement (angle) tilt the
track-fitted direction (axis); aligning the part's frame-0 pixels to every frame recovers it."""

import dataclasses

import numpy as np
import pytest

from arthoi_jax import stage1
from arthoi_jax.articulation import reprojection_error_px
from arthoi_jax.config import SegmentationConfig, Stage1Config
from arthoi_jax.segmentation import segment
from tests.stage1_scene import make_scene


def _axis_deg(a, b):
    return float(np.rad2deg(np.arccos(min(abs(a @ b) / np.linalg.norm(a) / np.linalg.norm(b), 1.0))))


@pytest.fixture(scope="module")
def sliding_drawer():
    """The analytic drawer seen from the side, its front's GT tracks sliding towards the front's centre in
    proportion to the displacement, up to 3 px (the growth of a front coming closer under-read: an LK window fixed
    in size on stripes), plus 1.5 px along one direction with a random sign per track."""
    b = make_scene("drawer", 128, 96, 8, max_value=0.35, yaw_deg=45.0)
    seg = segment(b.frames, b.object_masks, b.depth, b.K, b.tracks, b.visibility, SegmentationConfig(gaussian_stride=3))
    front = seg.track_labels == 1
    offset = np.where(front[:, None], b.tracks[0] - b.tracks[0][front].mean(0), 0.0)
    slide = -3.0 * offset / np.abs(offset).max()
    slide += np.where(front, np.random.default_rng(0).choice([-1.5, 1.5], len(front)), 0.0)[:, None] * [0.8, 0.6]
    share = b.gt.joint_values[:, 0] / b.gt.joint_values[-1, 0]  # [T] 0 -> 1
    tracks = b.tracks + (share[:, None, None] * slide[None]).astype(np.float32)
    return b, seg, tracks


def test_photometric_refinement_recovers_the_direction_tracks_tilt(sliding_drawer):
    b, seg, tracks = sliding_drawer
    cfg = Stage1Config(articulation="prismatic")
    truth = b.gt.axes[0]
    _, _, (off,) = stage1.initial_poses(seg, tracks, b.visibility, b.K,
                                        dataclasses.replace(cfg, init_photometric=False), frames=b.frames)
    _, _, (on,) = stage1.initial_poses(seg, tracks, b.visibility, b.K, cfg, frames=b.frames)
    assert on.joint_type == "prismatic"
    assert _axis_deg(off.axis, truth) > 3.0  # the slide tilts the track fit
    assert _axis_deg(on.axis, truth) < 0.5  # 58.5 deg off (tracks fit at 0.90 px) -> 0.06 deg
    err_on = np.abs(on.values - b.gt.joint_values[:, 0]).max()
    assert err_on < 0.003  # metres, of 0.35 (0.5 mm; off: 6.8 cm)
    assert err_on < np.abs(off.values - b.gt.joint_values[:, 0]).max()


def test_photometric_samples_back_project_the_eroded_part_mask_at_its_depth(sliding_drawer):
    b, seg, _ = sliding_drawer
    uv, points = stage1.photometric_samples(seg, 0, b.K)
    assert len(uv) >= stage1.MIN_PHOTOMETRIC_PIXELS
    rows, cols = (uv[:, 1] - 0.5).astype(int), (uv[:, 0] - 0.5).astype(int)
    assert np.mean(b.gt.part_ids[0, rows, cols] == 2) > 0.9  # eroded: inside the front (93 %: the mask overreaches)
    z_err = np.abs(points[:, 2] - b.depth[rows, cols])
    assert np.median(z_err) < 0.005  # metres, interpolated from the part's Gaussians
    np.testing.assert_allclose(points[:, :2] / points[:, 2:] * np.diag(b.K)[:2] + b.K[:2, 2], uv, atol=1e-6)


def test_exact_tracks_keep_the_track_fit_and_their_error_reads_zero(sliding_drawer):
    b, seg, tracks = sliding_drawer
    cfg = Stage1Config(articulation="prismatic")
    front = seg.track_labels == 1
    _, _, (off,) = stage1.initial_poses(seg, b.tracks, b.visibility, b.K,
                                        dataclasses.replace(cfg, init_photometric=False), frames=b.frames)
    _, _, (on,) = stage1.initial_poses(seg, b.tracks, b.visibility, b.K, cfg, frames=b.frames)
    exact = reprojection_error_px(off, seg.track_points[front], b.tracks[:, front], b.visibility[:, front], b.K)
    assert exact < 0.01 < stage1.PHOTOMETRIC_MIN_TRACK_PX
    np.testing.assert_array_equal(on.axis, off.axis)  # below the gate: not re-aligned
    shifted = b.tracks[:, front] + np.float32([0.6, 0.8])  # every frame > 0 read 1 px off
    shifted[0] = b.tracks[0, front]
    moved = reprojection_error_px(off, seg.track_points[front], shifted, b.visibility[:, front], b.K)
    assert abs(moved - 1.0) < 0.01
    slid = reprojection_error_px(off, seg.track_points[front], tracks[:, front], b.visibility[:, front], b.K)
    assert slid > stage1.PHOTOMETRIC_MIN_TRACK_PX


def test_photometric_refinement_through_a_moving_camera(sliding_drawer):
    """The same images read as a camera translating by d_t w (world = camera 0) and a part moving along a - w:
    the alignment, projected through the cameras, recovers the world direction from a 10 deg tilt."""
    import cv2

    from arthoi_jax.articulation import JointFit, refine_joint_photometric

    b, seg, _ = sliding_drawer
    a, d = b.gt.axes[0], b.gt.joint_values[:, 0]
    w = np.array([0.3, -0.2, 0.1])
    world = (a - w) / np.linalg.norm(a - w)
    cams = np.tile(np.eye(4), (len(d), 1, 1))
    cams[:, :3, 3] = d[:, None] * w
    tilt = cv2.Rodrigues(np.cross(world, [0.0, 1.0, 0.0]) / np.linalg.norm(np.cross(world, [0.0, 1.0, 0.0]))
                         * np.deg2rad(10.0))[0] @ world
    start = JointFit("prismatic", tilt, np.zeros(3), d * np.linalg.norm(a - w) * 0.9, float("nan"))
    grey = np.stack([cv2.GaussianBlur(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY).astype(np.float32), (0, 0), 1.0)
                     for f in b.frames])
    uv, points = stage1.photometric_samples(seg, 0, b.K)
    fit = refine_joint_photometric(start, grey, uv, points, b.K, T_cam_world=cams)
    assert _axis_deg(fit.axis, world) < 0.5  # 0.05 deg (without the cameras: 10.8 deg)
    np.testing.assert_allclose(fit.values, d * np.linalg.norm(a - w), atol=0.003)


def test_photometric_refinement_recovers_a_revolute_axis_tracks_tilt():
    """The analytic door, its GT tracks sliding in proportion to the angle: up to 8 px down on its left and up on
    its right (a shear that tilts the axis of the track fit), plus 1.5 px with a random sign per track. Aligning
    the door's pixels recovers the axis, the pivot across it and the angles."""
    b = make_scene("door", 128, 96, 8, yaw_deg=30.0)
    seg = segment(b.frames, b.object_masks, b.depth, b.K, b.tracks, b.visibility, SegmentationConfig(gaussian_stride=3))
    door = seg.track_labels == 1
    offset = np.where(door, b.tracks[0, :, 0] - b.tracks[0, door, 0].mean(), 0.0)
    slide = np.stack([np.zeros_like(offset), 8.0 * offset / np.abs(offset).max()], -1)
    slide += np.where(door, np.random.default_rng(0).choice([-1.5, 1.5], len(door)), 0.0)[:, None] * [0.8, 0.6]
    share = b.gt.joint_values[:, 0] / b.gt.joint_values[-1, 0]  # [T] 0 -> 1
    tracks = b.tracks + (share[:, None, None] * slide[None]).astype(np.float32)
    cfg = Stage1Config(articulation="revolute")
    _, _, (off,) = stage1.initial_poses(seg, tracks, b.visibility, b.K,
                                        dataclasses.replace(cfg, init_photometric=False), frames=b.frames)
    _, _, (on,) = stage1.initial_poses(seg, tracks, b.visibility, b.K, cfg, frames=b.frames)
    axis, pivot = b.gt.axes[0], b.gt.pivots[0]

    def pivot_err(fit):  # distance between the fitted and the true axis lines, across the axis
        d = fit.pivot - pivot
        return np.linalg.norm(d - (d @ axis) * axis)

    assert on.joint_type == "revolute"
    assert _axis_deg(off.axis, axis) > 5.0  # 6.9 deg: the shear tilts the track fit
    assert _axis_deg(on.axis, axis) < 0.5  # 0.18 deg
    assert pivot_err(on) < 0.02 < pivot_err(off)  # metres: 0.9 cm (off: 12.5 cm)
    assert np.rad2deg(np.abs(on.values - b.gt.joint_values[:, 0]).max()) < 1.0  # 0.39 deg (off: 7.4 deg)


@pytest.fixture(scope="module")
def door_grey():
    import cv2

    b = make_scene("door", 128, 96, 8, yaw_deg=30.0)
    seg = segment(b.frames, b.object_masks, b.depth, b.K, b.tracks, b.visibility, SegmentationConfig(gaussian_stride=3))
    grey = np.stack([cv2.GaussianBlur(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY).astype(np.float32), (0, 0), 1.0)
                     for f in b.frames])
    uv, points = stage1.photometric_samples(seg, 0, b.K)
    return b, grey, uv, points


def test_photometric_refinement_aligns_only_the_frames_given(door_grey):
    """The door's last two frames replaced by unrelated images (its face turned away): aligned on the others, the
    axis is recovered from a 6 deg tilt and the left-out frames keep the start's angles; aligned on every frame,
    the unrelated images pull it off."""
    from scipy.spatial.transform import Rotation

    from arthoi_jax.articulation import JointFit, refine_joint_photometric

    b, grey, uv, points = door_grey
    axis, pivot, truth = b.gt.axes[0], b.gt.pivots[0], b.gt.joint_values[:, 0]
    tilt = Rotation.from_rotvec(np.deg2rad(6.0) * np.cross(axis, [0.0, 0.0, 1.0])
                                / np.linalg.norm(np.cross(axis, [0.0, 0.0, 1.0]))).as_matrix() @ axis
    start = JointFit("revolute", tilt, pivot, truth * 0.9, float("nan"))
    grey = grey.copy()
    grey[-2:] = grey[-2:, ::-1, ::-1]
    used = np.arange(len(grey)) < len(grey) - 2
    fit = refine_joint_photometric(start, grey, uv, points, b.K, frames=used)
    np.testing.assert_array_equal(fit.values[~used], start.values[~used])
    every = refine_joint_photometric(start, grey, uv, points, b.K)
    assert _axis_deg(fit.axis, axis) < 0.5 < _axis_deg(every.axis, axis)  # 0.10-0.19 against 0.91-1.17 deg (by machine)


def test_photometric_error_tells_the_joint_type(door_grey):
    """Aligned from the same tracks, a revolute joint reads the turning door's pixels far better than a prismatic
    one (the type test of stage1.initial_poses where the tracks cannot tell)."""
    from arthoi_jax.articulation import (
        JointFit,
        photometric_error,
        refine_joint_photometric,
    )

    b, grey, uv, points = door_grey
    axis, pivot, truth = b.gt.axes[0], b.gt.pivots[0], b.gt.joint_values[:, 0]
    rev = JointFit("revolute", axis, pivot, truth, float("nan"))
    pri0 = JointFit("prismatic", np.array([1.0, 0.0, 0.0]), np.zeros(3), np.zeros(len(truth)), float("nan"))
    pri = refine_joint_photometric(pri0, grey, uv, points, b.K)
    e_rev = photometric_error(rev, grey, uv, points, b.K)
    e_pri = photometric_error(pri, grey, uv, points, b.K)
    assert e_rev < 0.5 * e_pri  # 2.2 against 9.0 grey levels
