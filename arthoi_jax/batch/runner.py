"""A batch run: `python run.py --config configs/batch/synthetic_suite.yaml` (configs/batch/hoi_suite.yaml: with
people, Stage II too).

Each entry of `batch.scenes` is the batch file's own config with the entry's `key=value` overrides (a synthetic
scene, a bundle path, an ablation...), run into `<out>/scenes/<name>/` with the single-scene stage folders.
Stage I and Stage II run per size bucket (stage1_batch, stage2_batch) as one jitted, vmapped program over the
bucket's scenes (at most `batch.max_scenes` at a time), sharded over the devices; the other stages (generate,
preprocess, segment, evaluate, evaluate_hoi) run scene by scene through arthoi_jax.pipeline's stage functions.

Resumable with the same command: the run folder records its config; started again with the same config it
keeps every finished stage folder and restarts Stage I or Stage II of a bucket from its latest orbax checkpoint
(saved every `batch.checkpoint_every` steps and at the end of the stage). A scene that fails (bad bundle,
segmentation error, non-finite loss) is reported in `batch_report.json` and the others go on.
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
from arthoi_jax import pipeline, stage1
from arthoi_jax.batch import checkpoint, sharding, stage1_batch, stage2_batch
from arthoi_jax.batch.checkpoint import BatchCheckpointer
from arthoi_jax.errors import ArthoiError, ConfigError, OptimizationError, OutputExistsError
from arthoi_jax.io import batch_outputs, stage1_outputs
from arthoi_jax.io.outputs import atomic_dir, prepare_run_dir, save_failed_state, write_atomic

log = logging.getLogger("arthoi_jax")
CONFIG_FILE = "batch_config.yaml"


@dataclasses.dataclass
class _Scene:
    name: str
    ctx: pipeline.RunContext
    error: dict | None = None  # {"stage", "type", "message"} once failed

    def fail(self, stage: str, e: BaseException) -> None:
        if isinstance(e, OptimizationError) and jax.process_index() == 0:  # keep its last good state on disk
            e = save_failed_state(self.ctx.stage_dir(stage), e)
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
            p = stage1.prepare(b.frames, b.object_masks, b.tracks, b.visibility, b.K, seg, c.stage1, c.render,
                               c.segmentation.binding_radius_m, T_cam_world=b.T_cam_world)
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


def _checkpointed(directory: Path, every: int, from_arrays, optimize, step_id) -> tuple[list, bool]:
    """optimize(resume=..., on_chunk=...) with orbax checkpoints in `directory`: resumed from the latest one when
    there is one, saved every `every` steps and at the end (the stage boundary) -> (results, resumed)."""
    ckpt = BatchCheckpointer(directory, every)
    saved = ckpt.restore()
    resume = from_arrays(saved) if saved is not None else None
    last = {}

    def on_chunk(progress, steps_run):
        last.update(progress)
        ckpt.maybe_save(step_id(progress), lambda: checkpoint.progress_arrays(progress), steps_run)

    results = optimize(resume=resume, on_chunk=on_chunk)
    if last:
        ckpt.save(step_id(last) + 1, checkpoint.progress_arrays(last))
    ckpt.close()
    return results, resume is not None


def _save(scene: _Scene, stage: str, res, write) -> None:
    """A scene's result of a batched stage: its stage folder written atomically by write(tmp), or its failure."""
    if isinstance(res, Exception):
        scene.fail(stage, res)
        return
    if jax.process_index() != 0:
        return
    try:
        with atomic_dir(scene.ctx.stage_dir(stage), overwrite=False) as tmp:
            write(tmp)
    except Exception as e:
        scene.fail(stage, e)


