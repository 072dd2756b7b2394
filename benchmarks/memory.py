"""Peak memory of Stage I and Stage II against sequence length (issue 11: long inputs).

  python benchmarks/memory.py [--frames 40 150 300] [--iters 2] [--out benchmarks/results/memory.json]

Scene: the synthetic door with a person opening it (configs/synthetic/door_hoi.yaml, 256 x 192) generated and
segmented once per length by run.py into a work folder (`--work`, kept for reruns). Then each (stage, length)
runs in a fresh Python process, so its RSS high-water mark (VmHWM) is that stage's alone:
  * inputs: VmHWM after loading the bundle and segmentation and preparing the stage's arrays;
  * peak: VmHWM at the end (inputs + the compiled step program's buffers + the host loop);
  * XLA: the compiled step program's memory_analysis (arguments, temporaries, outputs) of one chunk.
Stage I runs stage1.optimize over every frame with `--iters` Adam steps per frame (memory does not depend on
the iteration count: every step reuses the same buffers). Stage II runs one chunk of `--iters` steps of the
program stage2.optimize runs, in the default configuration (each step sees a window of window_frames = 8
consecutive frames and renders render_frames = 2 of them) and with window_frames = 0 (every frame in every
term, render_frames 2), where memory grows with the length; a configuration whose compiled temporaries exceed
`--max-temp-gib` is analysed but not run.

Budget (this machine: 24 GiB shared by several processes): a 300-frame sequence at 256 x 192 must stay under
4 GiB peak RSS per stage in the default configuration. Prints a table, writes JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BUDGET_GIB = 4.0
CONFIG = ROOT / "configs" / "synthetic" / "door_hoi.yaml"


def _vm(field: str) -> float:
    """VmHWM / VmRSS of this process in MiB (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def _xla(compiled) -> dict:
    ma = compiled.memory_analysis()
    if ma is None:
        return {}
    mib = lambda x: round(x / 2**20, 1)  # noqa: E731
    return {"xla_argument_mib": mib(ma.argument_size_in_bytes), "xla_temp_mib": mib(ma.temp_size_in_bytes),
            "xla_output_mib": mib(ma.output_size_in_bytes)}


def _child(stage: str, run_dir: Path, iters: int, window: int | None, max_temp_gib: float) -> dict:
    """One stage on the prepared run folder, in this (fresh) process -> its numbers."""
    import jax
    import numpy as np

    from arthoi_jax import config as config_lib
    from arthoi_jax import pipeline, stage1, stage2, stage2_init
    from arthoi_jax.io import stage1_outputs

    t0 = time.perf_counter()
    cfg = config_lib.load_config(run_dir / "config.yaml")
    ctx = pipeline.RunContext(cfg, run_dir, overwrite=False)
    b = ctx.bundle()
    seg = stage1_outputs.load_segmentation(ctx.stage_dir("segment"))
    out = {"frames": b.num_frames, "height": b.image_size[0], "width": b.image_size[1]}
    if stage == "stage1":
        c = dataclasses.replace(cfg.stage1, iters_per_frame=iters, steps_per_chunk=iters)
        p = stage1.prepare(b.frames, b.object_masks, b.tracks, b.visibility, b.K, seg, c, cfg.render,
                           cfg.segmentation.binding_radius_m)
        out["inputs_mib"] = _vm("VmHWM")
        stage1.optimize(b.frames, b.object_masks, b.tracks, b.visibility, b.K, seg, c, cfg.render,
                        cfg.segmentation.binding_radius_m, progress=False)
        T, P = p.num_frames, p.seg.num_parts
        frame = stage1.stack_trees([stage1.frame_inputs(p, 1, p.scene.track_points.shape[0],
                                                        np.tile(np.eye(4), (T, P, 1, 1)), np.zeros((T, P)))])
        compiled = stage1.run_steps_batched.lower(
            stage1.stack_trees([stage1.init_state(c, P)]), stage1.stack_trees([p.scene]), frame, cfg=c,
            render_cfg=cfg.render, num_steps=iters).compile()
        out.update(_xla(compiled), ran=True)
    else:
        from arthoi_jax.io.body_model_file import load_body_model

        c = dataclasses.replace(cfg.stage2, iters=iters, steps_per_chunk=iters,
                                **({} if window is None else {"window_frames": window}))
        out["window_frames"], out["render_frames"] = c.window_frames, c.render_frames
        data = stage2_init.prepare(b, seg, b.gt.part_poses, load_body_model(cfg.body), c, cfg.stage1, cfg.render,
                                   cfg.segmentation.binding_radius_m)
        out["inputs_mib"] = _vm("VmHWM")
        state = stage2.init_state(stage2.initial_params(data.init, b.gt.part_poses.shape[1]), c)
        compiled = stage2.run_steps.lower(state, data, cfg=c, render_cfg=cfg.render, num_steps=iters).compile()
        out.update(_xla(compiled))
        out["ran"] = out.get("xla_temp_mib", 0.0) <= max_temp_gib * 1024
        if out["ran"]:
            state, losses = compiled(state, data)
            jax.block_until_ready(losses)
            out["finite"] = bool(np.isfinite(np.asarray(losses)).all())
    out["peak_mib"] = _vm("VmHWM")
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def _prepare(work: Path, frames: int) -> Path:
    """generate + segment of the door_hoi scene with `frames` frames (kept across reruns)."""
    run_dir = work / f"door_hoi_{frames}"
    if (run_dir / "segment").is_dir():
        return run_dir
    for stage in ("generate", "segment"):
        cmd = [sys.executable, str(ROOT / "run.py"), "--config", str(CONFIG), "--out", str(run_dir), "--stage", stage,
               "--set", f"synthetic.num_frames={frames}", "--set", "output.progress=false"]
        subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
    return run_dir


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, nargs="+", default=[40, 150, 300])
    ap.add_argument("--iters", type=int, default=2)
    ap.add_argument("--max-temp-gib", type=float, default=6.0)
    ap.add_argument("--work", type=Path, default=ROOT / "out" / "memory_bench")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "memory.json")
    ap.add_argument("--child", choices=["stage1", "stage2"], help=argparse.SUPPRESS)
    ap.add_argument("--run", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--window", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.run, args.iters, args.window, args.max_temp_gib)))
        return

    from arthoi_jax.io.outputs import write_json

    rows = []
    runs = [("stage1", None), ("stage2", None), ("stage2", 0)]
    for n in args.frames:
        t0 = time.perf_counter()
        run_dir = _prepare(args.work, n)
        print(f"prepared {n} frames in {time.perf_counter() - t0:.0f} s", flush=True)
        for stage, window in runs:
            cmd = [sys.executable, __file__, "--child", stage, "--run", str(run_dir), "--iters", str(args.iters),
                   "--max-temp-gib", str(args.max_temp_gib)] + ([] if window is None else ["--window", str(window)])
            proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=dict(os.environ))
            if proc.returncode != 0:
                raise SystemExit(f"{stage} at {n} frames failed:\n{proc.stderr[-3000:]}")
            row = {"stage": stage if window is None else f"{stage} (window_frames={window})",
                   **json.loads(proc.stdout.strip().splitlines()[-1])}
            rows.append(row)
            print(json.dumps(row), flush=True)
    import jax

    print(f"\n{'stage':<28} {'frames':>6} {'inputs MiB':>11} {'peak MiB':>9} {'XLA args':>9} {'XLA temp':>9} "
          f"{'ran':>4} {'s':>6}")
    for r in rows:
        print(f"{r['stage']:<28} {r['frames']:>6} {r['inputs_mib']:>11.0f} {r['peak_mib']:>9.0f} "
              f"{r.get('xla_argument_mib', float('nan')):>9.1f} {r.get('xla_temp_mib', float('nan')):>9.1f} "
              f"{'yes' if r['ran'] else 'no':>4} {r['seconds']:>6.1f}")
    default = [r for r in rows if r["stage"] in ("stage1", "stage2") and r["ran"]]
    within = all(r["peak_mib"] <= BUDGET_GIB * 1024 for r in default)
    print(f"budget {BUDGET_GIB} GiB peak RSS per stage (default configuration): {'met' if within else 'EXCEEDED'}")
    write_json(args.out, {"budget_gib": BUDGET_GIB, "within_budget": within, "iters": args.iters,
                          "platform": jax.devices()[0].platform, "config": str(CONFIG.relative_to(ROOT)),
                          "rows": rows})


if __name__ == "__main__":
    main()
