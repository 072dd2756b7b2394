"""Exports carry their conventions (issue 11): Stage I's transforms, joints and result arrays, and the scene bundle,
record frame (world = camera 0, OpenCV, world-to-camera), units, fps and up axis; reloading them reproduces the
poses and the moved points to 1e-5 m. And the 'gt' preprocess stage says what it did instead of leaving an empty
folder."""

import json
import os

import numpy as np

from arthoi_jax import pipeline, stage1
from arthoi_jax.articulation import fit_joint
from arthoi_jax.config import Config, PreprocessConfig
from arthoi_jax.io.bundle import load_bundle, save_bundle
from arthoi_jax.io.stage1_outputs import load_stage1, load_transforms, save_stage1
from arthoi_jax.geometry.camera import backproject, pixel_centers
from tests.stage1_scene import make_scene


def _result(b):
    """A Stage1Result from the scene's exact part poses (frame 0 -> t) and the moving part's frame-0 points."""
    poses = b.gt.part_poses  # [T, 1, 4, 4]: the moving front
    on = b.gt.part_ids[0] == 2
    uv = np.asarray(pixel_centers(*on.shape))[on]
    points = np.asarray(backproject(uv, b.gt.depth[0][on], b.K), np.float64)
    T = len(poses)
    joints = (fit_joint(poses[:, 0], points),)
    res = stage1.Stage1Result(poses=poses, init_poses=poses, pnp_poses=poses, joints=joints,
                              iterations=np.full(T, 7), loss=np.linspace(1, 0, T),
                              terms=np.zeros((T, len(stage1.TERMS))))
    return res, points


def test_stage1_exports_record_conventions_and_reload_to_the_same_points(tmp_path):
    b = make_scene("door", 64, 48, 5, max_value=np.deg2rad(50.0))
    res, points = _result(b)
    save_stage1(tmp_path, res, fps=24.0)
    poses, conv = load_transforms(tmp_path)
    assert "world-to-camera" in conv["frame"] and "OpenCV axes (x right, y down, z forward)" in conv["frame"]
    assert conv["units"]["length"] == "metres" and conv["units"]["rotation"] == "radians" and conv["fps"] == 24.0
    assert conv["up_axis"] == [0.0, -1.0, 0.0] and conv["up_axis_source"].startswith("assumed")
    moved = lambda P: np.einsum("tij,nj->tni", P[:, 0, :3, :3], points) + P[:, 0, None, :3, 3]  # noqa: E731
    np.testing.assert_allclose(moved(poses), moved(res.poses), atol=1e-5, rtol=0)
    assert np.abs(moved(poses)[-1] - points).max() > 0.1  # the door did move: the check is not vacuous
    npz_poses, joints = load_stage1(tmp_path)
    np.testing.assert_allclose(npz_poses, res.poses, atol=1e-12)
    np.testing.assert_allclose(joints[0].poses(), res.joints[0].poses(), atol=1e-5)
    np.testing.assert_allclose(np.rad2deg(joints[0].values[-1]), 50.0, atol=0.1)  # radians on disk
    for name in ("joints.json", "result.json"):
        d = json.loads((tmp_path / name).read_text())
        assert d["frame"] == conv["frame"] and d["fps"] == 24.0 and d["num_frames"] == 5, name
    assert "radians" in json.loads((tmp_path / "joints.json").read_text())["joint"]
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "transforms.json").stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600


def test_a_known_up_axis_is_recorded_as_the_scenes(tmp_path):
    res, _ = _result(make_scene("drawer", 64, 48, 3))
    save_stage1(tmp_path, res, fps=30.0, up=np.array([0.0, 0.0, 1.0]))
    _, conv = load_transforms(tmp_path)
    assert conv["up_axis"] == [0.0, 0.0, 1.0] and conv["up_axis_source"] == "scene"


def test_bundle_meta_records_its_camera_conventions(tmp_path):
    b = make_scene("door", 32, 24, 3)
    save_bundle(b, tmp_path / "bundle")
    meta = json.loads((tmp_path / "bundle" / "meta.json").read_text())
    assert "world-to-camera" in meta["conventions"]["frame"] and meta["conventions"]["fps"] == b.fps
    np.testing.assert_array_equal(load_bundle(tmp_path / "bundle").frames, b.frames)


def test_preprocess_with_gt_tracks_writes_a_summary_not_an_empty_folder(tmp_path):
    ctx = pipeline.RunContext(Config(preprocess=PreprocessConfig(tracker="gt")), tmp_path, overwrite=False)
    (tmp_path / "preprocess").mkdir()
    pipeline._preprocess(ctx, tmp_path / "preprocess")
    summary = json.loads((tmp_path / "preprocess" / "summary.json").read_text())
    assert summary["tracker"] == "gt" and summary["bundle"] == str(tmp_path / "generate" / "bundle")
    assert "ground-truth tracks" in summary["note"]