def _run_group(key, group, cfg: config_lib.Config, run_dir: Path, mesh) -> dict:
    names = [s.name for s, _, _ in group]
    chunks = -(-key.stage1.iters_per_frame // key.stage1.steps_per_chunk)
    traces0, t0 = stage1_batch.TRACE_COUNT["steps"], time.perf_counter()
    log.info("stage1 bucket %s: %d scene(s) %s on %d device(s)", key.label(), len(group), names, mesh.devices.size)
    results, resumed = _checkpointed(
        run_dir / "checkpoints" / _group_id(key, names), cfg.batch.checkpoint_every,
        lambda arrays: stage1_batch.progress_from_arrays(arrays, key),
        lambda **kw: stage1_batch.optimize_batch([p for _, _, p in group], key, mesh, progress=cfg.output.progress,
                                                 **kw),
        lambda progress: int(progress["t"]) * (chunks + 1) + int(progress["chunk"]))  # increasing
    seconds = time.perf_counter() - t0
    for (s, b, p), res in zip(group, results):
        _save(s, "stage1", res, lambda tmp: batch_outputs.save_scene_stage1(tmp, s.ctx.config, b, p, res))
    return {"stage": "stage1", "bucket": key.label(), "scenes": names,
            "padded_scenes": sharding.padded_scene_count(len(group), mesh), "devices": int(mesh.devices.size),
            "compiles": stage1_batch.TRACE_COUNT["steps"] - traces0, "seconds": round(seconds, 3),
            "resumed": resumed}


def _stage2_buckets(scenes: list[_Scene], cfg: config_lib.Config, run_dir: Path, mesh) -> list[dict]:
    """Stage II of every scene that still needs it, bucket by bucket (scenes without a person run the
    single-scene stage, which has nothing to do); returns the buckets' report entries."""
    from arthoi_jax.io import stage2_outputs
    from arthoi_jax.io.body_model_file import load_body_model

    todo, models = {}, {}
    for s in scenes:
        c = s.ctx.config
        if (s.error is not None or c.scene.source not in pipeline.STAGES["stage2"][1]
                or s.ctx.stage_dir("stage2").exists()):
            continue
        try:
            b = s.ctx.bundle()
            if b.smplx_init is None:
                _run_stage(s, "stage2")
                continue
            if c.body not in models:
                models[c.body] = load_body_model(c.body)
            data = stage2_outputs.stage2_data(c, b, s.ctx.stage_dir("segment"), s.ctx.stage_dir("stage1"),
                                              models[c.body])
        except Exception as e:
            s.fail("stage2", e)
            continue
        key = stage2_batch.bucket_key(data, c.stage2, c.render, c.body, cfg.batch.size_buckets)
        todo.setdefault(key, []).append((s, b, data))
    report = []
    for key, members in todo.items():
        for i in range(0, len(members), cfg.batch.max_scenes):
            report.append(_run_group2(key, members[i: i + cfg.batch.max_scenes], models[key.body], cfg, run_dir,
                                      mesh))
    return report


def _run_group2(key, group, model, cfg: config_lib.Config, run_dir: Path, mesh) -> dict:
    from arthoi_jax.io import stage2_outputs

    names = [s.name for s, _, _ in group]
    datas = [d for _, _, d in group]
    traces0, t0 = stage2_batch.TRACE_COUNT["steps"], time.perf_counter()
    log.info("stage2 bucket %s: %d scene(s) %s on %d device(s)", key.label(), len(group), names, mesh.devices.size)
    results, resumed = _checkpointed(
        run_dir / "checkpoints" / _group_id(key, names), cfg.batch.checkpoint_every,
        lambda arrays: stage2_batch.progress_from_arrays(arrays, datas[0], key),
        lambda **kw: stage2_batch.optimize_batch(datas, key, model, mesh, progress=cfg.output.progress, **kw),
        lambda progress: int(progress["chunk"]))
    seconds = time.perf_counter() - t0
    for (s, b, d), res in zip(group, results):
        _save(s, "stage2", res, lambda tmp: stage2_outputs.save_stage2(s.ctx.config, b, s.ctx.stage_dir("segment"),
                                                                       model, d, res, tmp))
    return {"stage": "stage2", "bucket": key.label(), "scenes": names,
            "padded_scenes": sharding.padded_scene_count(len(group), mesh), "devices": int(mesh.devices.size),
            "compiles": stage2_batch.TRACE_COUNT["steps"] - traces0, "seconds": round(seconds, 3),
            "resumed": resumed}


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
    i1, i2 = order.index("stage1"), order.index("stage2")
    t0 = time.perf_counter()
    buckets = batch_outputs.previous_buckets(run_dir / "batch_report.json")
    for names, batched in ((order[:i1], _stage1_buckets), (order[i1 + 1: i2], _stage2_buckets),
                           (order[i2 + 1:], None)):
        for s in scenes:
            for name in names:
                _run_stage(s, name)
        if batched is not None:
            buckets += batched(scenes, cfg, run_dir, mesh)
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
