"""Synthetic HOI suite: Stage II against its HMR initialization (Table 2) and the ablations (Table 5).

  python benchmarks/interaction.py [--objects door,drawer,fridge,lid] [--ablations] [--set key=value ...]
                                   [--out out/bench_interaction]

Per object, generate -> segment -> Stage I run once (configs/synthetic/<object>_hoi.yaml); each Stage II
variant then runs `stage2` + `evaluate_hoi` on a copy of that folder. Variants: full, w/o L_k, w/o contact,
w/o L_fs, w/o L_s (switches in `stage2`), and the joint-optimization baseline (`stage2.mode: joint`).
Prints both tables (means over objects) and writes every number to <out>/interaction.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from arthoi_jax import pipeline  # noqa: E402

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "synthetic"
VARIANTS = {
    "Full": [],
    "w/o L_k": ["stage2.use_kinematic_loss=false"],
    "w/o contact": ["stage2.use_contact_loss=false"],
    "w/o L_fs": ["stage2.use_foot_loss=false"],
    "w/o L_s": ["stage2.use_smoothness_loss=false"],
    "Joint Opt.": ["stage2.mode=joint"],
}
BASE_STAGES = ("generate", "preprocess", "segment", "stage1")


def run_object(obj: str, variants: list[str], overrides: list[str], out: Path) -> dict:
    config = CONFIGS / f"{obj}_hoi.yaml"
    base = out / obj / "base"
    if not (base / "stage1").exists():
        for stage in BASE_STAGES:
            pipeline.run(config, overrides=overrides, stage=stage, out=base, overwrite=True)
    results = {}
    for name in variants:
        folder = out / obj / name.replace("/", "_").replace(" ", "_").replace(".", "")
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for stage in BASE_STAGES:
            if (base / stage).exists():
                shutil.copytree(base / stage, folder / stage)
        t0 = time.perf_counter()
        pipeline.run(config, overrides=overrides + VARIANTS[name], stage="stage2", out=folder, overwrite=True)
        seconds = time.perf_counter() - t0
        pipeline.run(config, overrides=overrides + VARIANTS[name], stage="evaluate_hoi", out=folder, overwrite=True)
        metrics = json.loads((folder / "evaluate_hoi" / "metrics.json").read_text())
        metrics["stage2_seconds"] = seconds
        results[name] = metrics
    return results


def _row(r: dict) -> dict:
    return {"Smoothness": r["smoothness_m_per_s"], "Foot Sliding": r["foot_sliding"]["score"],
            "Contact%": r["contact"]["percent"], "Penetration%": r["penetration_percent"],
            "MPJPE mm": r.get("mpjpe_mm", float("nan")), "PA-MPJPE mm": r.get("pa_mpjpe_mm", float("nan")),
            "Hand-handle cm": 100 * r.get("hand_to_handle_m", {}).get("median", float("nan"))}


def tables(results: dict) -> tuple[dict, dict]:
    """Means over objects: Table 2 (init vs Stage II) and Table 5 (variants)."""
    objs = list(results)
    t2 = {}
    for label, key in (("HMR init", "init"), ("Ours (Stage II)", "stage2")):
        rows = [_row(results[o]["Full"][key]) for o in objs if "Full" in results[o]]
        t2[label] = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]} if rows else {}
    t5 = {}
    for name in VARIANTS:
        per = [results[o][name] for o in objs if name in results[o]]
        if not per:
            continue
        t5[name] = {
            "Foot Sliding": float(np.mean([p["stage2"]["foot_sliding"]["score"] for p in per])),
            "Contact%": float(np.mean([p["stage2"]["contact"]["percent"] for p in per])),
            "Penetration%": float(np.mean([p["stage2"]["penetration_percent"] for p in per])),
            "Hand-handle cm": float(np.mean([100 * p["stage2"]["hand_to_handle_m"]["median"] for p in per])),
            "Rot (mean)": float(np.mean([p["object_rotation_error_deg"]["mean"] for p in per])),
            "Rot (max)": float(np.mean([p["object_rotation_error_deg"]["max"] for p in per])),
            "Rot (min)": float(np.mean([p["object_rotation_error_deg"]["min"] for p in per])),
            "Stage II s": float(np.mean([p["stage2_seconds"] for p in per])),
        }
    return t2, t5


def _print(title: str, table: dict) -> None:
    cols = list(next(iter(table.values())))
    print(f"\n{title}\n{'Method':<18}" + "".join(f"{c:>16}" for c in cols))
    for name, row in table.items():
        print(f"{name:<18}" + "".join(f"{row[c]:>16.3f}" for c in cols))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--objects", default="door,drawer,fridge,lid")
    ap.add_argument("--ablations", action="store_true", help="run every variant (default: Full only)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override (repeatable)")
    ap.add_argument("--out", default="out/bench_interaction")
    args = ap.parse_args(argv)
    out = Path(args.out)
    variants = list(VARIANTS) if args.ablations else ["Full"]
    results = {o: run_object(o, variants, args.set, out) for o in args.objects.split(",")}
    t2, t5 = tables(results)
    _print("Table 2 (interaction quality, mean over objects)", t2)
    _print("Table 5 (ablations, mean over objects)", t5)
    (out / "interaction.json").write_text(json.dumps({"overrides": args.set, "table2": t2, "table5": t5,
                                                      "per_object": results}, indent=2))
    print(f"\nwrote {out / 'interaction.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
