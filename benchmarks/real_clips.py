"""Human perception and camera motion on the shared real clips (Kling-generated, moving camera).

For each clip, at --width px (all frames):
  body_frames       frames where MediaPipe Pose finds the person, of T
  body_conf         mean landmark confidence (visibility) over those frames and all 33 landmarks
  hand_frames       frames with at least one hand found; left/right: frames per hand
  contact           fraction of (frame, foot joint) labelled as foot contact (camera motion compensated)
  cam_rot_max_deg   largest camera rotation from frame 0 over the clip; cam_rot_end_deg at the last frame
  cam_jitter_deg    median |second difference| of that rotation angle over frames (0 for a smooth estimate)
  cam_methods       how many frames used the essential-matrix / pure-rotation model; cam_inliers_min
  *_rotmodel        the same with model="rotation" (no bundle adjustment: smoother when depth is a guess)
  perception_ratio  MediaPipe time per frame / LK tracker time per frame (same frames, same background grid)
  camera_ratio      camera-motion estimation time per frame / LK tracker time per frame

The clips come without depth: camera motion uses a constant 5 m frame-0 depth for every background point with a
loose prior (depth_rel_sigma 1.0), so rotations are meaningful and translations are only in units of that guess.
Background = outside the person mask (dilated); the parked truck and bench are static, so they count as background.

  python -m benchmarks.real_clips [--width 512] [--out out/benchmarks/real_clips.json]   (from the repo root)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from arthoi_jax.io.outputs import write_json
from arthoi_jax.io.video import read_video
from arthoi_jax.preprocess.camera_motion import (
    background_mask,
    drop_foreground,
    estimate_camera_motion,
)
from arthoi_jax.preprocess.foot_contact import foot_contact_from_landmarks
from arthoi_jax.preprocess.lk_tracker import grid_queries, track_points
from arthoi_jax.preprocess.mediapipe_human import perceive_human

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
CLIPS = ("truck", "bicycle")
ASSUMED_DEPTH_M = 5.0
FOV_X_DEG = 50.0  # the clips state no intrinsics; a common field of view for generated video


def measure(name: str, width: int) -> dict:
    video = read_video(REAL / f"{name}_kling.mp4", width=width)
    frames = video.frames
    T, H, W, _ = frames.shape
    f = 0.5 * W / np.tan(np.radians(FOV_X_DEG) / 2)
    K = np.array([[f, 0, W / 2], [0, f, H / 2], [0, 0, 1]])

    t0 = time.perf_counter()
    p = perceive_human(frames)
    t_perception = time.perf_counter() - t0

    no_object = np.zeros_like(p.person_mask)
    queries = grid_queries(background_mask(p.person_mask[0], no_object[0], 8), max(8, width // 48), max_points=1500)
    t0 = time.perf_counter()
    tracks, vis = track_points(frames, queries)
    t_lk = time.perf_counter() - t0
    vis = drop_foreground(tracks, vis, p.person_mask, no_object, 8)

    t0 = time.perf_counter()
    cm = estimate_camera_motion(tracks, vis, K, np.full(len(queries), ASSUMED_DEPTH_M), depth_rel_sigma=1.0)
    t_cam = time.perf_counter() - t0
    rot = estimate_camera_motion(tracks, vis, K, np.full(len(queries), ASSUMED_DEPTH_M), model="rotation")

    contact = foot_contact_from_landmarks(p.body_landmarks, p.body_conf, p.body_found, video.fps,
                                          background_tracks=tracks, background_visibility=vis)
    found = p.body_found
    return {
        "clip": name, "frames": T, "size": f"{W}x{H}", "fps": video.fps,
        "body_frames": int(found.sum()),
        "body_conf": float(p.body_conf[found].mean()) if found.any() else 0.0,
        "hand_frames": int(p.hand_found.any(axis=1).sum()),
        "left_hand_frames": int(p.hand_found[:, 0].sum()), "right_hand_frames": int(p.hand_found[:, 1].sum()),
        "contact": float(contact.mean()),
        "background_tracks": len(queries), "tracks_kept_last_frame": int(vis[-1].sum()),
        "cam_rot_max_deg": float(cm.rotation_deg.max()), "cam_rot_end_deg": float(cm.rotation_deg[-1]),
        "cam_jitter_deg": float(np.median(np.abs(np.diff(cm.rotation_deg, 2)))),
        "cam_rot_end_deg_rotmodel": float(rot.rotation_deg[-1]),
        "cam_jitter_deg_rotmodel": float(np.median(np.abs(np.diff(rot.rotation_deg, 2)))),
        "cam_rot_deg_per_frame": [round(float(r), 3) for r in cm.rotation_deg],
        "cam_translation_end_depth_units": float(cm.translation_m[-1] / ASSUMED_DEPTH_M),
        "cam_methods": {m: cm.method.count(m) for m in ("essential", "rotation")},
        "cam_inliers_min": int(cm.num_inliers[1:].min()),
        "seconds_perception": t_perception, "seconds_lk": t_lk, "seconds_camera": t_cam,
        "perception_ratio": t_perception / t_lk, "camera_ratio": t_cam / t_lk,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=512, help="frames are resized to this width (px)")
    parser.add_argument("--clips", nargs="*", default=list(CLIPS))
    parser.add_argument("--out", default=None, help="write the rows as JSON here")
    args = parser.parse_args(argv)
    rows = [measure(name, args.width) for name in args.clips]
    print(f"{'clip':<8} {'body':>7} {'conf':>5} {'hands':>7} {'L/R':>7} {'contact':>7} {'rot max':>8} {'rot end':>8} {'jitter':>6} {'rotmodel end/jit':>16} "
          f"{'E/R':>6} {'inl min':>7} {'MP/LK':>6} {'cam/LK':>6}")
    for r in rows:
        print(f"{r['clip']:<8} {r['body_frames']:>3}/{r['frames']:<3} {r['body_conf']:5.3f} "
              f"{r['hand_frames']:>3}/{r['frames']:<3} {r['left_hand_frames']:>3}/{r['right_hand_frames']:<3} "
              f"{r['contact']:7.2f} {r['cam_rot_max_deg']:7.2f}° {r['cam_rot_end_deg']:7.2f}° {r['cam_jitter_deg']:6.2f} "
              f"{r['cam_rot_end_deg_rotmodel']:9.2f}°/{r['cam_jitter_deg_rotmodel']:5.2f} "
              f"{r['cam_methods']['essential']:>2}/{r['cam_methods']['rotation']:<3} {r['cam_inliers_min']:>7} "
              f"{r['perception_ratio']:6.2f} {r['camera_ratio']:6.2f}")
    if args.out:
        write_json(Path(args.out), rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
