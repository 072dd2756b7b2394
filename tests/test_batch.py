"""Stage I of many scenes in one vmapped program: a padded batch equals each scene run alone, one compile per
bucket, four (fake CPU) devices equal one, a non-finite scene fails alone, buckets."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from arthoi_jax import stage1
from arthoi_jax.batch import sharding, stage1_batch
from arthoi_jax.batch.padding import bucket_size
from arthoi_jax.config import RenderConfig, SegmentationConfig, Stage1Config
from arthoi_jax.errors import OptimizationError
from arthoi_jax.segmentation import segment
from tests.stage1_scene import make_scene

ROOT = Path(__file__).resolve().parents[1]
SEG = SegmentationConfig(gaussian_stride=3, ambiguity_px=0.25)
CFG = Stage1Config(iters_per_frame=10, steps_per_chunk=5, render_downsample=3, early_stop_patience=5)
RENDER = RenderConfig()
BUCKETS = (512,)  # more padding than stage1.build_scene's (256): the batch pads for real
# Three doors of different frame, Gaussian, track and pair counts (64 x 48 images).
SCENES = {"a": dict(num_frames=6, max_value=np.deg2rad(45.0), yaw_deg=15.0),
          "b": dict(num_frames=5, max_value=np.deg2rad(50.0), yaw_deg=0.0),
          "c": dict(num_frames=4, max_value=np.deg2rad(45.0), yaw_deg=20.0)}


def bundles():
    return {k: make_scene("door", 64, 48, **v) for k, v in SCENES.items()}


def problems(bs):
    out = []
    for b in bs.values():
        seg = segment(b.frames, b.object_masks, b.depth, b.K, b.tracks, b.visibility, SEG)
        out.append(stage1.prepare(b.frames, b.object_masks, b.tracks, b.visibility, b.K, seg, CFG, RENDER,
                                        SEG.binding_radius_m))
    return out


def run_batch(probs, num_devices=0):
    key = stage1_batch.bucket_key(probs[0], BUCKETS)
    assert all(stage1_batch.bucket_key(p, BUCKETS) == key for p in probs)
    return stage1_batch.optimize_batch(probs, key, sharding.scene_mesh(num_devices), progress=False)


def poses_npz(results) -> dict:
    return {f"{i}": r.poses for i, r in enumerate(results)}


@pytest.fixture(scope="module")
def batch():
    bs = bundles()
    probs = problems(bs)
    traces = stage1_batch.TRACE_COUNT["steps"]
    results = run_batch(probs)
    return bs, probs, results, stage1_batch.TRACE_COUNT["steps"] - traces


def test_scenes_differ_in_every_padded_size(batch):
    _, probs, _, _ = batch
    assert len({p.num_frames for p in probs}) == 3
    assert len({len(p.seg.weights) for p in probs}) == 3 and len({len(p.seg.track_labels) for p in probs}) == 2
    key = stage1_batch.bucket_key(probs[0], BUCKETS)
    assert (key.num_gaussians, key.num_tracks, key.num_pairs) == (512, 512, 512)


def test_padded_batch_equals_each_scene_run_alone(batch):
    bs, probs, results, _ = batch
    for b, p, r in zip(bs.values(), probs, results):
        alone = stage1.optimize(b.frames, b.object_masks, b.tracks, b.visibility, b.K, p.seg, CFG, RENDER,
                                SEG.binding_radius_m, progress=False)
        np.testing.assert_allclose(r.poses, alone.poses, atol=1e-5, rtol=0)
        np.testing.assert_allclose(r.loss, alone.loss, atol=1e-5, rtol=1e-5)
        np.testing.assert_allclose(r.terms, alone.terms, atol=1e-5, rtol=1e-5)
        np.testing.assert_array_equal(r.iterations, alone.iterations)
        for j, ja in zip(r.joints, alone.joints):
            assert j.joint_type == ja.joint_type
            np.testing.assert_allclose(j.values, ja.values, atol=1e-5)
            np.testing.assert_allclose(j.axis, ja.axis, atol=1e-5)
        assert r.iterations[1:].min() >= CFG.steps_per_chunk  # it did optimize


def test_a_bucket_compiles_once(batch):
    _, _, _, compiles = batch
    assert compiles == 1


def test_four_devices_give_the_results_of_one(batch, tmp_path):
    _, _, results, _ = batch
    script = (f"import logging\nimport numpy as np\nfrom tests import test_batch as t\n"
              f"logging.basicConfig(level=logging.INFO)\n"
              f"import jax; assert jax.device_count() == 4, jax.devices()\n"
              f"np.savez({str(tmp_path / 'poses.npz')!r}, **t.poses_npz(t.run_batch(t.problems(t.bundles()))))\n")
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu",
               PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "3 scenes padded to 4 (a multiple of 4 devices)" in proc.stderr
    with np.load(tmp_path / "poses.npz") as z:
        for i, r in enumerate(results):
            np.testing.assert_allclose(z[str(i)], r.poses, atol=1e-5, rtol=0)


def test_non_finite_scene_fails_alone_and_others_match(batch):
    _, probs, results, _ = batch
    bad = probs[1].__class__(**{**probs[1].__dict__, "images": np.full_like(probs[1].images, np.nan)})
    out = run_batch([probs[0], bad, probs[2]])
    assert isinstance(out[1], OptimizationError)
    assert "stage1: non-finite rgb" in str(out[1]) and "at frame 1, step 0" in str(out[1])
    for i in (0, 2):
        np.testing.assert_allclose(out[i].poses, results[i].poses, atol=1e-5, rtol=0)


@pytest.mark.parametrize("n, buckets, expected", [(0, (), 256), (256, (), 256), (257, (), 512), (1500, (), 2048),
                                                  (300, (400, 1000), 400), (401, (400, 1000), 1000),
                                                  (1001, (400, 1000), 1024)])
def test_bucket_size_is_the_smallest_that_fits(n, buckets, expected):
    assert bucket_size(n, buckets) == expected


def test_batch_report_json_is_plain(tmp_path):
    from arthoi_jax.io.batch_outputs import write_report

    write_report(tmp_path / "r.json", {"buckets": [{"compiles": np.int64(1), "padded": np.arange(2)}]})
    assert json.loads((tmp_path / "r.json").read_text()) == {"buckets": [{"compiles": 1, "padded": [0, 1]}]}
