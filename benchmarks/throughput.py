"""Throughput of Stage I over many scenes: B scenes in one vmapped (and sharded) program against the same scenes
run one by one (stage1.optimize), for B in {1, 2, 4, 8}.

  python benchmarks/throughput.py [--batch-sizes 1 2 4 8] [--width 96 --height 72 --frames 6 --iters 20]
                                  [--out benchmarks/results/throughput.json]

Scenes: synthetic doors and drawers (different seeds: different Gaussian/track/pair counts, one size bucket).
Early stopping is off, so every scene runs exactly `--iters` steps per frame in both modes. Reported per B:
compile time of the batched program, time per batched step, scenes per hour (vmapped and sequential, compile
excluded), their ratio, and the compiled program's memory (arguments + temporaries + outputs, from XLA's
memory_analysis) per scene. Device-agnostic: runs on whatever JAX sees (CPU, or every GPU; the scene axis is
sharded over the devices). The sequential side is stage1.optimize as a single-scene run uses it (host checks
and pose read-back per chunk and frame included), so the ratio also counts the batch's fewer host round trips.
Timings are wall clock in one process, so ratios are what to compare; on a shared
CPU the process CPU time (all threads) is reported too, as it is less disturbed by other processes.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from arthoi_jax import stage1
from arthoi_jax.batch import sharding, stage1_batch
from arthoi_jax.batch.padding import pad_scene, stack
from arthoi_jax.config import RenderConfig, SegmentationConfig, Stage1Config, SyntheticConfig
from arthoi_jax.io.outputs import write_json
from arthoi_jax.segmentation import segment
from arthoi_jax.synthetic.scene import generate_scene


def _scenes(n: int, args):
    seg_cfg = SegmentationConfig()
    cfg = Stage1Config(iters_per_frame=args.iters, steps_per_chunk=args.iters, early_stop_patience=10**6)
    render = RenderConfig(mode=args.render_mode)
    out = []
    for i in range(n):
        b = generate_scene(SyntheticConfig(object=("door", "drawer")[i % 2], width=args.width, height=args.height,
                                           num_frames=args.frames, seed=i // 2, num_tracks=300))
        seg = segment(b.frames, b.object_masks, b.depth, b.K, b.tracks, b.visibility, seg_cfg)
        p = stage1_batch.prepare(b.frames, b.object_masks, b.tracks, b.visibility, b.K, seg, cfg, render,
                                 seg_cfg.binding_radius_m)
        out.append((b, seg, p))
    return out, cfg, render


def _compile(problems, key, mesh) -> tuple[float, float | None]:
    """Compiles the batched step program for these scenes and warms the jit cache (steps and poses) with one
    call on the same shardings as optimize_batch -> (compile seconds, MiB per scene of arguments + temporaries +
    outputs)."""
    n = sharding.padded_scene_count(len(problems), mesh)
    scenes = [pad_scene(p.scene, key.num_gaussians, key.num_tracks, key.num_pairs) for p in problems]
    scene_b = stack(scenes + [scenes[0]] * (n - len(problems)))
    snap = stage1_batch._new_snapshot(n, problems[0].num_frames, key.num_parts)
    frames = stack([stage1_batch._frame(problems[min(s, len(problems) - 1)], 1, key.num_tracks, snap["poses"][s],
                                        snap["values"][s]) for s in range(n)])
    state = stage1_batch._fresh(key.stage1, key.num_parts, np.zeros(n, bool))
    args = [sharding.shard(x, mesh) for x in (state, scene_b, frames)]
    static = dict(cfg=key.stage1, render_cfg=key.render, num_steps=key.stage1.steps_per_chunk)
    t0 = time.perf_counter()
    compiled = stage1_batch.batched_steps.lower(*args, **static).compile()
    seconds = time.perf_counter() - t0
    jax.block_until_ready(stage1_batch.batched_steps(*args, **static))
    jax.block_until_ready(stage1_batch._batched_poses(args[0].params, args[1], args[2], cfg=key.stage1))
    m = compiled.memory_analysis()
    if m is None:
        return seconds, None
    return seconds, (m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes) / len(problems) / 2**20


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--width", type=int, default=96)
    ap.add_argument("--height", type=int, default=72)
    ap.add_argument("--frames", type=int, default=6)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--render-mode", choices=("tiled", "dense"), default="tiled")
    ap.add_argument("--out", default="benchmarks/results/throughput.json")
    args = ap.parse_args(argv)

    mesh = sharding.scene_mesh()
    all_scenes, cfg, render = _scenes(max(args.batch_sizes), args)
    buckets = tuple(max(getattr(stage1_batch.bucket_key(p), f) for _, _, p in all_scenes)
                    for f in ("num_gaussians", "num_tracks", "num_pairs"))
    key0 = stage1_batch.bucket_key(all_scenes[0][2])
    key = dataclasses.replace(key0, num_gaussians=buckets[0], num_tracks=buckets[1], num_pairs=buckets[2])
    steps_per_scene = (args.frames - 1) * args.iters

    # Sequential reference: stage1.optimize scene by scene (its single-scene program compiled beforehand).
    b, seg, _ = all_scenes[0]
    t0 = time.perf_counter()
    stage1.optimize(b.frames, b.object_masks, b.tracks, b.visibility, b.K, seg, cfg, render, 0.05, progress=False)
    seq_first = time.perf_counter() - t0
    seq_times, seq_cpu = [], []
    for b, seg, _ in all_scenes:
        t0, c0 = time.perf_counter(), time.process_time()
        stage1.optimize(b.frames, b.object_masks, b.tracks, b.visibility, b.K, seg, cfg, render, 0.05,
                        progress=False)
        seq_times.append(time.perf_counter() - t0)
        seq_cpu.append(time.process_time() - c0)

    rows = []
    for B in args.batch_sizes:
        problems = [p for _, _, p in all_scenes[:B]]
        compile_s, mem = _compile(problems, key, mesh)
        t0, c0 = time.perf_counter(), time.process_time()
        stage1_batch.optimize_batch(problems, key, mesh, progress=False)
        vmap_s, vmap_cpu = time.perf_counter() - t0, time.process_time() - c0
        seq_s, seq_c = float(sum(seq_times[:B])), float(sum(seq_cpu[:B]))
        rows.append({"B": B, "padded_B": sharding.padded_scene_count(B, mesh), "compile_s": compile_s,
                     "vmapped_s": vmap_s, "sequential_s": seq_s,
                     "ms_per_batched_step": 1e3 * vmap_s / steps_per_scene,
                     "ms_per_scene_step_sequential": 1e3 * seq_s / (B * steps_per_scene),
                     "scenes_per_hour_vmapped": 3600 * B / vmap_s, "scenes_per_hour_sequential": 3600 * B / seq_s,
                     "speedup_vmapped_vs_sequential": seq_s / vmap_s, "vmapped_cpu_s": vmap_cpu,
                     "sequential_cpu_s": seq_c, "cpu_time_ratio_sequential_over_vmapped": seq_c / vmap_cpu,
                     "memory_mib_per_scene": mem})

    print(f"Stage I throughput on {jax.device_count()} x {jax.devices()[0].platform} "
          f"({args.width}x{args.height}, {args.frames} frames, {args.iters} steps/frame, render {args.render_mode}; "
          f"bucket G{key.num_gaussians} M{key.num_tracks} E{key.num_pairs}; single-scene first run incl. compile "
          f"{seq_first:.1f} s)")
    head = ("B", "compile s", "ms/batched step", "scenes/h vmapped", "scenes/h sequential", "speedup (wall)",
            "speedup (process CPU time)", "MiB/scene")
    print(" | ".join(head))
    for r in rows:
        mem = f"{r['memory_mib_per_scene']:.1f}" if r["memory_mib_per_scene"] is not None else "n/a"
        print(f"{r['B']} | {r['compile_s']:.1f} | {r['ms_per_batched_step']:.1f} | "
              f"{r['scenes_per_hour_vmapped']:.0f} | "
              f"{r['scenes_per_hour_sequential']:.0f} | {r['speedup_vmapped_vs_sequential']:.2f}x | "
              f"{r['cpu_time_ratio_sequential_over_vmapped']:.2f}x | {mem}")
    write_json(Path(args.out), {"device": str(jax.devices()[0]), "device_count": jax.device_count(),
                                "args": vars(args), "single_scene_first_run_s": seq_first, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
