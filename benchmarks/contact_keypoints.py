"""Contact keypoints (Fig. 3c) against the ground-truth hand joints of the synthetic HOI suite: the paper's lifting
("paper": the Stage I render as fitted, one offset, per frame), the config's per-frame lifting ("per-frame": with
stage2.contact_rigid_parts and the grip offsets where the config sets them) and the grasp anchored in the held
part's frame ("anchored": stage2.contact_anchor on top), then moved by the hand's offset to the frame-0 depth map
("depth-shifted": stage2.contact_depth_shift on top).

  python benchmarks/contact_keypoints.py --runs out/bench_interaction [--objects door,drawer,fridge,lid]
                                         [--set key=value ...] [--json PATH]

Reads <runs>/<object>/base (generate, segment and stage1 folders written by benchmarks/interaction.py) and lifts
the keypoints as Stage II does (stage2_init.contact_keypoints). Per object, on the frames where the ground truth has
the hand on the handle: the median and 90th percentile distance of the contact keypoints to the hand joints they
stand for (cm), the keypoints per frame of the contacting hand, and the grip keypoint (the middle finger's
knuckle, the point hand-to-handle scores): its median distance and the fraction of frames that have it. "GT
rigidity" is the median distance of the ground truth's own hand keypoints, in the part's frame (true poses), to
their mean over the contact frames: the floor of any rigid anchor.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from arthoi_jax import config as config_lib
from arthoi_jax import contact as contact_lib
from arthoi_jax import stage1, stage2_init
from arthoi_jax.body.model import forward_sequence, params_from_smplx
from arthoi_jax.io import bundle as bundle_io
from arthoi_jax.io import stage1_outputs
from arthoi_jax.io.body_model_file import load_body_model
from arthoi_jax.io.human_motion import load_hoi_truth
from arthoi_jax.io.outputs import write_json
from arthoi_jax.synthetic.hoi import HAND_KEYPOINT_INDEX

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "synthetic"
GRIP = 9  # the middle finger's knuckle (synthetic.hoi.GRIP_JOINT) in the 21-point hand order
LIFTINGS = {  # Stage2Config changes per row
    "paper": {"contact_anchor": False, "contact_rigid_parts": False, "contact_finger_offsets_m": None,
              "contact_thumb_offsets_m": None, "contact_depth_shift": False},
    "per-frame": {"contact_anchor": False, "contact_depth_shift": False},
    "anchored": {"contact_anchor": True, "contact_depth_shift": False},
    "depth-shifted": {"contact_anchor": True, "contact_depth_shift": True},
}


def scores(kp, kw, gt, frames) -> dict:
    """kp [T, 21, 3], kw [T, 21], gt [T, 21, 3] of the contacting hand; frames [T] bool (ground-truth contact)."""
    on = (kw > 0) & frames[:, None]
    d = np.linalg.norm(kp - gt, axis=-1)
    grip = on[:, GRIP]
    return {"median_cm": float(100 * np.median(d[on])) if on.any() else float("nan"),
            "p90_cm": float(100 * np.percentile(d[on], 90)) if on.any() else float("nan"),
            "keypoints_per_frame": float(on[frames].sum(1).mean()),
            "grip_median_cm": float(100 * np.median(d[grip, GRIP])) if grip.any() else float("nan"),
            "grip_frames": float(grip.sum() / max(frames.sum(), 1))}


def run_object(obj: str, runs: Path, overrides: list[str]) -> dict:
    base = runs / obj / "base"
    cfg = config_lib.load_config(CONFIGS / f"{obj}_hoi.yaml", overrides)
    b = bundle_io.load_bundle(base / "generate" / "bundle")
    truth = load_hoi_truth(base / "generate")
    seg = stage1_outputs.load_segmentation(base / "segment")
    poses, _ = stage1_outputs.load_stage1(base / "stage1")
    H, W = b.image_size
    scene = stage1.build_scene(seg, b.K, (H, W), cfg.stage1, cfg.segmentation.binding_radius_m)
    contact = contact_lib.detect_contact_frames(b.hand_keypoints, b.hand_keypoint_conf, seg.part_masks.any(axis=1),
                                                cfg.stage2.contact_conf, cfg.stage2.contact_radius_px)
    model = load_body_model(cfg.body)
    gt = np.asarray(forward_sequence(model, params_from_smplx(model, b.gt.human)).joints)[:, HAND_KEYPOINT_INDEX]
    side = 0 if truth.hand == "left" else 1
    frames = truth.contact_frames
    out = {"contact_frames": int(frames.sum()), "detected_contact_frames": int(contact[:, side].sum())}
    for name, change in LIFTINGS.items():
        c = dataclasses.replace(cfg.stage2, **change)
        kp, kw = stage2_init.contact_keypoints(b, scene, poses, contact, c, cfg.render)
        out[name] = scores(kp[:, side], kw[:, side], gt[:, side], frames)
    g = gt[:, side][frames]
    pose = b.gt.part_poses[frames, 0]
    inv = np.linalg.inv(pose)
    canon = np.einsum("tij,tkj->tki", inv[:, :3, :3], g) + inv[:, None, :3, 3]
    out["gt_rigidity_cm"] = float(100 * np.median(np.linalg.norm(canon - canon.mean(0), axis=-1)))
    out["gt_rigidity_grip_cm"] = float(100 * np.median(np.linalg.norm(canon[:, GRIP] - canon[:, GRIP].mean(0),
                                                                      axis=-1)))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", default="out/bench_interaction")
    ap.add_argument("--objects", default="door,drawer,fridge,lid")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override (repeatable)")
    ap.add_argument("--json", default=str(Path(__file__).resolve().parent / "results" / "contact_keypoints.json"))
    args = ap.parse_args(argv)
    res = {o: run_object(o, Path(args.runs), args.set) for o in args.objects.split(",")}
    cols = ("median_cm", "p90_cm", "keypoints_per_frame", "grip_median_cm", "grip_frames")
    print(f"{'object':<8}{'lifting':<11}" + "".join(f"{c:>20}" for c in cols) + f"{'GT rigidity cm':>16}")
    for o, r in res.items():
        for name in LIFTINGS:
            print(f"{o:<8}{name:<11}" + "".join(f"{r[name][c]:>20.2f}" for c in cols)
                  + f"{r['gt_rigidity_cm']:>16.2f}")
    write_json(Path(args.json), {"runs": args.runs, "overrides": args.set, "objects": res})
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
