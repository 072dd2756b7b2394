"""Where the tracking term L_tr pulls a free per-frame SE(3) pose, with and without a robust loss (issue 4).

  python benchmarks/stage1_track_minimizer.py [--scenes door drawer] [--tracker lk]
                                              [--out benchmarks/results/stage1_track_minimizer.json]

For each scene and moving part, frames 1..T-1: start from Stage I's closed-form initialization (the joint refined
on all frames' tracks), minimize the part's reprojection error over a free 6-DOF pose of that frame alone
(scipy least_squares; loss linear = L_tr's squared error, huber / cauchy with a 1 px scale, trim = squared error
on the tracks within max(3 x median, 1 px) at the init), and score each minimizer against ground truth (rotation
error in degrees for revolute parts, translation error in cm for prismatic ones). When every minimizer is
farther from the truth than the initialization, Adam on L_tr with a free pose can only move away from it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares
from scipy.spatial.transform import Rotation

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from arthoi_jax import stage1
from arthoi_jax.config import load_config
from arthoi_jax.io.outputs import write_json
from arthoi_jax.metrics import match_parts
from arthoi_jax.segmentation import segment
from arthoi_jax.synthetic.scene import generate_scene
from benchmarks.articulation import _retrack

FITS = ("init", "linear", "huber", "cauchy", "trim")


def _error(pose: np.ndarray, gt: np.ndarray, revolute: bool) -> float:
    if revolute:
        return float(np.degrees(np.linalg.norm(Rotation.from_matrix(pose[:3, :3].T @ gt[:3, :3]).as_rotvec())))
    return float(np.linalg.norm(pose[:3, 3] - gt[:3, 3]) * 100)


def _frame_minimizers(X: np.ndarray, uv: np.ndarray, K: np.ndarray, P0: np.ndarray) -> dict:
    """X [N, 3] frame-0 points, uv [N, 2] px, P0 [4, 4] start -> {fit: pose [4, 4]}."""

    def pose(x):
        D = np.eye(4)
        D[:3, :3], D[:3, 3] = Rotation.from_rotvec(x[:3]).as_matrix(), x[3:]
        return P0 @ D

    def resid(x):
        q = X @ pose(x)[:3, :3].T + pose(x)[:3, 3]
        return (q[:, :2] / q[:, 2:3] * [K[0, 0], K[1, 1]] + K[:2, 2] - uv).ravel()

    out = {"init": P0}
    for loss in ("linear", "huber", "cauchy"):
        out[loss] = pose(least_squares(resid, np.zeros(6), loss=loss, f_scale=1.0).x)
    r = np.linalg.norm(resid(np.zeros(6)).reshape(-1, 2), axis=1)
    keep = r <= max(3 * np.median(r), 1.0)
    out["trim"] = pose(least_squares(lambda x: resid(x).reshape(-1, 2)[keep].ravel(), np.zeros(6)).x)
    return out


def run_scene(name: str, tracker: str) -> dict:
    cfg = load_config(Path(__file__).resolve().parents[1] / "configs/synthetic" / f"{name}.yaml", [])
    b = _retrack(generate_scene(cfg.synthetic), cfg, tracker)
    seg = segment(b.frames, b.object_masks, b.depth, b.K, b.tracks, b.visibility, cfg.segmentation)
    init, _, _ = stage1.initial_poses(seg, b.tracks, b.visibility, np.asarray(b.K, np.float64), cfg.stage1)
    errs = {f: [] for f in FITS}
    kinds = set()
    for p, g in enumerate(match_parts(seg.part_masks[0], b.gt.part_ids[0], len(b.gt.joint_types))):
        if g < 0:
            continue
        revolute = b.gt.joint_types[g] == "revolute"
        kinds.add("deg" if revolute else "cm")
        m = seg.track_labels == p + 1
        for t in range(1, b.tracks.shape[0]):
            v = b.visibility[t, m]
            fits = _frame_minimizers(seg.track_points[m][v], b.tracks[t, m][v], b.K, init[t, p])
            for f, P in fits.items():
                errs[f].append(_error(P, b.gt.part_poses[t, g], revolute))
    return {"scene": name, "tracker": tracker, "unit": "/".join(sorted(kinds)),
            "fits": {f: {"mean": float(np.mean(e)), "max": float(np.max(e))} for f, e in errs.items()}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenes", nargs="+", default=["door", "drawer"])
    ap.add_argument("--tracker", default="lk", choices=("gt", "lk", "dense"))
    ap.add_argument("--out", default="benchmarks/results/stage1_track_minimizer.json")
    args = ap.parse_args(argv)
    results = [run_scene(s, args.tracker) for s in args.scenes]
    print(f"{'scene':10s}{'unit':>5s}" + "".join(f"{f:>16s}" for f in FITS) + "   (mean / max per frame)")
    for r in results:
        print(f"{r['scene']:10s}{r['unit']:>5s}"
              + "".join(f"{r['fits'][f]['mean']:8.2f}{r['fits'][f]['max']:8.2f}" for f in FITS))
    write_json(Path(args.out), {"tracker": args.tracker, "results": results})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
