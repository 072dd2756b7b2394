"""Rasterizer speed and memory on the CPU: tiled JAX vs dense JAX vs the pure-PyTorch reference path.

Times forward (render) and forward+backward (grad of a scalar loss w.r.t. all Gaussian parameters and the
camera pose) after one warm-up call (compilation excluded, reported separately), as the median of --repeats
runs, all in one process so ratios are comparable on a shared machine. The PyTorch reference is gsplat
1.5.3's `_fully_fused_projection` + tests/torch_compositing_reference.py (one Gaussian per step, all pixels
vectorised). Peak memory of the backward is XLA's compiled buffer plan (`memory_analysis()`: arguments +
outputs + temporaries), which does not depend on machine load.

  .venv/bin/python benchmarks/rasterizer.py --out /tmp/rasterizer.json [--quick]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
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
CASES = [(10_000, 256, True, True), (20_000, 256, True, True), (100_000, 512, False, False)]
SKIP_DENSE = "dense: every pixel x every Gaussian = 2.6e10 pairs per pass, minutes per call on a CPU"
SKIP_TORCH = "torch reference: a Python loop over 100k Gaussians x 262k pixels, minutes per call"


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
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    first = time.perf_counter() - t0
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs), first


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
        runs = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            run(backward)
            runs.append(time.perf_counter() - t0)
        out[name] = statistics.median(runs)
    return out


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
    parser.add_argument("--quick", action="store_true", help="only the 10k/20k cases, one repeat")
    parser.add_argument("--tile-capacity", type=int, default=RenderConfig().tile_capacity)
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats
    cases = CASES[:2] if args.quick else CASES

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
            row[f"{mode}_fwd_s"], row[f"{mode}_fwd_first_call_s"] = timed(fwd, g, camera.T_cam_world, repeats=repeats)
            row[f"{mode}_fwd_bwd_s"], row[f"{mode}_fwd_bwd_first_call_s"] = timed(
                grad, g, camera.T_cam_world, repeats=repeats
            )
            if mode == "tiled":
                row["tiled_overflow_pairs"] = int(fwd(g, camera.T_cam_world).overflow)
                row["tiled_bwd_memory"] = backward_memory(grad, g, camera.T_cam_world)
        if do_torch:
            t = torch_times(g, camera, repeats=1)
            row["torch_fwd_s"], row["torch_fwd_bwd_s"] = t["fwd"], t["fwd_bwd"]
        else:
            row["skipped"].append(SKIP_TORCH)
        if "dense_fwd_bwd_s" in row:
            row["dense_over_tiled_fwd_bwd"] = row["dense_fwd_bwd_s"] / row["tiled_fwd_bwd_s"]
        if "torch_fwd_bwd_s" in row:
            row["torch_over_tiled_fwd_bwd"] = row["torch_fwd_bwd_s"] / row["tiled_fwd_bwd_s"]
            row["torch_over_tiled_fwd"] = row["torch_fwd_s"] / row["tiled_fwd_s"]
        results.append(row)
        print_row(row)

    report = {
        "machine": platform.platform(),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "tile_capacity": args.tile_capacity,
        "repeats": repeats,
        "results": results,
    }
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")


def print_row(row: dict) -> None:
    def f(key):
        return f"{row[key]:9.3f}" if key in row else "        -"

    if not getattr(print_row, "header", False):
        print(f"{'N':>7} {'size':>7} | {'tiled fwd':>9} {'tiled f+b':>9} | {'dense fwd':>9} {'dense f+b':>9} | "
              f"{'torch fwd':>9} {'torch f+b':>9} | dense/tiled torch/tiled (f+b)  overflow  bwd MiB")
        print_row.header = True
    mem = row.get("tiled_bwd_memory", {}).get("total_mib", float("nan"))
    print(f"{row['n']:>7} {row['width']:>3}x{row['height']:<3} | {f('tiled_fwd_s')} {f('tiled_fwd_bwd_s')} | "
          f"{f('dense_fwd_s')} {f('dense_fwd_bwd_s')} | {f('torch_fwd_s')} {f('torch_fwd_bwd_s')} | "
          f"{row.get('dense_over_tiled_fwd_bwd', float('nan')):11.1f} {row.get('torch_over_tiled_fwd_bwd', float('nan')):11.1f}"
          f"  {row.get('tiled_overflow_pairs', 0):>8}  {mem:7.1f}")
    for reason in row["skipped"]:
        print(f"        skipped: {reason}")


if __name__ == "__main__":
    main()
