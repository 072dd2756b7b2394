"""Bad-input corpus for segmentation, Stage I, joint fitting and evaluation: one case per test."""

import dataclasses

import numpy as np
import pytest
import yaml

from arthoi_jax import pipeline
from arthoi_jax.articulation import fit_joint
from arthoi_jax.config import SegmentationConfig
from arthoi_jax.errors import BundleError, ConfigError, InputError
from arthoi_jax.grabcut_masks import prompt_mask
from arthoi_jax.io.bundle import GroundTruth, save_bundle
from arthoi_jax.io.stage1_outputs import load_segmentation, load_stage1
from arthoi_jax.metrics import articulation_report
from arthoi_jax.object_gaussians import backproject_gaussians, pad_gaussians
from arthoi_jax.segmentation import part_masks, pnp_poses, segment, track_points_3d
from tests.stage1_scene import make_scene

CFG = SegmentationConfig(gaussian_stride=3)


@pytest.fixture(scope="module")
def door():
    return make_scene("door", 96, 72, 5, max_value=np.deg2rad(35.0))


def _segment(b, **kw):
    return segment(b.frames, b.object_masks, b.depth, b.K, kw.get("tracks", b.tracks),
                   kw.get("visibility", b.visibility), kw.get("cfg", CFG), kw.get("mask_fn"))


def test_segment_rejects_a_video_where_nothing_moves(door):
    still = np.repeat(door.tracks[:1], door.num_frames, 0)
    with pytest.raises(InputError, match=r"no track moves more than segmentation.dynamic_px=5.0 px"):
        _segment(door, tracks=still)


def test_segment_rejects_a_moving_part_with_fewer_tracks_than_the_minimum(door):
    tracks = np.repeat(door.tracks[:1], door.num_frames, 0)
    moving = np.nonzero(door.gt.track_part == 2)[0][::10][:10]  # ten tracks of the door keep their motion
    tracks[:, moving] = door.tracks[:, moving]
    with pytest.raises(InputError, match=r"no rigid part of at least segmentation.min_part_tracks=12 tracks"):
        _segment(door, tracks=tracks)


def test_segment_gives_an_empty_mask_where_the_moving_part_is_hidden(door):
    vis = door.visibility.copy()
    vis[2, door.gt.track_part == 2] = False
    calls = []

    def fake_sam(image, pos, neg, box):
        calls.append(len(pos))
        return np.ones(image.shape[:2], bool)

    seg = _segment(door, visibility=vis, mask_fn=fake_sam)
    assert not seg.part_masks[2, 0].any() and seg.part_masks[1, 0].any()
    assert 0 not in calls  # SAM is never asked without a positive prompt


def test_tracks_on_pixels_without_depth_are_unusable_not_nan(door):
    depth = door.depth.copy()
    x, y = door.tracks[0, 0]
    depth[int(y), int(x)] = 0.0
    pts, usable = track_points_3d(door.tracks[0], depth, door.object_masks[0], door.K)
    assert not usable[0] and usable[1:].any() and np.all(np.isfinite(pts))


def test_tracks_starting_outside_the_image_are_unusable(door):
    t0 = door.tracks[0].copy()
    t0[0] = [-5.0, 10.0]
    _, usable = track_points_3d(t0, door.depth, door.object_masks[0], door.K)
    assert not usable[0]


def test_backprojection_rejects_an_empty_object_mask(door):
    with pytest.raises(InputError, match=r"no masked pixel with depth > 0 on the stride-3 grid \(mask has 0 pixels\)"):
        backproject_gaussians(door.frames[0], door.depth, np.zeros_like(door.object_masks[0]), door.K, 3)


def test_backprojection_rejects_mismatched_image_sizes(door):
    with pytest.raises(InputError, match=r"must share H x W"):
        backproject_gaussians(door.frames[0][:10], door.depth, door.object_masks[0], door.K, 3)


def test_pad_gaussians_rejects_more_gaussians_than_slots(door):
    g, _ = backproject_gaussians(door.frames[0], door.depth, door.object_masks[0], door.K, 3)
    with pytest.raises(InputError, match=rf"{len(g.means)} Gaussians do not fit in 10"):
        pad_gaussians(g, 10)


def test_padding_gaussians_are_transparent_and_finite(door):
    g, _ = backproject_gaussians(door.frames[0], door.depth, door.object_masks[0], door.K, 3)
    padded, valid = pad_gaussians(g, len(g.means) + 5)
    assert valid.sum() == len(g.means)
    assert np.all(1 / (1 + np.exp(-padded.opacity_logits[~valid])) < 1e-8)
    assert all(np.all(np.isfinite(np.asarray(x))) for x in (padded.means, padded.quats, padded.log_scales))


