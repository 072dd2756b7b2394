"""Synthetic HOI suite: Stage II against its HMR initialization (Table 2) and the ablations (Table 5).

  python benchmarks/interaction.py [--objects door,drawer,fridge,lid] [--ablations door] [--variants ...]
                                   [--set key=value ...] [--out out/bench_interaction] [--reuse] [--json PATH]

Per object, generate -> segment -> Stage I run once (configs/synthetic/<object>_hoi.yaml); each Stage II
variant then runs `stage2` + `evaluate_hoi` on a copy of that folder. Variants: full, w/o L_k, w/o contact,
w/o L_fs, w/o L_s (switches in `stage2`), and the joint-optimization baseline (`stage2.mode: joint`), run on
the objects named by --ablations. --reuse keeps a Stage II result already in <out> (same code and overrides
assumed) and only re-evaluates it. Prints both tables (Table 2: means over objects; Table 5: means over the ablation objects), the wall
and CPU seconds of each Stage II and the machine's load, and writes every number to --json
(default benchmarks/results/interaction_suite.json).
"""

from __future__ import annotations

import argparse
import json
import os
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


def run_object(obj: str, variants: list[str], overrides: list[str], out: Path, reuse: bool) -> dict:
    config = CONFIGS / f"{obj}_hoi.yaml"
    base = out / obj / "base"
    if not (base / "stage1").exists():
        for stage in BASE_STAGES:
            pipeline.run(config, overrides=overrides, stage=stage, out=base, overwrite=True)
    results = {}
    for name in variants:
        folder = out / obj / name.replace("/", "_").replace(" ", "_").replace(".", "")
        if not (reuse and (folder / "stage2").exists() and (folder / "timing.json").exists()):
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            for stage in BASE_STAGES:
                if (base / stage).exists():
                    shutil.copytree(base / stage, folder / stage)
            t0, c0, load0 = time.perf_counter(), time.process_time(), os.getloadavg()[0]
            pipeline.run(config, overrides=overrides + VARIANTS[name], stage="stage2", out=folder, overwrite=True)
            (folder / "timing.json").write_text(json.dumps({
                "stage2_seconds": time.perf_counter() - t0, "stage2_cpu_seconds": time.process_time() - c0,
                "load_average_1min": [load0, os.getloadavg()[0]]}))
        # Always re-evaluated (cheap), so that reused Stage II results are scored by the current metrics.
        pipeline.run(config, overrides=overrides + VARIANTS[name], stage="evaluate_hoi", out=folder, overwrite=True)
        results[name] = {**json.loads((folder / "evaluate_hoi" / "metrics.json").read_text()),
                         **json.loads((folder / "timing.json").read_text())}
    return results


def _row(r: dict) -> dict:
    return {"Smoothness": r["smoothness_m_per_s"], "Foot Sliding": r["foot_sliding"]["score"],
            "Floor gap cm": r["foot_sliding"]["floor_gap_cm"],
            "Contact%": r["contact"]["percent"], "Penetration%": r["penetration_percent"],
            "MPJPE mm": r.get("mpjpe_mm", float("nan")), "PA-MPJPE mm": r.get("pa_mpjpe_mm", float("nan")),
            "Hand-handle cm": 100 * r.get("hand_to_handle_m", {}).get("median", float("nan"))}


def tables(results: dict) -> tuple[dict, dict]:
    """Table 2 (init vs Stage II, means over objects) and Table 5 (variants, means over the ablated objects)."""
    objs = list(results)
    t2 = {}
    for label, key in (("HMR init", "init"), ("Ours (Stage II)", "stage2")):
        rows = [_row(results[o]["Full"][key]) for o in objs if "Full" in results[o]]
        t2[label] = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]} if rows else {}
    t5 = {}
    ablated = [o for o in objs if len(results[o]) > 1] or objs  # Full is compared on the same objects
    for name in VARIANTS:
        per = [results[o][name] for o in ablated if name in results[o]]
        if not per:
            continue
        t5[name] = {
            "Foot Sliding": float(np.mean([p["stage2"]["foot_sliding"]["score"] for p in per])),
            "Floor gap cm": float(np.mean([p["stage2"]["foot_sliding"]["floor_gap_cm"] for p in per])),
            "Contact%": float(np.mean([p["stage2"]["contact"]["percent"] for p in per])),
            "Penetration%": float(np.mean([p["stage2"]["penetration_percent"] for p in per])),
            "Hand-handle cm": float(np.mean([100 * p["stage2"]["hand_to_handle_m"]["median"] for p in per])),
            "Rot (mean)": float(np.mean([p["object_rotation_error_deg"]["mean"] for p in per])),
            "Rot (max)": float(np.mean([p["object_rotation_error_deg"]["max"] for p in per])),
            "Rot (min)": float(np.mean([p["object_rotation_error_deg"]["min"] for p in per])),
            "Stage II s": float(np.mean([p["stage2_seconds"] for p in per])),
            "Stage II CPU s": float(np.mean([p["stage2_cpu_seconds"] for p in per])),
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
    ap.add_argument("--ablations", default="", help="objects to run the variants on (default: none, Full only)")
    ap.add_argument("--variants", default=",".join(VARIANTS), help="the variants run on the --ablations objects")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override (repeatable)")
    ap.add_argument("--out", default="out/bench_interaction")
    ap.add_argument("--reuse", action="store_true", help="keep Stage II results already in --out")
    ap.add_argument("--json", default=str(Path(__file__).resolve().parent / "results" / "interaction_suite.json"))
    args = ap.parse_args(argv)
    out = Path(args.out)
    ablate = set(filter(None, args.ablations.split(",")))
    variants = ["Full"] + [v for v in args.variants.split(",") if v in VARIANTS and v != "Full"]
    results = {o: run_object(o, variants if o in ablate else ["Full"], args.set, out, args.reuse)
               for o in args.objects.split(",")}
    t2, t5 = tables(results)
    _print("Table 2 (interaction quality, mean over objects)", t2)
    _print(f"Table 5 (ablations, mean over {', '.join(sorted(ablate)) or 'the objects'})", t5)
    print("\nper object (Full): " + "; ".join(
        f"{o}: Stage II {r['Full']['stage2_seconds']:.0f} s wall, {r['Full']['stage2_cpu_seconds']:.0f} s CPU, "
        f"load {r['Full']['load_average_1min'][0]:.1f}-{r['Full']['load_average_1min'][1]:.1f}"
        for o, r in results.items()))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"overrides": args.set, "ablation_objects": sorted(ablate), "table2": t2,
                                           "table5": t5, "per_object": results}, indent=2))
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
