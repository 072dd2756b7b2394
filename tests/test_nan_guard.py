"""NaN and divergence guard (issue 11): a non-finite loss or gradient stops Stage I, Stage II, the batch driver
and the body fit with the stage, frame, step and quantity named; the error carries the state before the bad step,
the IO layer writes it to `<run>/<stage>.failed/last_good.npz` and run.py exits non-zero."""

import dataclasses

import numpy as np
import pytest
import yaml

import run as run_cli
from arthoi_jax import pipeline, stage1, stage2
from arthoi_jax.batch.runner import _Scene
from arthoi_jax.body import fit2d
from arthoi_jax.config import BodyConfig, Config, RenderConfig, SegmentationConfig, Stage1Config
from arthoi_jax.errors import OptimizationError
from arthoi_jax.io.body_model_file import load_body_model
from arthoi_jax.io.bundle import save_bundle
from arthoi_jax.io.outputs import save_failed_state
from arthoi_jax.io.stage1_outputs import load_segmentation
from arthoi_jax.segmentation import segment
from tests.stage1_scene import make_scene
from tests.stage2_scene import FAST, RENDER, problem

SEG = SegmentationConfig(gaussian_stride=3, ambiguity_px=0.25)
CFG = Stage1Config(iters_per_frame=4, steps_per_chunk=2, render_downsample=3)


def test_stage1_nan_pixel_fails_that_scene_at_its_frame_and_keeps_the_frames_before(tmp_path):
    """Two slots of the (batch) loop: the same door, the second with one NaN pixel in frame 2."""
    b = make_scene("door", 64, 48, 4, max_value=np.deg2rad(45.0))
    seg = segment(b.frames, b.object_masks, b.depth, b.K, b.tracks, b.visibility, SEG)
    good = stage1.prepare(b.frames, b.object_masks, b.tracks, b.visibility, b.K, seg, CFG, RenderConfig(), 0.05)
    images = good.images.copy()
    images[2, 5, 7, 1] = np.nan
    bad = dataclasses.replace(good, images=images)
    out = stage1.optimize_scenes([good, bad], stage1.stack_trees([good.scene, bad.scene]), progress=False)
    assert isinstance(out[0], stage1.Stage1Result) and isinstance(out[1], OptimizationError)
    assert str(out[1]).startswith("stage1: non-finite rgb and gradient at frame 2, step 0 (loss terms {'rgb': nan")
    last = out[1].last_good
    assert (last["frame"], last["step"]) == (2, 0) and last["poses"].shape == (2, 1, 4, 4)
    assert all(np.isfinite(v).all() for v in last.values())
    np.testing.assert_allclose(last["poses"], out[0].poses[:2], atol=1e-6)  # frames 0-1 as the clean run
    np.testing.assert_array_equal(last["params"], 0.0)  # frame 2 before its first step: the initial pose
    np.testing.assert_allclose(last["init_pose"], good.init[2], atol=1e-6)
    # The batch runner's failure hook writes the state into the scene's run folder.
    scene = _Scene("door", pipeline.RunContext(Config(), tmp_path, overwrite=False))
    scene.fail("stage1", out[1])
    with np.load(tmp_path / "stage1.failed" / "last_good.npz") as z:
        np.testing.assert_array_equal(z["poses"], last["poses"])
    assert scene.error["message"].endswith(f"the last good state is in {tmp_path}/stage1.failed/last_good.npz")


