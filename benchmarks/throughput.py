"""Throughput of Stage I and Stage II over many scenes: B scenes in one vmapped (and sharded) program against the
same scenes run one by one, for B in {1, 2, 4, 8}.

  python benchmarks/throughput.py [--stages 1 2] [--batch-sizes 1 2 4 8] [--width 96 --height 72 --frames 6
                                  --iters 20] [--stage2-frames 8 --stage2-iters 20] [--smoke]
                                  [--out benchmarks/results/throughput.json]

Stage I scenes: synthetic doors and drawers (different seeds: different Gaussian/track/pair counts, one size
bucket). Early stopping is off, so every scene runs exactly `--iters` steps per frame in both modes. The
sequential side is stage1.optimize as a single-scene run uses it (host checks and pose read-back per chunk and
frame included), so the ratio also counts the batch's fewer host round trips.
Stage II scenes: synthetic doors and drawers with a person (hoi), the ground-truth part poses standing in for
Stage I's (Stage II's cost does not depend on them), one bucket (stage2_batch: frames, Gaussians, tracks padded).
The sequential side is stage2.optimize on each scene padded to the same bucket (one compile for all of them);
both sides run once untimed first (compiles and host-side first calls), so the ratio compares steady runs. Both
go through stage2.optimize_scenes: at B = 1 on one device its step program is the unbatched one (see
stage2.run_steps_batched), so the B = 1 ratio is the batch driver's overhead alone.
Reported per stage and B: compiles and compile time of the batched program, time per batched step, scenes per hour
(vmapped and sequential, compile excluded), their ratio, and the compiled program's memory (arguments + temporaries
+ outputs, from XLA's memory_analysis) per scene. Device-agnostic: runs on whatever JAX sees (CPU, or every GPU;
the scene axis is sharded over the devices). Timings are wall clock in one process, so ratios are what to compare;
on a shared CPU the process CPU time (all threads) is reported too, as it is less disturbed by other processes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import jax

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from arthoi_jax import stage1, stage2, stage2_init
from arthoi_jax.batch import sharding, stage1_batch, stage2_batch
from arthoi_jax.batch.padding import pad_scene
from arthoi_jax.config import (BodyConfig, HmrSimConfig, RenderConfig, SegmentationConfig, Stage1Config, Stage2Config,
                               SyntheticConfig)
from arthoi_jax.io.body_model_file import load_body_model
from arthoi_jax.io.outputs import write_json
from arthoi_jax.segmentation import segment
from arthoi_jax.synthetic.scene import generate_scene


def _seg_cfg(width: int) -> SegmentationConfig:
    """The paper's 5 px / 2 px flow thresholds are for 256x192 images: scaled to the image width."""
    f = width / 256
    return SegmentationConfig(dynamic_px=5.0 * f, static_px=2.0 * f, quasi_static_min_px=min(1.0, 2.0 * f))


