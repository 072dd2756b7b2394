"""A batch run through the CLI (python run.py --config <batch yaml>): killed (SIGKILL) after its first Stage I
checkpoint and started again with the same command, it resumes from the orbax checkpoint and ends with the
results of an uninterrupted batch; a scene with a missing bundle is reported and skipped."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from arthoi_jax.io.bundle import save_bundle
from tests import test_batch as tb

ROOT = Path(__file__).resolve().parents[1]


def _config(tmp: Path) -> Path:
    scenes = [{"name": k, "overrides": [f"scene.bundle={tmp / k}"]} for k in tb.SCENES]
    scenes.append({"name": "broken", "overrides": [f"scene.bundle={tmp / 'no_such_bundle'}"]})
    cfg = {"scene": {"name": "suite", "source": "bundle", "bundle": str(tmp / "a")},
           "segmentation": {"gaussian_stride": tb.SEG.gaussian_stride, "ambiguity_px": tb.SEG.ambiguity_px},
           "stage1": {"iters_per_frame": tb.CFG.iters_per_frame, "steps_per_chunk": tb.CFG.steps_per_chunk,
                      "render_downsample": tb.CFG.render_downsample,
                      "early_stop_patience": tb.CFG.early_stop_patience},
           "batch": {"size_buckets": list(tb.BUCKETS), "checkpoint_every": tb.CFG.steps_per_chunk,
                     "scenes": scenes},
           "output": {"progress": False, "video": False, "plots": False}}
    path = tmp / "suite.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("batch")
    for k, b in tb.bundles().items():
        save_bundle(b, tmp / k)
    cmd = [sys.executable, "run.py", "--config", str(_config(tmp)), "--out", str(tmp / "run")]
    env = dict(os.environ, JAX_PLATFORMS="cpu", JAX_COMPILATION_CACHE_DIR=str(tmp / "jax_cache"))
    first = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    ckpts = tmp / "run" / "checkpoints"
    deadline = time.time() + 600
    while time.time() < deadline and first.poll() is None:
        if ckpts.is_dir() and any(p.name.isdigit() for d in ckpts.iterdir() for p in d.iterdir()):
            break
        time.sleep(0.01)
    was_running = first.poll() is None
    first.send_signal(signal.SIGKILL)
    first.wait()
    second = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    return tmp / "run", was_running, second


def test_killed_batch_run_restarts_from_its_checkpoint(killed_and_resumed):
    run, was_running, second = killed_and_resumed
    assert was_running, "the first run ended before its first checkpoint could be seen"
    assert second.returncode == 0, second.stderr[-3000:]
    report = json.loads((run / "batch_report.json").read_text())
    assert [b["resumed"] for b in report["buckets"]] == [True]
    assert report["buckets"][0]["scenes"] == list(tb.SCENES)
    assert "checkpoint: resumed from" in second.stderr


def test_resumed_run_ends_with_the_uninterrupted_results(killed_and_resumed):
    run, _, _ = killed_and_resumed
    uninterrupted = tb.run_batch(tb.problems(tb.bundles()))
    for k, ref in zip(tb.SCENES, uninterrupted):
        with np.load(run / "scenes" / k / "stage1" / "result.npz") as z:
            np.testing.assert_allclose(z["poses"], ref.poses, atol=1e-5, rtol=0)
            np.testing.assert_array_equal(z["iterations"], ref.iterations)
        assert (run / "scenes" / k / "evaluate" / "metrics.json").is_file()


def test_scene_with_a_missing_bundle_is_reported_and_the_others_finish(killed_and_resumed):
    run, _, second = killed_and_resumed
    report = json.loads((run / "batch_report.json").read_text())["scenes"]
    assert {k: v["status"] for k, v in report.items()} == {"a": "ok", "b": "ok", "c": "ok", "broken": "failed"}
    assert report["broken"]["stage"] == "segment" and report["broken"]["type"] == "BundleError"
    assert "no_such_bundle" in report["broken"]["message"]
    assert "broken: segment:" in second.stderr
    assert not (run / "scenes" / "broken" / "stage1").exists()
