"""On a CUDA machine: our JAX rasterizer vs gsplat 1.5.3's CUDA `rasterization`, renders, gradients and time.

Needs torch with CUDA and a gsplat build whose CUDA kernels compile/load; JAX may run on the GPU (jax[cuda])
or, failing that, on the CPU (the time ratio is then reported but means little). gsplat's kernel clamps
alpha at 0.999, so our side renders with max_alpha=0.999 here (the project default is 3DGS's 0.99).

  python benchmarks/gpu_rasterizer_vs_gsplat.py --out /tmp/gpu_vs_gsplat.json [--n 100000 --size 512]
  python benchmarks/gpu_rasterizer_vs_gsplat.py --n 30000 --width 320 --height 240 --cameras 40   (issue 9's target)
  python benchmarks/gpu_rasterizer_vs_gsplat.py --smoke   (toy size; without CUDA only our side runs: a CPU check)

Several cameras: C views of the same Gaussians (turned up to +-10 degrees about the vertical axis), rendered in one
call on both sides (ours vmapped over the cameras, gsplat's batched viewmats); losses and times are over all C.

Compared: RGB, alpha and accumulated depth (gsplat render_mode "RGB+D": sum w_i z_i, our RenderOutput.depth)
as max abs error, and gradients of one random linear loss w.r.t. means, quats, log-scales, opacity logits,
colours and the world-to-camera matrix as ||g_jax - g_gsplat|| / ||g_gsplat||.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
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
from benchmarks.rasterizer import make_scene  # noqa: E402

PARAMS = ("means", "quats", "log_scales", "opacity_logits", "colors")


def median_time(fn, sync, repeats: int) -> float:
    fn()
    sync()
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


def _turn_about_scene_centre(deg: float, centre_z: float = 4.0) -> np.ndarray:
    """World-to-camera [4, 4]: the camera turned by deg about the vertical axis through (0, 0, centre_z)."""
    a = np.deg2rad(deg)
    R = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    c = np.array([0.0, 0.0, centre_z])
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, c - R @ c
    return T


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=512, help="square image side, unless --width/--height")
    parser.add_argument("--width", type=int, default=0)
    parser.add_argument("--height", type=int, default=0)
    parser.add_argument("--cameras", type=int, default=1)
    parser.add_argument("--smoke", action="store_true", help="2000 Gaussians, 2 cameras, 64x48")
    parser.add_argument("--tile-capacity", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("gpu_vs_gsplat.json"))
    args = parser.parse_args()
    if args.smoke:
        args.n, args.width, args.height, args.cameras, args.repeats = 2000, 64, 48, 2, 2
    W, H, C = args.width or args.size, args.height or args.size, args.cameras

    import torch

    cuda = torch.cuda.is_available()
    if not cuda and not args.smoke:
        raise SystemExit("gsplat's rasterization needs CUDA: torch.cuda.is_available() is False on this machine")
    g, camera = make_scene(args.n, max(W, H))
    K = np.asarray(camera.K).copy()
    K[0, 2], K[1, 2] = W / 2, H / 2
    camera = dataclasses.replace(camera, K=jnp.asarray(K), width=W, height=H)
    rng = np.random.default_rng(3)
    w_rgb, w_alpha, w_depth = (rng.normal(size=s).astype(np.float32) for s in [(C, H, W, 3), (C, H, W), (C, H, W)])
    cfg = RenderConfig(mode="tiled", tile_capacity=args.tile_capacity, max_alpha=0.999)
    T = jnp.asarray(np.stack([_turn_about_scene_centre(a) for a in np.linspace(-10.0, 10.0, C)]), jnp.float32)

    # --- ours
    def loss_jax(g, T):
        out = jax.vmap(lambda t: render(g, dataclasses.replace(camera, T_cam_world=t), cfg))(T)
        return jnp.sum(out.rgb * w_rgb) + jnp.sum(out.alpha * w_alpha) + jnp.sum(out.depth * w_depth), out

    fwd = jax.jit(lambda g, T: loss_jax(g, T)[1])
    grad = jax.jit(jax.grad(loss_jax, argnums=(0, 1), has_aux=True))
    out = fwd(g, T)
    g_jax, gT_jax = grad(g, T)
    if not cuda:  # smoke test without CUDA: our side only
        t_fwd = median_time(lambda: jax.block_until_ready(fwd(g, T)), lambda: None, args.repeats)
        t_fb = median_time(lambda: jax.block_until_ready(grad(g, T)), lambda: None, args.repeats)
        report = {"n": args.n, "width": W, "height": H, "cameras": C, "jax_backend": jax.default_backend(),
                  "gsplat": "not run (no CUDA)", "time_s": {"jax_fwd": t_fwd, "jax_fwd_bwd": t_fb}}
        print(json.dumps(report, indent=2))
        args.out.write_text(json.dumps(report, indent=2))
        return

    from gsplat import rasterization

    dev = torch.device("cuda")

    # --- gsplat CUDA
    tp = {k: torch.tensor(np.asarray(getattr(g, k)), device=dev, requires_grad=True) for k in PARAMS}
    tT = torch.tensor(np.asarray(T), device=dev, requires_grad=True)
    tK = torch.tensor(np.tile(np.asarray(camera.K)[None], (C, 1, 1)), device=dev)

    def gsplat_render():
        colors, alphas, meta = rasterization(
            tp["means"], tp["quats"], torch.exp(tp["log_scales"]), torch.sigmoid(tp["opacity_logits"]),
            tp["colors"], tT, tK, W, H, near_plane=cfg.near, far_plane=cfg.far, eps2d=cfg.eps2d,
            packed=False, tile_size=cfg.tile_size, render_mode="RGB+D", rasterize_mode="classic",
        )
        return colors[..., :3], alphas[..., 0], colors[..., 3]

    rgb_t, alpha_t, depth_t = gsplat_render()
    loss_t = ((rgb_t * torch.tensor(w_rgb, device=dev)).sum() + (alpha_t * torch.tensor(w_alpha, device=dev)).sum()
              + (depth_t * torch.tensor(w_depth, device=dev)).sum())
    loss_t.backward()

    report = {
        "n": args.n, "width": W, "height": H, "cameras": C, "jax_backend": jax.default_backend(),
        "gpu": torch.cuda.get_device_name(),
        "tile_capacity": args.tile_capacity, "overflow_pairs": int(np.sum(out.overflow)),
        "max_abs_err": {
            "rgb": float(np.abs(np.asarray(out.rgb) - rgb_t.detach().cpu().numpy()).max()),
            "alpha": float(np.abs(np.asarray(out.alpha) - alpha_t.detach().cpu().numpy()).max()),
            "depth": float(np.abs(np.asarray(out.depth) - depth_t.detach().cpu().numpy()).max()),
        },
        "grad_rel_err": {},
    }
    ours = {k: np.asarray(getattr(g_jax, k)) for k in PARAMS} | {"T_cam_world": np.asarray(gT_jax)}
    theirs = {k: tp[k].grad.cpu().numpy() for k in PARAMS} | {"T_cam_world": tT.grad.cpu().numpy()}
    for k in ours:
        report["grad_rel_err"][k] = float(np.linalg.norm(ours[k] - theirs[k]) / max(np.linalg.norm(theirs[k]), 1e-30))

    def gsplat_fwd_bwd():
        r, a, d = gsplat_render()
        (r.sum() + a.sum() + d.sum()).backward()

    with torch.no_grad():
        t_gs_fwd = median_time(gsplat_render, torch.cuda.synchronize, args.repeats)
    t_gs_fb = median_time(gsplat_fwd_bwd, torch.cuda.synchronize, args.repeats)
    t_jax_fwd = median_time(lambda: jax.block_until_ready(fwd(g, T)), lambda: None, args.repeats)
    t_jax_fb = median_time(lambda: jax.block_until_ready(grad(g, T)), lambda: None, args.repeats)
    report["time_s"] = {"gsplat_fwd": t_gs_fwd, "gsplat_fwd_bwd": t_gs_fb, "jax_fwd": t_jax_fwd, "jax_fwd_bwd": t_jax_fb}
    report["jax_over_gsplat"] = {"fwd": t_jax_fwd / t_gs_fwd, "fwd_bwd": t_jax_fb / t_gs_fb}
    print(json.dumps(report, indent=2))
    args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
