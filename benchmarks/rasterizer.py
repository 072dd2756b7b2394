"""Rasterizer speed and memory on the CPU: tiled JAX vs dense JAX vs the pure-PyTorch reference path.

Times forward (render) and forward+backward (grad of a scalar loss w.r.t. all Gaussian parameters and the
camera pose) after compiling (compile time reported separately), as the median of --repeats runs (dense: one
run), all in one process. Wall and CPU seconds (all threads, `time.process_time`) are both recorded: on a
shared, oversubscribed machine the CPU-time ratios are the stable ones. The PyTorch reference is gsplat
1.5.3's `_fully_fused_projection` + tests/torch_compositing_reference.py (one Gaussian per step, all pixels
vectorised), measured only at 2k Gaussians; "tvec" is the vectorised PyTorch path
(benchmarks/torch_rasterizer.py: the same gsplat projection, then per-16x16-tile [pixels x Gaussians] blocks under
torch.utils.checkpoint), measured at every size, after a parity check against the JAX dense render (500 Gaussians,
64x64, max abs error <= 1e-4, or the script exits). Peak memory of the backward is XLA's compiled buffer plan (`memory_analysis()`: arguments +
outputs + temporaries), which does not depend on machine load.

  .venv/bin/python benchmarks/rasterizer.py --out /tmp/rasterizer.json [--quick] [--cases 10000x256,100000x512]
      [--tvec-fraction 0.25]  (time that fraction of the tvec chunks and extrapolate; flagged in table and JSON)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from arthoi_jax.config import RenderConfig  # noqa: E402
from arthoi_jax.render.rasterize import render  # noqa: E402
from arthoi_jax.render.types import Camera, Gaussians  # noqa: E402

# (N Gaussians, image side, dense JAX measured?, torch reference measured?)
CASES = [
    (2_000, 128, True, True),
    (10_000, 256, True, False),
    (20_000, 256, True, False),
    (100_000, 512, False, False),
]
SKIP_DENSE = "dense: every pixel x every Gaussian = 2.6e10 pairs per pass, minutes per call on a CPU"
# Measured on a shared 2-core machine: 35 CPU s forward at 2k Gaussians, 128x128; it grows with N x pixels.
SKIP_TORCH = "torch reference: a Python loop over Gaussians, ~20x the 2k/128x128 case here (tens of minutes)"


def make_scene(n: int, side: int, seed: int = 0):
    """n Gaussians 2-6 m in front of a 60-degree camera, filling its view; 0.3-2 px standard deviations."""
    rng = np.random.default_rng(seed)
    z = rng.uniform(2.0, 6.0, n)
    half = np.tan(np.deg2rad(30.0))
    xy = rng.uniform(-half, half, (n, 2)) * z[:, None]
    f = 0.5 * side / half
    px_m = z / f  # metres per pixel at each depth
    g = Gaussians(
        means=jnp.asarray(np.c_[xy, z], jnp.float32),
        quats=jnp.asarray(rng.normal(size=(n, 4)), jnp.float32),
        log_scales=jnp.asarray(np.log(px_m[:, None] * rng.uniform(0.3, 2.0, (n, 3))), jnp.float32),
        opacity_logits=jnp.asarray(rng.normal(0.0, 1.0, n), jnp.float32),
        colors=jnp.asarray(rng.uniform(size=(n, 3)), jnp.float32),
    )
    K = np.array([[f, 0, side / 2], [0, f, side / 2], [0, 0, 1]], np.float32)
    return g, Camera(K=jnp.asarray(K), T_cam_world=jnp.eye(4), width=side, height=side)


def jax_fns(camera: Camera, cfg: RenderConfig):
    def loss(g, T):
        out = render(g, dataclasses.replace(camera, T_cam_world=T), cfg)
        return jnp.sum(out.rgb) + jnp.sum(out.alpha) + 0.1 * jnp.sum(out.depth)

    fwd = jax.jit(lambda g, T: render(g, dataclasses.replace(camera, T_cam_world=T), cfg))
    return fwd, jax.jit(jax.grad(loss, argnums=(0, 1)))


def timed(fn, *args, repeats: int):
    """(median wall s, median CPU s over all threads, compile s) of a jitted fn; compiled, not run, first."""
    t0 = time.perf_counter()
    compiled = fn.lower(*args).compile()
    compile_s = time.perf_counter() - t0
    wall, cpu = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        jax.block_until_ready(compiled(*args))
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu), compile_s


def torch_times(g: Gaussians, camera: Camera, repeats: int):
    import torch

    from tests.torch_compositing_reference import render_reference

    torch.set_num_threads(max(1, torch.get_num_threads()))
    p = {k: torch.tensor(np.asarray(v), requires_grad=True) for k, v in dataclasses.asdict(g).items()}
    T = torch.eye(4, requires_grad=True)
    K = torch.tensor(np.asarray(camera.K))

    def run(backward: bool):
        with torch.set_grad_enabled(backward):
            rgb, alpha, depth, _, _ = render_reference(
                p["means"], p["quats"], p["log_scales"], p["opacity_logits"], p["colors"], T, K,
                camera.width, camera.height, torch.zeros(3),
            )
            loss = rgb.sum() + alpha.sum() + 0.1 * depth.sum()
            if backward:
                loss.backward()

    out = {}
    for name, backward in (("fwd", False), ("fwd_bwd", True)):
        wall, cpu = [], []
        for _ in range(repeats):
            w0, c0 = time.perf_counter(), time.process_time()
            run(backward)
            wall.append(time.perf_counter() - w0)
            cpu.append(time.process_time() - c0)
        out[name] = (statistics.median(wall), statistics.median(cpu))
    return out


def tvec_args(g: Gaussians, camera: Camera, requires_grad: bool):
    import torch

    p = {k: torch.tensor(np.asarray(v), requires_grad=requires_grad) for k, v in dataclasses.asdict(g).items()}
    T = torch.eye(4, requires_grad=requires_grad)
    args = (p["means"], p["quats"], p["log_scales"], p["opacity_logits"], p["colors"], T,
            torch.tensor(np.asarray(camera.K)), camera.width, camera.height, torch.zeros(3))
    return args


def tvec_parity(n: int = 500, side: int = 64, tol: float = 1e-4) -> float:
    """Max abs error (rgb, alpha, depth) of the vectorised torch render vs the JAX dense render; exits if > tol."""
    import torch

    from benchmarks.torch_rasterizer import render_vectorised

    g, camera = make_scene(n, side, seed=1)
    ref = jax.jit(lambda g: render(g, camera, RenderConfig(mode="dense")))(g)
    with torch.no_grad():
        rgb, alpha, depth, _ = render_vectorised(*tvec_args(g, camera, False))
    err = max(float(np.abs(a.numpy() - np.asarray(b)).max())
              for a, b in ((rgb, ref.rgb), (alpha, ref.alpha), (depth, ref.depth)))
    ok = err <= tol
    print(f"tvec parity vs JAX dense ({n} Gaussians, {side}x{side}): max abs error {err:.2e} "
          f"({'OK' if ok else 'FAIL'}, tolerance {tol:.0e})", flush=True)
    if not ok:
        raise SystemExit(f"tvec parity check failed: max abs error {err:.3e} > {tol:.0e}")
    return err


def tvec_times(g: Gaussians, camera: Camera, repeats: int, fraction: float):
    """{fwd, fwd_bwd: (wall s, CPU s)}, info; times scaled by chunks / chunks_run when fraction < 1."""
    import torch

    from benchmarks.torch_rasterizer import render_vectorised

    out, info = {}, {}
    for name, backward in (("fwd", False), ("fwd_bwd", True)):
        wall, cpu = [], []
        for _ in range(repeats):
            args = tvec_args(g, camera, backward)
            w0, c0 = time.perf_counter(), time.process_time()
            with torch.set_grad_enabled(backward):
                rgb, alpha, depth, info = render_vectorised(*args, chunk_fraction=fraction)
                loss = rgb.sum() + alpha.sum() + 0.1 * depth.sum()
                if backward:
                    loss.backward()
            wall.append(time.perf_counter() - w0)
            cpu.append(time.process_time() - c0)
        scale = info["chunks"] / info["chunks_run"]
        out[name] = (statistics.median(wall) * scale, statistics.median(cpu) * scale)
    return out, info


def backward_memory(fn, *args) -> dict:
    mem = jax.jit(fn).lower(*args).compile().memory_analysis()
    fields = ("argument_size_in_bytes", "output_size_in_bytes", "temp_size_in_bytes", "generated_code_size_in_bytes")
    out = {k: int(getattr(mem, k)) for k in fields}
    out["total_mib"] = sum(out[k] for k in fields[:3]) / 2**20
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("rasterizer_benchmark.json"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="only the 2k and 10k cases, one repeat")
    parser.add_argument("--cases", default="", help="comma-separated NxSIDE subset of the cases, e.g. 10000x256")
    parser.add_argument("--tvec-fraction", type=float, default=1.0,
                        help="time only this fraction of the tvec pixel chunks (tiles) and extrapolate")
    parser.add_argument("--tile-capacity", type=int, default=RenderConfig().tile_capacity)
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats
    cases = CASES[:2] if args.quick else CASES
    if args.cases:
        wanted = {tuple(int(v) for v in c.split("x")) for c in args.cases.split(",")}
        cases = [c for c in cases if (c[0], c[1]) in wanted]
    import torch

    torch.set_num_threads(max(1, torch.get_num_threads()))
    parity_err = tvec_parity()

    results = []
    for n, side, do_dense, do_torch in cases:
        g, camera = make_scene(n, side)
        row = {"n": n, "width": side, "height": side, "skipped": []}
        for mode in ("tiled", "dense"):
            if mode == "dense" and not do_dense:
                row["skipped"].append(SKIP_DENSE)
                continue
            cfg = RenderConfig(mode=mode, tile_capacity=args.tile_capacity)
            fwd, grad = jax_fns(camera, cfg)
            reps = repeats if mode == "tiled" else 1  # dense: one run each, it takes seconds to minutes
            for name, fn in (("fwd", fwd), ("fwd_bwd", grad)):
                wall, cpu, comp = timed(fn, g, camera.T_cam_world, repeats=reps)
                row[f"{mode}_{name}_s"], row[f"{mode}_{name}_cpu_s"], row[f"{mode}_{name}_compile_s"] = wall, cpu, comp
            if mode == "tiled":
                row["tiled_overflow_pairs"] = int(fwd(g, camera.T_cam_world).overflow)
                row["tiled_bwd_memory"] = backward_memory(grad, g, camera.T_cam_world)
            print(f"  {n} Gaussians {side}x{side} {mode}: fwd {row[f'{mode}_fwd_s']:.3f} s "
                  f"({row[f'{mode}_fwd_cpu_s']:.3f} CPU s), fwd+bwd {row[f'{mode}_fwd_bwd_s']:.3f} s "
                  f"({row[f'{mode}_fwd_bwd_cpu_s']:.3f} CPU s)", flush=True)
        if do_torch:
            t = torch_times(g, camera, repeats=1)
            (row["torch_fwd_s"], row["torch_fwd_cpu_s"]), (row["torch_fwd_bwd_s"], row["torch_fwd_bwd_cpu_s"]) = (
                t["fwd"], t["fwd_bwd"])
            print(f"  {n} Gaussians {side}x{side} torch: fwd {t['fwd'][0]:.3f} s ({t['fwd'][1]:.3f} CPU s), "
                  f"fwd+bwd {t['fwd_bwd'][0]:.3f} s ({t['fwd_bwd'][1]:.3f} CPU s)", flush=True)
        else:
            row["skipped"].append(SKIP_TORCH)
        t, info = tvec_times(g, camera, repeats, args.tvec_fraction)
        (row["tvec_fwd_s"], row["tvec_fwd_cpu_s"]), (row["tvec_fwd_bwd_s"], row["tvec_fwd_bwd_cpu_s"]) = (
            t["fwd"], t["fwd_bwd"])
        row["tvec_pairs"], row["tvec_chunks"], row["tvec_chunks_run"] = info["pairs"], info["chunks"], info["chunks_run"]
        row["tvec_extrapolated"] = info["chunks_run"] < info["chunks"]
        extra = (f" EXTRAPOLATED from {info['chunks_run']}/{info['chunks']} chunks" if row["tvec_extrapolated"] else "")
        print(f"  {n} Gaussians {side}x{side} tvec: fwd {t['fwd'][0]:.3f} s ({t['fwd'][1]:.3f} CPU s), "
              f"fwd+bwd {t['fwd_bwd'][0]:.3f} s ({t['fwd_bwd'][1]:.3f} CPU s){extra}", flush=True)
        for other in ("dense", "torch", "tvec"):
            for kind in ("fwd", "fwd_bwd"):
                for unit in ("s", "cpu_s"):
                    if f"{other}_{kind}_{unit}" in row:
                        row[f"{other}_over_tiled_{kind}_{unit}"] = row[f"{other}_{kind}_{unit}"] / row[f"tiled_{kind}_{unit}"]
        results.append(row)
        print_row(row)

    report = {
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "machine": platform.platform(),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "tile_capacity": args.tile_capacity,
        "repeats": repeats,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "tvec_parity_max_abs_err": parity_err,
        "tvec_fraction": args.tvec_fraction,
        "results": results,
    }
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")


def print_row(row: dict) -> None:
    """One table line: wall seconds, and the fwd+bwd ratios over tiled in wall (CPU) time."""

    def f(key):
        return f"{row[key]:9.3f}" if key in row else "        -"

    def ratio(other):
        wall, cpu = row.get(f"{other}_over_tiled_fwd_bwd_s"), row.get(f"{other}_over_tiled_fwd_bwd_cpu_s")
        return f"{wall:6.1f} ({cpu:5.1f})" if wall is not None else "      -       "

    if not getattr(print_row, "header", False):
        print(f"{'N':>7} {'size':>7} | {'tiled fwd':>9} {'tiled f+b':>9} | {'dense fwd':>9} {'dense f+b':>9} | "
              f"{'torch fwd':>9} {'torch f+b':>9} | {'tvec fwd':>9} {'tvec f+b':>9} | "
              f"f+b dense/tiled  torch/tiled   tvec/tiled  | overflow  bwd MiB")
        print_row.header = True
    mem = row.get("tiled_bwd_memory", {}).get("total_mib", float("nan"))
    print(f"{row['n']:>7} {row['width']:>3}x{row['height']:<3} | {f('tiled_fwd_s')} {f('tiled_fwd_bwd_s')} | "
          f"{f('dense_fwd_s')} {f('dense_fwd_bwd_s')} | {f('torch_fwd_s')} {f('torch_fwd_bwd_s')} | "
          f"{f('tvec_fwd_s')} {f('tvec_fwd_bwd_s')} | {ratio('dense')} {ratio('torch')} {ratio('tvec')} | {row.get('tiled_overflow_pairs', 0):>8} {mem:8.1f}")
    if row.get("tvec_fwd_s") is not None:
        ratio_fwd = row["tvec_over_tiled_fwd_s"], row["tvec_over_tiled_fwd_cpu_s"]
        note = (f"; tvec EXTRAPOLATED from {row['tvec_chunks_run']}/{row['tvec_chunks']} tile chunks"
                if row.get("tvec_extrapolated") else "")
        print(f"        fwd tvec/tiled {ratio_fwd[0]:.1f} ({ratio_fwd[1]:.1f} CPU){note}")
    for reason in row["skipped"]:
        print(f"        skipped: {reason}")


if __name__ == "__main__":
    main()
