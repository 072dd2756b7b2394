"""The checkpoint-free body fit (arthoi_jax/body/fit2d.py) against ground truth.

  synthetic person: a license-free body ~3 m from the camera, random pose (0.1 rad per joint), turning; landmarks
    = its projected LANDMARK_MAP joints + 2 px noise, confidence 0.9; the height prior is told the true height.
  HOI scenes (arthoi_jax/synthetic/hoi.py): the ground-truth person of each scene, projected the same way, and
    the scene's simulated HMR initialization (synthetic/hmr_sim.py) for comparison.
Per case: MPJPE (mm, mapped joints, hip-centre aligned), PA-MPJPE (mm, Procrustes per frame), absolute MPJPE (mm,
camera frame, no alignment: includes the depth error), mean reprojection error (px).

  python -m benchmarks.fit2d [--steps 400] [--out out/benchmarks/fit2d.json]   (from the repo root)
"""

from __future__ import annotations

import argparse

import jax
import numpy as np

from arthoi_jax.body import fit2d
from arthoi_jax.body.model import BodyParams, params_from_smplx
from arthoi_jax.config import BodyConfig, load_config
from arthoi_jax.io.body_model_file import load_body_model
from arthoi_jax.interaction_metrics import mpjpe, pa_mpjpe
from arthoi_jax.io.outputs import write_json

HIPS = [fit2d.LANDMARK_MAP.index(e) for e in fit2d.LANDMARK_MAP if e[0] in ("left_hip", "right_hip")]


def joints_of(model, p: BodyParams) -> np.ndarray:
    return np.asarray(jax.vmap(fit2d.mapped_joints, in_axes=(None, None, 0, 0, 0))(
        model, p.betas, p.global_orient, p.body_pose, p.transl), np.float64)  # fmt: skip


def errors(J_hat, J) -> dict:
    hips = lambda X: X - X[:, HIPS].mean(1, keepdims=True)  # noqa: E731
    return {"mpjpe_mm": mpjpe(hips(J_hat), hips(J)), "pa_mpjpe_mm": pa_mpjpe(J_hat, J),
            "abs_mpjpe_mm": mpjpe(J_hat, J)}


def fit_case(model, J, K, hw, height, steps, rng) -> dict:
    T = len(J)
    lm, conf = np.zeros((T, 33, 2)), np.zeros((T, 33))
    lm[:, fit2d.LANDMARK_IDS] = np.asarray(fit2d.project(K, J)) + rng.normal(0, 2.0, (T, len(fit2d.LANDMARK_MAP), 2))
    conf[:, fit2d.LANDMARK_IDS] = 0.9
    r = fit2d.fit_body_to_landmarks(model, lm, conf, K, hw, fit2d.FitSettings(steps=steps, body_height_m=height))
    return {**errors(r.joints3d, J), "reprojection_px": r.mean_reprojection_px}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--out", default="out/benchmarks/fit2d.json")
    args = ap.parse_args()
    model = load_body_model(BodyConfig())
    rng = np.random.default_rng(0)
    results = {}
    T = 8
    K = np.array([[500.0, 0, 256], [0, 500.0, 256], [0, 0, 1]])
    for seed in range(3):
        r = np.random.default_rng(seed)
        go = np.tile([np.pi, 0.0, 0.0], (T, 1))
        go[:, 1] += np.linspace(-0.3, 0.3, T)
        p = BodyParams.zeros(model, T).replace(
            betas=np.float32(r.normal(0, 0.5, model.num_betas)), global_orient=np.float32(go),
            body_pose=np.float32(r.normal(0, 0.1, (1, 21, 3)) + r.normal(0, 0.02, (T, 21, 3))),
            transl=np.float32(np.tile([0.1, 0.3, 3.0], (T, 1))))  # fmt: skip
        results[f"person_seed{seed}"] = fit_case(model, joints_of(model, p), K, (512, 512),
                                                 float(fit2d.body_height(model, p.betas)), args.steps, rng)
        print(f"person_seed{seed}", results[f"person_seed{seed}"], flush=True)
    from arthoi_jax.synthetic.hoi import generate_hoi_scene

    for obj in ("door", "drawer"):
        cfg = load_config(f"configs/synthetic/{obj}_hoi.yaml")
        b, _ = generate_hoi_scene(cfg.synthetic, model, cfg.hmr_sim)
        gt = params_from_smplx(model, b.gt.human)
        J = joints_of(model, gt)
        res = fit_case(model, J, b.K, b.image_size, float(fit2d.body_height(model, gt.betas)), args.steps, rng)
        res["hmr_sim"] = errors(joints_of(model, params_from_smplx(model, b.smplx_init)), J)
        results[f"hoi_{obj}"] = res
        print(f"hoi_{obj}", res, flush=True)
    write_json(args.out, results)


if __name__ == "__main__":
    main()
