"""SMPL-X forward and forward+backward for a T-frame sequence: JAX (arthoi_jax.body) vs smplx 0.1.28 (PyTorch).

Both run on the CPU in one process, on the license-free body (or --model FILE), with full 15 x 3 hand poses
and random poses, shapes and expressions. Forward: vertices and joints of every frame. Backward: gradient
of a random linear function of the vertices w.r.t. betas, expression, global_orient, body_pose, hand poses
and transl. Times are medians of --repeats runs after one warm-up (JAX compile time reported separately);
the ratio smplx / JAX is the number to read on a shared machine. Also reports the max abs vertex difference.

  .venv/bin/python benchmarks/body.py --out /tmp/body.json [--frames 120 --repeats 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from arthoi_jax.body.model import BodyModel, BodyParams, forward_sequence  # noqa: E402
from arthoi_jax.io.body_model_file import license_free_model_file, read_model_arrays  # noqa: E402

FIELDS = ("betas", "expression", "global_orient", "body_pose", "jaw_pose", "leye_pose", "reye_pose",
          "left_hand_pose", "right_hand_pose", "transl")  # fmt: skip
GRAD_FIELDS = ("betas", "expression", "global_orient", "body_pose", "left_hand_pose", "right_hand_pose", "transl")


def median_time(fn, repeats: int) -> float:
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--model", help="SMPL-X .npz/.pkl (default: the license-free body)")
    ap.add_argument("--out", type=Path, help="write the results as JSON here")
    args = ap.parse_args()

    import smplx
    import torch

    path = Path(args.model) if args.model else license_free_model_file(Path(tempfile.gettempdir()) / "arthoi_body")
    T = args.frames
    rng = np.random.default_rng(0)
    raw = {
        "betas": rng.normal(size=10), "expression": rng.normal(size=(T, 10)), "global_orient": rng.normal(size=(T, 3)),
        "body_pose": 0.5 * rng.normal(size=(T, 21, 3)), "jaw_pose": 0.2 * rng.normal(size=(T, 3)),
        "leye_pose": np.zeros((T, 3)), "reye_pose": np.zeros((T, 3)),
        "left_hand_pose": 0.5 * rng.normal(size=(T, 15, 3)), "right_hand_pose": 0.5 * rng.normal(size=(T, 15, 3)),
        "transl": rng.normal(size=(T, 3)),
    }  # fmt: skip
    raw = {k: v.astype(np.float32) for k, v in raw.items()}

    # JAX.
    model = BodyModel.from_arrays(read_model_arrays(path))
    params = BodyParams(**{k: jnp.asarray(v) for k, v in raw.items()})
    V = model.num_vertices
    w = jnp.asarray(rng.normal(size=(T, V, 3)), jnp.float32)

    def loss(model, p, w):  # the model is an argument: closed over, XLA would constant-fold its arrays
        return jnp.sum(forward_sequence(model, p).vertices * w)

    grad = jax.jit(jax.grad(loss, argnums=1))
    t0 = time.perf_counter()
    jax.block_until_ready(forward_sequence(model, params))
    compile_fwd = time.perf_counter() - t0
    t0 = time.perf_counter()
    jax.block_until_ready(grad(model, params, w))
    compile_bwd = time.perf_counter() - t0
    jax_fwd = median_time(lambda: jax.block_until_ready(forward_sequence(model, params)), args.repeats)
    jax_bwd = median_time(lambda: jax.block_until_ready(grad(model, params, w)), args.repeats)

    # smplx (PyTorch).
    m = smplx.SMPLX(str(path), ext=path.suffix[1:], use_pca=False, flat_hand_mean=True, num_betas=10,
                    num_expression_coeffs=10, batch_size=T)  # fmt: skip
    tp = {k: torch.tensor(np.tile(v, (T, 1)) if k == "betas" else v.reshape(T, -1)) for k, v in raw.items()}
    tw = torch.tensor(np.asarray(w))

    def torch_fwd():
        with torch.no_grad():
            return m(**tp)

    def torch_bwd():
        leaves = {k: v.clone().requires_grad_(k in GRAD_FIELDS) for k, v in tp.items()}
        (m(**leaves).vertices * tw).sum().backward()

    torch_fwd()
    torch_bwd()
    th_fwd = median_time(torch_fwd, args.repeats)
    th_bwd = median_time(torch_bwd, args.repeats)
    err = float(np.abs(np.asarray(forward_sequence(model, params).vertices) - torch_fwd().vertices.numpy()).max())

    result = {
        "frames": T, "vertices": V, "model": str(path), "device": jax.devices()[0].platform,
        "torch_threads": torch.get_num_threads(), "max_abs_vertex_diff_m": err,
        "jax_compile_forward_s": compile_fwd, "jax_compile_backward_s": compile_bwd,
        "forward": {"jax_s": jax_fwd, "smplx_s": th_fwd, "smplx_over_jax": th_fwd / jax_fwd},
        "forward_backward": {"jax_s": jax_bwd, "smplx_s": th_bwd, "smplx_over_jax": th_bwd / jax_bwd},
    }  # fmt: skip
    print(f"SMPL-X, {T} frames, {V} vertices, CPU (median of {args.repeats}); max |dv| = {err:.2e} m")
    print(f"{'':18}{'JAX s':>10}{'smplx s':>10}{'smplx/JAX':>11}")
    for name in ("forward", "forward_backward"):
        r = result[name]
        print(f"{name:18}{r['jax_s']:10.4f}{r['smplx_s']:10.4f}{r['smplx_over_jax']:11.2f}")
    print(f"JAX compile: forward {compile_fwd:.1f} s, forward+backward {compile_bwd:.1f} s")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