def test_run_py_exits_non_zero_and_writes_the_stage1_state_before_the_diverging_step(tmp_path, capsys):
    """lr 1e30 (free SE(3)): step 0 throws the pose 1e30 away, step 1's tracking loss overflows."""
    b = make_scene("door", 64, 48, 4, max_value=np.deg2rad(45.0))
    save_bundle(b, tmp_path / "bundle")
    cfg = {"scene": {"name": "nan", "source": "bundle", "bundle": str(tmp_path / "bundle")},
           "segmentation": {"gaussian_stride": 3, "ambiguity_px": 0.25},
           "stage1": {"lr": 1e30, "iters_per_frame": 4, "steps_per_chunk": 1, "render_downsample": 3},
           "output": {"progress": False, "video": False, "plots": False}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    run = tmp_path / "run"
    assert run_cli.main(["--config", str(tmp_path / "c.yaml"), "--out", str(run)]) == 2
    err = capsys.readouterr().err
    npz = run / "stage1.failed" / "last_good.npz"
    assert err.startswith("error: stage1: non-finite tracking and gradient at frame 1, step 1 (loss terms")
    assert err.rstrip().endswith(f"the last good state is in {npz}")
    assert not (run / "stage1").exists() and (run / "segment").is_dir()
    assert (run / "stage1.failed" / "error.txt").read_text().strip() in err
    with np.load(npz) as z:
        last = {k: z[k] for k in z.files}
    assert (int(last["frame"]), int(last["step"])) == (1, 1) and all(np.isfinite(v).all() for v in last.values())
    # The state after one step from the same problem (the program run.py compiled: no new compile).
    loaded = pipeline.config_lib.load_config(tmp_path / "c.yaml")
    p = stage1.prepare(b.frames, b.object_masks, b.tracks, b.visibility, b.K, load_segmentation(run / "segment"),
                       loaded.stage1, loaded.render, loaded.segmentation.binding_radius_m)
    T, P = p.num_frames, p.seg.num_parts
    frame = stage1.stack_trees([stage1.frame_inputs(p, 1, p.scene.track_points.shape[0],
                                                    np.tile(np.eye(4), (T, P, 1, 1)), np.zeros((T, P)))])
    state, _ = stage1.run_steps_batched(stage1.stack_trees([stage1.init_state(p.cfg, P)]),
                                        stage1.stack_trees([p.scene]), frame, cfg=p.cfg, render_cfg=p.render_cfg,
                                        num_steps=1)
    assert np.abs(last["params"]).max() > 1e29  # step 0 diverged, still finite
    np.testing.assert_array_equal(last["params"], np.asarray(state.params)[0])
    np.testing.assert_array_equal(last["init_pose"], frame.init_pose[0])
    np.testing.assert_array_equal(last["poses"], np.tile(np.eye(4), (1, P, 1, 1)))  # frame 0


def test_stage2_divergence_names_the_step_and_keeps_the_parameters_before_it():
    model = load_body_model(BodyConfig())
    cfg = dataclasses.replace(FAST, window_frames=0, use_render_loss=False, lr_pose=1e30, iters=4, steps_per_chunk=1)
    data, _ = problem(model, cfg)
    with pytest.raises(OptimizationError, match=r"^stage2: non-finite prior and .*kinematic.* and gradient at "
                                                r"step 1 \(terms \{'render': 0.0, 'prior': inf") as info:
        stage2.optimize(data, cfg, RENDER, progress=False)
    last = info.value.last_good
    state, _ = stage2.run_steps(stage2.init_state(stage2.start_params(data, cfg.align == "keypoints"), cfg), data, cfg=cfg,
                                render_cfg=RENDER, num_steps=1)  # the step before the bad one (same program)
    assert last["step"] == 1 and set(last) == {"step", "body_pose", "global_orient", "transl", "log_scale", "offset",
                                               "object_delta"}
    for name in set(last) - {"step"}:
        assert np.isfinite(last[name]).all(), name
        np.testing.assert_array_equal(last[name], np.asarray(getattr(state.params, name)), err_msg=name)
    assert np.abs(last["body_pose"]).max() > 1e29


def test_body_fit_divergence_names_the_step_and_quantity():
    model = load_body_model(BodyConfig())
    K = np.array([[500.0, 0, 256], [0, 500.0, 256], [0, 0, 1]])
    lm = np.tile(np.linspace([200.0, 100.0], [300.0, 450.0], 33), (2, 1, 1))
    with pytest.raises(OptimizationError, match=r"^body fit: non-finite loss and gradient at step \d+ "
                                                r"\(human.fit_lr 1e\+30") as info:
        fit2d.fit_body_to_landmarks(model, lm, np.full((2, 33), 0.9), K, (512, 512),
                                    fit2d.FitSettings(steps=50, lr=1e30))
    last = info.value.last_good
    assert last["step"] >= 1 and last["body_pose"].shape == (2, 21, 3)
    assert all(np.isfinite(last[k]).all() for k in ("betas", "global_orient", "body_pose", "transl"))


def test_an_error_without_a_state_writes_nothing(tmp_path):
    e = OptimizationError("stage9: non-finite loss at step 3")
    assert save_failed_state(tmp_path / "stage9", e) is e and not (tmp_path / "stage9.failed").exists()
