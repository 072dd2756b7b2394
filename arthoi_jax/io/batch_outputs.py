"""Files of a batch run: each scene's stage1 folder (as the single-scene 'stage1' stage writes it) and the batch
report. All writes are atomic."""

from __future__ import annotations

import json
from pathlib import Path

from arthoi_jax import stage1
from arthoi_jax.config import Config
from arthoi_jax.io import stage1_outputs
from arthoi_jax.io.bundle import SceneBundle
from arthoi_jax.io.outputs import write_json


def save_scene_stage1(out: Path, cfg: Config, bundle: SceneBundle, problem, result: stage1.Stage1Result) -> None:
    """transforms.json, joints.json, result.npz and (output.video) rerender.mp4 of one scene into `out`."""
    stage1_outputs.save_stage1(out, result, bundle.fps)
    if cfg.output.video:
        H, W = bundle.image_size
        frames = stage1.render_sequence(problem.scene, result.poses, cfg.render, H, W, problem.cameras)
        stage1_outputs.write_side_by_side(Path(out) / "rerender.mp4", bundle.frames, frames, bundle.fps)


def write_report(path: Path, report: dict) -> None:
    """batch_report.json: per scene its status (ok | failed, with the stage and error) and per bucket its shapes,
    scene count, devices, compiles and time."""
    write_json(path, report)


def scene_summary(scene_dir: Path) -> dict:
    """The top-level numbers of a finished scene's evaluate/metrics.json (nested entries left out), or {}."""
    path = Path(scene_dir) / "evaluate" / "metrics.json"
    if not path.is_file():
        return {}
    metrics = json.loads(path.read_text())
    out = {}
    for k, v in metrics.items():
        if isinstance(v, (int, float)):
            out[k] = v
        elif isinstance(v, dict) and all(isinstance(x, (int, float)) for x in v.values()):
            out[k] = v
    return out


def previous_buckets(path: Path) -> list[dict]:
    """The bucket entries of an earlier batch_report.json at `path` (a resumed run keeps them), or []."""
    path = Path(path)
    if not path.is_file():
        return []
    try:
        return list(json.loads(path.read_text()).get("buckets", []))
    except (json.JSONDecodeError, AttributeError):
        return []
