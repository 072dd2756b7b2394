"""The LK tracker's drift correction (re-anchoring to frame 0) and its gain-compensated patch test."""

import cv2
import numpy as np

from arthoi_jax.preprocess.lk_tracker import grid_queries, track_points
from tests.test_preprocess_lk import textured, translated


def turning_plane(T=12, H=96, W=128, total_deg=40.0, seed=4):
    """A fronto-parallel textured plane at 2 m turning about a vertical axis through its left third, like a door:
    frames [T, H, W, 3] and the homographies [T, 3, 3] (OpenCV pixel convention) taking frame 0 to frame t."""
    base = textured(H, W, seed=seed)
    K = np.array([[120.0, 0, W / 2], [0, 120.0, H / 2], [0, 0, 1]])
    d, n = 2.0, np.array([0.0, 0.0, 1.0])
    pivot = np.array([-0.4, 0.0, d])
    Hs, frames = [], []
    for t in range(T):
        R = cv2.Rodrigues(np.array([0.0, np.deg2rad(total_deg) * t / (T - 1), 0.0]))[0]
        Hm = K @ (R + np.outer(pivot - R @ pivot, n) / d) @ np.linalg.inv(K)
        Hs.append(Hm / Hm[2, 2])
        frames.append(cv2.warpPerspective(base, Hm, (W, H), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT))
    return np.stack(frames), np.stack(Hs)


def _apply(Hm, pts):
    p = np.c_[pts, np.ones(len(pts))] @ Hm.T
    return p[:, :2] / p[:, 2:]


def test_anchoring_removes_drift_on_a_turning_plane():
    frames, Hs = turning_plane()
    mask = np.zeros(frames.shape[1:3], bool)
    mask[24:72, 40:88] = True  # stays inside the plane's image over the sequence
    q = grid_queries(mask, 6)
    errs = {}
    for anchor in (False, True):
        tracks, vis = track_points(frames, q, anchor=anchor)
        gt = _apply(Hs[-1], q - 0.5) + 0.5
        errs[anchor] = np.linalg.norm(tracks[-1] - gt, axis=-1)[vis[-1]]
        assert vis[-1].mean() > 0.9, (anchor, vis[-1].mean())
    # Measured: chained LK 0.36 px median at the last frame, anchored 0.06 px.
    assert np.median(errs[True]) < 0.6 * np.median(errs[False]), (np.median(errs[True]), np.median(errs[False]))
    assert np.median(errs[True]) < 0.1 and np.percentile(errs[True], 90) < 0.25, errs[True]


def test_anchored_translation_stays_subpixel():
    shifts = np.array([[0.7 * t, -0.4 * t] for t in range(6)])
    frames = translated(textured(64, 96), shifts)
    q = grid_queries(np.pad(np.ones((40, 64), bool), ((12, 12), (16, 16))), 8)
    tracks, vis = track_points(frames, q)
    assert vis.all()
    err = np.linalg.norm(tracks - (q[None] + shifts[:, None]), axis=-1)
    assert np.median(err) < 0.06 and err.max() < 0.15, (np.median(err), err.max())


def test_brightness_change_keeps_tracks_an_occluder_ends_them():
    """A part turning in the light gets 12 grey levels brighter and 15% more contrasted per frame: the
    gain-compensated patch test keeps its tracks; a different texture sliding over a point still ends it."""
    frames = translated(textured(64, 96, seed=1), [(0.5 * t, 0) for t in range(5)]).astype(np.float32)
    frames = np.stack([np.clip((f - 128) * 1.15 ** t + 128 + 12 * t, 0, 255) for t, f in enumerate(frames)])
    frames = frames.astype(np.uint8)
    frames[3:, 20:44, 30:60] = textured(24, 30, seed=9)
    q = np.array([[45.5, 32.5], [10.5, 10.5], [80.5, 50.5], [70.5, 12.5]], np.float32)
    for anchor in (False, True):
        _, vis = track_points(frames, q, anchor=anchor, max_patch_error=10.0)
        assert vis[:, 1:].all(), (anchor, vis)
        assert vis[:3, 0].all() and not vis[3:, 0].any(), (anchor, vis[:, 0])
