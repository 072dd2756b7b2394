"""Lucas-Kanade tracking, grid queries and dense flow against known image motion."""

import cv2
import numpy as np

from arthoi_jax.preprocess.lk_tracker import dense_flow, grid_queries, track_points


def textured(H, W, seed=0):
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (H // 2, W // 2, 3), dtype=np.uint8)
    return cv2.GaussianBlur(cv2.resize(small, (W, H), interpolation=cv2.INTER_CUBIC), (0, 0), 1.2)


def translated(base, shifts):
    """Frames whose content moves by shifts[t] = (dx, dy) pixels (subpixel, bicubic)."""
    H, W = base.shape[:2]
    return np.stack([cv2.warpAffine(base, np.float64([[1, 0, dx], [0, 1, dy]]), (W, H), flags=cv2.INTER_CUBIC,
                                    borderMode=cv2.BORDER_REFLECT) for dx, dy in shifts])


def test_subpixel_translation_tracked_to_hundredths_of_a_pixel():
    shifts = np.array([[0.7 * t, -0.4 * t] for t in range(6)])
    frames = translated(textured(64, 96), shifts)
    q = grid_queries(np.pad(np.ones((40, 64), bool), ((12, 12), (16, 16))), 8)
    tracks, vis = track_points(frames, q)
    assert tracks.shape == (6, len(q), 2) and tracks.dtype == np.float32 and vis.dtype == bool
    np.testing.assert_array_equal(tracks[0], q)
    assert vis.all()
    err = np.linalg.norm(tracks - (q[None] + shifts[:, None]), axis=-1)
    # The bicubic warp of the texture itself biases fractional shifts by a few hundredths of a pixel.
    assert np.median(err) < 0.06 and err.max() < 0.1, (np.median(err), err.max())


def test_matches_opencv_with_half_pixel_shift():
    """Our pixel centres are at +0.5, OpenCV's at integers: one LK step on q - 0.5 plus 0.5 (the frame-to-frame
    step alone, without the re-anchoring refinement)."""
    frames = translated(textured(48, 64, seed=3), [(0, 0), (1.3, 0.6)])
    q = np.array([[20.5, 20.5], [31.25, 18.0], [40.5, 30.75]], np.float32)
    tracks, _ = track_points(frames, q, window_px=21, levels=3, anchor=False)
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 40, 0.003)
    ref, _, _ = cv2.calcOpticalFlowPyrLK(grey[0], grey[1], (q - 0.5).reshape(-1, 1, 2), None, winSize=(21, 21),
                                         maxLevel=3, criteria=criteria)
    np.testing.assert_allclose(tracks[1], ref.reshape(-1, 2) + 0.5, atol=1e-5)


def test_occluded_points_lose_visibility_and_keep_last_position():
    base = textured(64, 96, seed=1)
    frames = translated(base, [(0, 0), (0.5, 0), (1.0, 0), (1.5, 0)])
    frames[2:, 20:44, 30:60] = textured(24, 30, seed=9)  # a different patch covers the points from frame 2
    q = np.array([[45.5, 32.5], [10.5, 10.5]], np.float32)
    tracks, vis = track_points(frames, q)
    assert vis[:, 1].all() and vis[:2, 0].all()
    assert not vis[2:, 0].any()
    np.testing.assert_array_equal(tracks[3, 0], tracks[1, 0])


def test_points_leaving_the_image_become_invisible():
    shifts = [(0, 0), (3, 0), (6, 0), (9, 0)]
    frames = translated(textured(48, 64, seed=2), shifts)
    q = np.array([[58.5, 24.5], [20.5, 24.5]], np.float32)
    _, vis = track_points(frames, q)
    assert vis[:, 1].all()
    assert not vis[-1, 0]


def test_grid_queries_inside_mask_centres_and_cap():
    mask = np.zeros((20, 30), bool)
    mask[4:12, 6:22] = True
    q = grid_queries(mask, 4)
    assert np.all((q - 0.5) % 1 == 0), "queries sit on pixel centres"
    assert mask[(q[:, 1]).astype(int), (q[:, 0]).astype(int)].all()
    assert len(q) == 2 * 4  # rows 6, 10; columns 6, 10, 14, 18
    capped = grid_queries(mask, 1, max_points=10)
    assert len(capped) == 10 and mask[capped[:, 1].astype(int), capped[:, 0].astype(int)].all()
    eroded = grid_queries(mask, 1, erode_px=2)
    assert eroded[:, 0].min() >= 8.5 and eroded[:, 1].max() <= 9.5
    assert grid_queries(np.zeros((20, 30), bool), 4, allow_empty=True).shape == (0, 2)


def test_dense_flow_recovers_translation():
    frames = translated(textured(64, 96, seed=4), [(0, 0), (2.0, -1.0)])
    flow = dense_flow(frames[0], frames[1])
    assert flow.shape == (64, 96, 2) and flow.dtype == np.float32
    med = np.median(flow[16:48, 16:80].reshape(-1, 2), axis=0)
    np.testing.assert_allclose(med, [2.0, -1.0], atol=0.15)
