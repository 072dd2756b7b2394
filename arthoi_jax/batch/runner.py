"""A batch run: `python run.py --config configs/batch/synthetic_suite.yaml`.

Each entry of `batch.scenes` is the batch file's own config with the entry's `key=value` overrides (a synthetic
scene, a bundle path, an ablation...), run into `<out>/scenes/<name>/` with the single-scene stage folders.
Stages before Stage I (generate, preprocess, segment) and after it (stage2, evaluate, evaluate_hoi) run scene by
scene through arthoi_jax.pipeline's stage functions; Stage I runs per size bucket (padding.py) as one jitted,
vmapped program over the bucket's scenes (at most `batch.max_scenes` at a time), sharded over the devices.
Stage II is not batched yet: it runs scene by scene.

Resumable with the same command: the run folder records its config; started again with the same config it
keeps every finished stage folder and restarts Stage I of a bucket from its latest orbax checkpoint (saved every
`batch.checkpoint_every` steps and at the end of Stage I). A scene that fails (bad bundle, segmentation error,
non-finite loss) is reported in `batch_report.json` and the others go on.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import shutil
import time
import traceback
from pathlib import Path

import jax
import yaml

from arthoi_jax import config as config_lib
from arthoi_jax import pipeline
from arthoi_jax.batch import sharding, stage1_batch
from arthoi_jax.batch.checkpoint import BatchCheckpointer
from arthoi_jax.errors import ArthoiError, ConfigError, OutputExistsError
from arthoi_jax.io import batch_outputs, stage1_outputs
from arthoi_jax.io.outputs import atomic_dir, prepare_run_dir, write_atomic

log = logging.getLogger("arthoi_jax")
CONFIG_FILE = "batch_config.yaml"


@dataclasses.dataclass
class _Scene:
    name: str
    ctx: pipeline.RunContext
    error: dict | None = None  # {"stage", "type", "message"} once failed

    def fail(self, stage: str, e: BaseException) -> None:
        self.error = {"stage": stage, "type": type(e).__name__, "message": str(e)}
        if isinstance(e, ArthoiError):
            log.error("scene %s failed in %s: %s", self.name, stage, e)
        else:  # a bug, not a bad input: keep the traceback
            log.error("scene %s failed in %s:\n%s", self.name, stage, "".join(traceback.format_exception(e)))


def scene_configs(config_path, cfg: config_lib.Config, overrides=()) -> list[tuple[str, config_lib.Config]]:
    """(name, Config) of every batch entry: the batch file + CLI overrides + the entry's overrides."""
    names = [s.name for s in cfg.batch.scenes]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"batch.scenes: names must be unique (they name the output folders); repeated: {dup}")
    out = []
    for i, spec in enumerate(cfg.batch.scenes):
        try:
            c = config_lib.load_config(config_path, [*overrides, "batch.scenes=[]", *spec.overrides,
                                                     f"scene.name={spec.name}"])
        except ConfigError as e:
            raise ConfigError(f"batch.scenes[{i}] ({spec.name}): {e}") from None
        if c.scene.source == "bundle" and not c.scene.bundle:
            raise ConfigError(f"batch.scenes[{i}] ({spec.name}): scene.bundle is required when scene.source is "
                              "'bundle'")
        if c.scene.source == "video" and not c.scene.video:
            raise ConfigError(f"batch.scenes[{i}] ({spec.name}): scene.video is required when scene.source is 'video'")
        out.append((spec.name, c))
    return out


def _run_stage(scene: _Scene, name: str) -> None:
    fn, sources = pipeline.STAGES[name]
    if scene.error is not None or scene.ctx.config.scene.source not in sources:
        return
    if scene.ctx.stage_dir(name).exists():
        log.info("%s/%s: done before, kept", scene.name, name)
        return
    try:
        with atomic_dir(scene.ctx.stage_dir(name), overwrite=False) as tmp:
            fn(scene.ctx, tmp)
    except Exception as e:  # one scene's failure must not stop the others
        scene.fail(name, e)


def _group_id(key, names: list[str]) -> str:
    digest = hashlib.sha1(repr((key, names)).encode()).hexdigest()[:10]
    return f"{key.label()}_{digest}"


def _stage1_buckets(scenes: list[_Scene], cfg: config_lib.Config, run_dir: Path, mesh) -> list[dict]:
    """Stage I of every scene that still needs it, bucket by bucket; returns the buckets' report entries."""
    todo = {}
    for s in scenes:
        if s.error is not None or s.ctx.stage_dir("stage1").exists():
            continue
        c = s.ctx.config
        try:
            b = s.ctx.bundle()
            seg = stage1_outputs.load_segmentation(s.ctx.stage_dir("segment"))
            p = stage1_batch.prepare(b.frames, b.object_masks, b.tracks, b.visibility, b.K, seg, c.stage1, c.render,
                                     c.segmentation.binding_radius_m)
        except Exception as e:
            s.fail("stage1", e)
            continue
        todo.setdefault(stage1_batch.bucket_key(p, cfg.batch.size_buckets), []).append((s, b, p))
    report = []
    for key, members in todo.items():
        for i in range(0, len(members), cfg.batch.max_scenes):
            group = members[i: i + cfg.batch.max_scenes]
            report.append(_run_group(key, group, cfg, run_dir, mesh))
    return report


