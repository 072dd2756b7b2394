"""Weight-free trackers against the synthetic scenes' ground-truth tracks.

For every scene and tracker, the GT tracks' frame-0 positions are the queries; reported:
  epe_median / epe_p90  endpoint error (px) over (frame >= 1, point) pairs visible in both GT and prediction
  epe_last              median endpoint error at the last frame (drift: chained flow errors add up)
  vis_acc               fraction of (frame >= 1, point) pairs whose predicted visibility equals GT's
  kept                  fraction of GT-visible pairs the tracker still calls visible
  moving_epe_median / moving_epe_last / moving_kept / moving_kept_last   the same on the moving parts' points
                        alone (what Stage I fits; the static part dominates the totals)
  seconds               tracking time (ratios between trackers are what carry over to other machines)
and, per scene, the IoU of the frame-0 object mask carried by optical flow (the weight-free mask default)
against the GT object masks: mask_iou_mean / mask_iou_min over frames.

  python benchmarks/tracking.py [--objects door drawer ...] [--out results/tracking.json]

lk is the default LK tracker (frame to frame, re-anchored to frame 0 every frame); lk_chain is its frame-to-frame
step alone, the tracker before re-anchoring; lk_affine follows each window with an affine warp refined against
frame 0 (`preprocess.lk_warp: affine`, preprocess/affine_lk.py). --trackers picks a subset.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from arthoi_jax.config import SyntheticConfig
from arthoi_jax.io.bundle import MOVING_PART_ID0
from arthoi_jax.io.outputs import write_json
from arthoi_jax.preprocess.lk_tracker import track_points, track_points_dense
from arthoi_jax.preprocess.masks import carry_mask_with_flow
from arthoi_jax.synthetic.scene import generate_scene

TRACKERS = {"lk": track_points, "lk_chain": lambda f, q: track_points(f, q, anchor=False),  # without re-anchoring
            "lk_affine": lambda f, q: track_points(f, q, warp="affine"), "dense": track_points_dense}
SCENES = [(o, "textured") for o in ("door", "drawer", "fridge", "lid", "cabinet2")] + [("door", "low")]


def score(tracks, vis, gt_tracks, gt_vis, moving=None) -> dict:
    """Metrics over frames 1..T-1 (frame 0 is the query itself); moving [N] bool: the moving parts' points."""
    tracks, vis, gt_tracks, gt_vis = tracks[1:], vis[1:], gt_tracks[1:], gt_vis[1:]
    both = vis & gt_vis
    epe = np.linalg.norm(tracks - gt_tracks, axis=-1)[both]
    last = np.linalg.norm(tracks[-1] - gt_tracks[-1], axis=-1)[both[-1]]
    out = {
        "epe_median": float(np.median(epe)) if epe.size else float("nan"),
        "epe_p90": float(np.percentile(epe, 90)) if epe.size else float("nan"),
        "epe_last": float(np.median(last)) if last.size else float("nan"),
        "vis_acc": float((vis == gt_vis).mean()),
        "kept": float(both.sum() / max(gt_vis.sum(), 1)),
    }
    if moving is not None and moving.any():
        err = np.linalg.norm(tracks - gt_tracks, axis=-1)[:, moving]
        b, g = both[:, moving], gt_vis[:, moving]
        out.update(moving_epe_median=float(np.median(err[b])) if b.any() else float("nan"),
                   moving_epe_last=float(np.median(err[-1][b[-1]])) if b[-1].any() else float("nan"),
                   moving_kept=float(b.sum() / max(g.sum(), 1)),
                   moving_kept_last=float(b[-1].sum() / max(g[-1].sum(), 1)))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", nargs="*", default=None,
                        help="object types (default: all five, and the low-texture door)")
    parser.add_argument("--trackers", nargs="*", default=list(TRACKERS), choices=list(TRACKERS))
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--out", default=None, help="write the rows as JSON here")
    args = parser.parse_args(argv)
    scenes = [s for s in SCENES if args.objects is None or s[0] in args.objects]
    rows = []
    for obj, texture in scenes:
        b = generate_scene(SyntheticConfig(object=obj, texture=texture, num_frames=args.frames))
        carried = carry_mask_with_flow(b.frames, b.object_masks[0])
        iou = [(c & g).sum() / max((c | g).sum(), 1) for c, g in zip(carried, b.object_masks)]
        rows.append({"scene": f"{obj}/{texture}", "mask_iou_mean": float(np.mean(iou)),
                     "mask_iou_min": float(min(iou))})
        print(f"{obj + '/' + texture:<17} flow-carried object mask IoU mean {np.mean(iou):.3f}, min {min(iou):.3f}")
        moving = b.gt.track_part >= MOVING_PART_ID0
        for name in args.trackers:
            t0, c0 = time.perf_counter(), time.process_time()
            tracks, vis = TRACKERS[name](b.frames, b.gt.tracks[0])
            row = {"scene": f"{obj}/{texture}", "tracker": name, "points": int(b.gt.tracks.shape[1]),
                   **score(tracks, vis, b.gt.tracks, b.gt.visibility, moving), "seconds": time.perf_counter() - t0,
                   "cpu_seconds": time.process_time() - c0}
            rows.append(row)
            print(f"{row['scene']:<17} {name:<9} EPE median {row['epe_median']:6.3f} px  p90 {row['epe_p90']:6.2f} px"
                  f"  last {row['epe_last']:6.2f} px  vis acc {row['vis_acc']:.3f}  kept {row['kept']:.3f} | moving:"
                  f" EPE {row.get('moving_epe_median', np.nan):6.3f}  last {row.get('moving_epe_last', np.nan):6.2f}"
                  f"  kept {row.get('moving_kept', np.nan):.3f}  kept last {row.get('moving_kept_last', np.nan):.3f}"
                  f"  {row['cpu_seconds']:5.1f} s CPU", flush=True)
    print("\nmedian over textured scenes:")
    for name in args.trackers:
        sel = [r for r in rows if r.get("tracker") == name and r["scene"].endswith("/textured")]
        if sel:
            med = {k: np.nanmedian([r.get(k, np.nan) for r in sel]) for k in
                   ("epe_median", "vis_acc", "moving_epe_median", "moving_epe_last", "moving_kept")}
            print(f"  {name:<9} EPE {med['epe_median']:.3f} px, vis acc {med['vis_acc']:.3f}; moving parts: EPE "
                  f"{med['moving_epe_median']:.3f} px, last frame {med['moving_epe_last']:.3f} px, "
                  f"kept {med['moving_kept']:.3f}")
    if args.out:
        write_json(Path(args.out), rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