def test_pnp_with_fewer_than_six_visible_tracks_keeps_the_previous_pose(door):
    m = door.gt.track_part == 2
    vis = door.visibility[:, m].copy()
    vis[1:, 5:] = False  # five tracks left
    pts, _ = track_points_3d(door.tracks[0, m], door.depth, door.object_masks[0], door.K)
    poses = pnp_poses(pts, door.tracks[:, m], vis, door.K, 3.0)
    np.testing.assert_array_equal(poses, np.tile(np.eye(4), (door.num_frames, 1, 1)))


def test_prompt_mask_without_negative_prompts_keeps_the_object_near_the_prompts():
    obj = np.zeros((30, 30), bool)
    obj[5:25, 5:25] = True
    img = np.full((30, 30, 3), 128, np.uint8)
    pos = np.array([[10.5, 10.5], [12.5, 10.5], [10.5, 12.5], [12.5, 12.5]])  # spacing 2 px: reach 5 px
    m = prompt_mask(img, obj, pos, np.zeros((0, 2)), "grabcut")
    assert m[10, 10] and m[14, 14] and not m[22, 22] and not m[~obj].any()


def test_part_masks_with_no_tracks_of_the_part_are_empty(door):
    labels = np.zeros(door.tracks.shape[1], np.int32)  # every track static: part 1 has no prompt
    masks = part_masks(door.frames, door.object_masks, door.tracks, door.visibility, labels, 1, CFG)
    assert masks.shape == (door.num_frames, 1) + door.object_masks.shape[1:] and not masks.any()


def test_joint_fit_of_a_part_that_never_moves_is_finite_and_prismatic():
    fit = fit_joint(np.tile(np.eye(4), (6, 1, 1)), np.random.default_rng(0).normal(size=(20, 3)), "auto")
    assert fit.joint_type == "prismatic"
    assert np.all(np.isfinite(fit.axis)) and np.allclose(fit.values, 0) and fit.residual_m == 0.0


def test_revolute_fit_of_a_part_that_never_moves_is_finite():
    fit = fit_joint(np.tile(np.eye(4), (6, 1, 1)), np.zeros((3, 3)), "revolute")
    assert np.all(np.isfinite(fit.axis)) and np.all(np.isfinite(fit.pivot)) and np.allclose(fit.values, 0)


def test_report_lists_gt_parts_that_no_estimated_part_matches(door):
    T, H, W = door.gt.part_ids.shape
    gt2 = dataclasses.replace(door.gt, joint_types=("revolute", "revolute"), axes=np.repeat(door.gt.axes, 2, 0),
                              pivots=np.repeat(door.gt.pivots, 2, 0),
                              joint_values=np.repeat(door.gt.joint_values, 2, 1),
                              part_poses=np.repeat(door.gt.part_poses, 2, 1))
    est = np.zeros((T, 1, H, W), bool)  # an estimated part covering nothing
    joint = fit_joint(door.gt.part_poses[:, 0], np.zeros((3, 3)), "revolute")
    r = articulation_report(door.gt.part_poses[:, :1], [joint], est, gt2)
    assert r["parts"][0]["gt_part"] == -1 and r["missed_gt_parts"] == [0, 1]
    assert "revolute_rotation_error_deg" not in r


def test_load_stage_results_from_an_empty_folder_names_the_missing_stage(tmp_path):
    with pytest.raises(BundleError, match=r"segmentation.npz: missing; run the 'segment' stage first"):
        load_segmentation(tmp_path)
    with pytest.raises(BundleError, match=r"result.npz: missing; run the 'stage1' stage first"):
        load_stage1(tmp_path)


def test_corrupt_segmentation_file_is_a_bundle_error(tmp_path):
    (tmp_path / "segmentation.npz").write_bytes(b"not a zip")
    with pytest.raises(BundleError, match=r"segmentation.npz: unreadable"):
        load_segmentation(tmp_path)


def test_sam_masks_without_a_checkpoint_is_a_config_error(tmp_path, door):
    save_bundle(door, tmp_path / "bundle")
    cfg = {"scene": {"name": "x", "source": "bundle", "bundle": str(tmp_path / "bundle")},
           "segmentation": {"dynamic_mask": "sam"}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match=r"segmentation.dynamic_mask: 'sam' needs preprocess.sam_checkpoint"):
        pipeline.run(tmp_path / "c.yaml", stage="segment", out=tmp_path / "run")
    assert GroundTruth is not None