def _scenes(n: int, args):
    seg_cfg = _seg_cfg(args.width) if args.smoke else SegmentationConfig()
    cfg = Stage1Config(iters_per_frame=args.iters, steps_per_chunk=args.iters, early_stop_patience=10**6)
    render = RenderConfig(mode=args.render_mode)
    out = []
    for i in range(n):
        b = generate_scene(SyntheticConfig(object=("door", "drawer")[i % 2], width=args.width, height=args.height,
                                           num_frames=args.frames, seed=i // 2, num_tracks=300))
        seg = segment(b.frames, b.object_masks, b.depth, b.K, b.tracks, b.visibility, seg_cfg)
        p = stage1.prepare(b.frames, b.object_masks, b.tracks, b.visibility, b.K, seg, cfg, render,
                           seg_cfg.binding_radius_m)
        out.append((b, seg, p))
    return out, cfg, render


def _compile(problems, key, mesh) -> tuple[float, float | None]:
    """Compiles the batched step program for these scenes and warms the jit cache (steps and poses) with one
    call on the same shardings as optimize_batch -> (compile seconds, MiB per scene of arguments + temporaries +
    outputs)."""
    n = sharding.padded_scene_count(len(problems), mesh)
    scenes = [pad_scene(p.scene, key.num_gaussians, key.num_tracks, key.num_pairs) for p in problems]
    scene_b = stage1.stack_trees(scenes + [scenes[0]] * (n - len(problems)))
    snap = stage1.new_progress(n, problems[0].num_frames, key.num_parts)
    frames = stage1.stack_trees([stage1.frame_inputs(problems[min(s, len(problems) - 1)], 1, key.num_tracks,
                                                     snap["poses"][s], snap["values"][s]) for s in range(n)])
    state = stage1.stack_trees([stage1.init_state(key.stage1, key.num_parts)] * n)
    args = [sharding.shard(x, mesh) for x in (state, scene_b, frames)]
    static = dict(cfg=key.stage1, render_cfg=key.render, num_steps=key.stage1.steps_per_chunk)
    t0 = time.perf_counter()
    compiled = stage1.run_steps_batched.lower(*args, **static).compile()
    seconds = time.perf_counter() - t0
    jax.block_until_ready(stage1.run_steps_batched(*args, **static))
    jax.block_until_ready(stage1.part_poses_batched(args[0].params, args[1], args[2], cfg=key.stage1))
    return seconds, _mib_per_scene(compiled, len(problems))


def _mib_per_scene(compiled, num_scenes: int) -> float | None:
    m = compiled.memory_analysis()
    if m is None:
        return None
    return (m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes) / num_scenes / 2**20


def _row(B: int, mesh, compile_s, mem, vmap_s, vmap_cpu, seq_s, seq_c, steps_per_scene: int) -> dict:
    return {"B": B, "padded_B": sharding.padded_scene_count(B, mesh), "compile_s": compile_s,
            "vmapped_s": vmap_s, "sequential_s": seq_s, "ms_per_batched_step": 1e3 * vmap_s / steps_per_scene,
            "ms_per_scene_step_sequential": 1e3 * seq_s / (B * steps_per_scene),
            "scenes_per_hour_vmapped": 3600 * B / vmap_s, "scenes_per_hour_sequential": 3600 * B / seq_s,
            "speedup_vmapped_vs_sequential": seq_s / vmap_s, "vmapped_cpu_s": vmap_cpu, "sequential_cpu_s": seq_c,
            "cpu_time_ratio_sequential_over_vmapped": seq_c / vmap_cpu, "memory_mib_per_scene": mem}


def _timed(fn) -> tuple[float, float]:
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


def stage1_rows(args, mesh) -> tuple[list[dict], dict]:
    all_scenes, cfg, render = _scenes(max(args.batch_sizes), args)
    buckets = tuple(max(getattr(stage1_batch.bucket_key(p), f) for _, _, p in all_scenes)
                    for f in ("num_gaussians", "num_tracks", "num_pairs"))
    key0 = stage1_batch.bucket_key(all_scenes[0][2])
    key = dataclasses.replace(key0, num_gaussians=buckets[0], num_tracks=buckets[1], num_pairs=buckets[2])
    steps_per_scene = (args.frames - 1) * args.iters

    # Sequential reference: stage1.optimize scene by scene (its single-scene program compiled beforehand).
    b, seg, _ = all_scenes[0]
    seq_first, _ = _timed(lambda: stage1.optimize(b.frames, b.object_masks, b.tracks, b.visibility, b.K, seg, cfg,
                                                  render, 0.05, progress=False))
    seq = [_timed(lambda b=b, seg=seg: stage1.optimize(b.frames, b.object_masks, b.tracks, b.visibility, b.K, seg,
                                                       cfg, render, 0.05, progress=False))
           for b, seg, _ in all_scenes]
    rows = []
    for B in args.batch_sizes:
        problems = [p for _, _, p in all_scenes[:B]]
        traces = stage1_batch.TRACE_COUNT["steps"]
        compile_s, mem = _compile(problems, key, mesh)
        vmap_s, vmap_cpu = _timed(lambda: stage1_batch.optimize_batch(problems, key, mesh, progress=False))
        rows.append(_row(B, mesh, compile_s, mem, vmap_s, vmap_cpu, sum(t for t, _ in seq[:B]),
                         sum(c for _, c in seq[:B]), steps_per_scene)
                    | {"compiles": stage1_batch.TRACE_COUNT["steps"] - traces})
    info = {"size": f"{args.width}x{args.height}, {args.frames} frames, {args.iters} steps/frame, render "
                    f"{args.render_mode}", "bucket": f"G{key.num_gaussians} M{key.num_tracks} E{key.num_pairs}",
            "single_scene_first_run_s": seq_first}
    return rows, info


def _stage2_scenes(n: int, args, model):
    """n Stage2Data of synthetic HOI scenes (door, drawer alternating; seeds vary) with ground-truth part poses."""
    from arthoi_jax.synthetic.hoi import generate_hoi_scene

    seg_cfg = _seg_cfg(args.width)
    s1 = Stage1Config()
    cfg = Stage2Config(iters=args.stage2_iters, steps_per_chunk=args.stage2_iters, window_frames=args.window,
                       human_gaussians=args.human_gaussians, render_downsample=2,
                       surface_points=64)  # fewer than any scene's object Gaussians: one surface-point count
    render = RenderConfig(mode=args.render_mode)
    out = []
    for i in range(n):
        b, _ = generate_hoi_scene(SyntheticConfig(object=("door", "drawer")[i % 2], width=args.width,
                                                  height=args.height, num_frames=args.stage2_frames - i % 2,
                                                  seed=i // 2, num_tracks=300, human=True, max_angle_deg=25.0,
                                                  max_translation_m=0.25), model, HmrSimConfig())
        seg = segment(b.frames, b.object_masks, b.depth, b.K, b.tracks, b.visibility, seg_cfg)
        out.append(stage2_init.prepare(b, seg, b.gt.part_poses, model, cfg, s1, render, seg_cfg.binding_radius_m))
    return out, cfg, render


def stage2_rows(args, mesh) -> tuple[list[dict], dict]:
    model = load_body_model(BodyConfig())
    datas, cfg, render = _stage2_scenes(max(args.batch_sizes), args, model)
    keys = [stage2_batch.bucket_key(d, cfg, render, BodyConfig()) for d in datas]
    key = dataclasses.replace(keys[0], **{f: max(getattr(k, f) for k in keys)
                                          for f in ("num_frames", "num_gaussians", "num_tracks", "num_pairs")})
    # Sequential reference: stage2.optimize per scene, each padded to the bucket (one program for all of them).
    padded = [stage2_batch.pad_data(d, key).replace(model=model) for d in datas]
    seq_first, _ = _timed(lambda: stage2.optimize(padded[0], cfg, render, progress=False))
    seq = [_timed(lambda d=d: stage2.optimize(d, cfg, render, progress=False)) for d in padded]
    rows = []
    for B in args.batch_sizes:
        n = sharding.padded_scene_count(B, mesh)
        data_b = sharding.shard(stage1.stack_trees([stage2_batch.pad_data(d, key) for d in datas[:B]]
                                                   + [stage2_batch.pad_data(datas[0], key)] * (n - B)), mesh)
        state = sharding.shard(stage2_batch.initial_progress(datas[:B], key, n)["state"], mesh)
        static = dict(cfg=cfg, render_cfg=render, num_steps=cfg.steps_per_chunk)
        traces = stage2_batch.TRACE_COUNT["steps"]
        t0 = time.perf_counter()
        compiled = stage2_batch.run_steps_batched.lower(state, data_b, model, **static).compile()  # jit reuses it
        compile_s = time.perf_counter() - t0
        # An untimed run first, as the sequential side had: the host-side eager ops (start parameters, results) of
        # new shapes (the unpadded scenes') compile on their first call.
        run = lambda B=B: stage2_batch.optimize_batch(datas[:B], key, model, mesh, progress=False)  # noqa: E731
        run()
        vmap_s, vmap_cpu = _timed(run)
        rows.append(_row(B, mesh, compile_s, _mib_per_scene(compiled, B), vmap_s, vmap_cpu,
                         sum(t for t, _ in seq[:B]), sum(c for _, c in seq[:B]), cfg.iters)
                    | {"compiles": stage2_batch.TRACE_COUNT["steps"] - traces})
    info = {"size": f"{args.width}x{args.height}, {args.stage2_frames - 1}-{args.stage2_frames} frames, "
                    f"{cfg.iters} steps, window {cfg.window_frames}, {cfg.human_gaussians} human Gaussians",
            "bucket": key.label(), "single_scene_first_run_s": seq_first}
    return rows, info


def _print(stage: str, rows: list[dict], info: dict) -> None:
    print(f"{stage} throughput on {jax.device_count()} x {jax.devices()[0].platform} ({info['size']}; bucket "
          f"{info['bucket']}; single-scene first run incl. compile {info['single_scene_first_run_s']:.1f} s)")
    head = ("B", "compiles", "compile s", "ms/batched step", "scenes/h vmapped", "scenes/h sequential",
            "speedup (wall)", "speedup (process CPU time)", "MiB/scene")
    print(" | ".join(head))
    for r in rows:
        mem = f"{r['memory_mib_per_scene']:.1f}" if r["memory_mib_per_scene"] is not None else "n/a"
        print(f"{r['B']} | {r['compiles']} | {r['compile_s']:.1f} | {r['ms_per_batched_step']:.1f} | "
              f"{r['scenes_per_hour_vmapped']:.0f} | {r['scenes_per_hour_sequential']:.0f} | "
              f"{r['speedup_vmapped_vs_sequential']:.2f}x | {r['cpu_time_ratio_sequential_over_vmapped']:.2f}x | {mem}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stages", type=int, nargs="+", choices=(1, 2), default=[1, 2])
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--width", type=int, default=96)
    ap.add_argument("--height", type=int, default=72)
    ap.add_argument("--frames", type=int, default=6)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--stage2-frames", type=int, default=12, help="scenes alternate this and one frame fewer")
    ap.add_argument("--stage2-iters", type=int, default=20)
    ap.add_argument("--window", type=int, default=8, help="stage2.window_frames")
    ap.add_argument("--human-gaussians", type=int, default=300)
    ap.add_argument("--render-mode", choices=("tiled", "dense"), default="tiled")
    ap.add_argument("--smoke", action="store_true", help="toy sizes (96x72, B 1 2, few steps): checks it runs")
    ap.add_argument("--out", default="benchmarks/results/throughput.json")
    args = ap.parse_args(argv)
    if args.smoke:
        args.width, args.height, args.frames, args.iters, args.batch_sizes = 96, 72, 4, 2, [1, 2]
        args.stage2_frames, args.stage2_iters, args.window, args.human_gaussians = 5, 2, 4, 64

    mesh = sharding.scene_mesh()
    out = {"device": str(jax.devices()[0]), "device_count": jax.device_count()}
    if Path(args.out).is_file():  # a run of some stages keeps the other stages' earlier results
        out = {**json.loads(Path(args.out).read_text()), **out}
    out[f"args_stages_{''.join(map(str, args.stages))}"] = vars(args)
    for stage, fn in ((1, stage1_rows), (2, stage2_rows)):
        if stage in args.stages:
            rows, info = fn(args, mesh)
            _print(f"Stage {'I' * stage}", rows, info)
            out[f"stage{stage}"] = {**info, "rows": rows}
    write_json(Path(args.out), out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