def _run_group(key, group, cfg: config_lib.Config, run_dir: Path, mesh) -> dict:
    names = [s.name for s, _, _ in group]
    gid = _group_id(key, names)
    ckpt = BatchCheckpointer(run_dir / "checkpoints" / gid, cfg.batch.checkpoint_every)
    saved = ckpt.restore()
    resume = stage1_batch.snapshot_from_arrays(saved, key) if saved is not None else None
    chunks = -(-key.stage1.iters_per_frame // key.stage1.steps_per_chunk)

    def step_id(snap) -> int:  # increasing over (frame, chunk)
        return int(snap["t"]) * (chunks + 1) + int(snap["chunk"])

    traces0, t0 = stage1_batch.TRACE_COUNT["steps"], time.perf_counter()
    log.info("stage1 bucket %s: %d scene(s) %s on %d device(s)", key.label(), len(group), names, mesh.devices.size)
    snapshot = {}

    def on_chunk(snap, steps_run):
        snapshot.update(snap)
        ckpt.maybe_save(step_id(snap), lambda: stage1_batch.snapshot_arrays(snap), steps_run)

    results = stage1_batch.optimize_batch([p for _, _, p in group], key, mesh, resume=resume, on_chunk=on_chunk,
                                          progress=cfg.output.progress)
    if snapshot:  # the stage boundary: Stage I of the bucket done
        ckpt.save(step_id(snapshot) + 1, stage1_batch.snapshot_arrays(snapshot))
    ckpt.close()
    seconds = time.perf_counter() - t0
    for (s, b, p), res in zip(group, results):
        if isinstance(res, Exception):
            s.fail("stage1", res)
            continue
        if jax.process_index() != 0:
            continue
        try:
            with atomic_dir(s.ctx.stage_dir("stage1"), overwrite=False) as tmp:
                batch_outputs.save_scene_stage1(tmp, s.ctx.config, b, p, res)
        except Exception as e:
            s.fail("stage1", e)
    return {"bucket": key.label(), "scenes": names, "padded_scenes": sharding.padded_scene_count(len(group), mesh),
            "devices": int(mesh.devices.size), "compiles": stage1_batch.TRACE_COUNT["steps"] - traces0,
            "seconds": round(seconds, 3), "resumed": resume is not None}


def run_batch(config_path, cfg: config_lib.Config, *, overrides=(), stage: str = "all", out=None,
              overwrite: bool = False) -> Path:
    """Runs every scene of `cfg.batch.scenes` (see module docstring); returns the batch folder."""
    if stage != "all":
        raise ConfigError(f"--stage {stage!r}: a batch run (batch.scenes) runs every stage; run one scene's stage "
                          "with its own config")
    logging.getLogger("absl").setLevel(logging.WARNING)  # orbax logs every save through absl at INFO
    if cfg.batch.distributed:
        sharding.initialize_distributed()
    entries = scene_configs(config_path, cfg, overrides)
    run_dir = Path(out) if out else Path("out") / cfg.scene.name
    text = yaml.safe_dump(config_lib.to_dict(cfg), sort_keys=False)
    recorded = run_dir / CONFIG_FILE
    same = recorded.is_file() and recorded.read_text() == text
    if recorded.is_file() and not same and not overwrite:
        raise OutputExistsError(f"{run_dir} holds a batch run of another config ({recorded}); pass --overwrite to "
                                "replace it or choose another --out")
    run_dir = prepare_run_dir(run_dir, resume=same, overwrite=overwrite)
    if overwrite:
        for sub in ("scenes", "checkpoints"):
            shutil.rmtree(run_dir / sub, ignore_errors=True)
    if jax.process_index() == 0:
        write_atomic(recorded, text.encode())
    mesh = sharding.scene_mesh(cfg.batch.devices)
    scenes = []
    for name, c in entries:
        scene_dir = run_dir / "scenes" / name
        scene_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(scene_dir / "config.yaml", yaml.safe_dump(config_lib.to_dict(c), sort_keys=False).encode())
        scenes.append(_Scene(name, pipeline.RunContext(c, scene_dir, overwrite=False)))
    order = list(pipeline.STAGES)
    before, after = order[: order.index("stage1")], order[order.index("stage1") + 1:]
    t0 = time.perf_counter()
    for s in scenes:
        for name in before:
            _run_stage(s, name)
    buckets = batch_outputs.previous_buckets(run_dir / "batch_report.json") + _stage1_buckets(scenes, cfg, run_dir,
                                                                                              mesh)
    for s in scenes:
        for name in after:
            _run_stage(s, name)
    failed = [s for s in scenes if s.error is not None]
    report = {"seconds": round(time.perf_counter() - t0, 3), "devices": int(mesh.devices.size),
              "platform": jax.devices()[0].platform, "processes": jax.process_count(), "buckets": buckets,
              "scenes": {s.name: {"status": "failed", **s.error} if s.error else
                         {"status": "ok", "metrics": batch_outputs.scene_summary(s.ctx.run_dir)} for s in scenes}}
    if jax.process_index() == 0:
        batch_outputs.write_report(run_dir / "batch_report.json", report)
    log.info("batch: %d of %d scene(s) finished; %d failed%s", len(scenes) - len(failed), len(scenes), len(failed),
             "".join(f"\n  {s.name}: {s.error['stage']}: {s.error['message']}" for s in failed))
    return run_dir
