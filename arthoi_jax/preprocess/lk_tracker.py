"""Weight-free point tracking: OpenCV pyramidal Lucas-Kanade, or chained DIS dense flow, each with a
forward-backward check; and the DIS dense flow helper.

Coordinates in and out are the bundle's (pixel centres at +0.5); OpenCV puts pixel centres at integers, so
points are shifted by -0.5 on the way in and +0.5 on the way out, and nowhere else.

A track is followed frame to frame (t-1 -> t). It ends, and is invisible from then on, when LK fails, when
tracking the new position back to t-1 misses the old one by more than `fb_threshold_px` (drift breaks this
round trip), when the matched windows differ by more than `max_patch_error` grey levels on average after gain
and bias compensation (an occluder sliding over the point keeps the round trip consistent but changes the
window's content; a part turning in the light only changes its brightness), or when it leaves the image. An ended
track keeps its last position. LK (`track_points`) then re-anchors every frame to frame 0 (`_Template`), so the
small errors of the frame-to-frame steps do not add up: on the synthetic door, fridge and cabinet this halves the
median endpoint error (benchmarks/tracking.py, lk vs lk_chain). `warp="affine"` instead follows each track's
frame-0 window with an affine warp refined against frame 0 (preprocess/affine_lk.py), for surfaces that turn or
scale (foreshortening), which a square window stops matching.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy.interpolate import LinearNDInterpolator
from scipy.spatial import cKDTree

from arthoi_jax.errors import InputError


def check_frames(frames: np.ndarray, name: str = "frames") -> None:
    """Raises InputError unless frames is [T, H, W, 3] uint8 with T >= 2."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise InputError(f"{name}: expected [T, H, W, 3] uint8 RGB, got {list(frames.shape)} {frames.dtype}")
    if frames.shape[0] < 2:
        raise InputError(f"{name}: need at least 2 frames to track, got T={frames.shape[0]}")


def check_points(points: np.ndarray, height: int, width: int, name: str) -> np.ndarray:
    """[N, 2] (x, y) finite and inside the image [0, W] x [0, H], else InputError naming the first bad point."""
    points = np.asarray(points, dtype=np.float64)
    if points.size == 0:
        return points.reshape(0, 2)
    if points.ndim != 2 or points.shape[1] != 2:
        raise InputError(f"{name}: expected an [N, 2] array of (x, y) pixels, got shape {list(points.shape)}")
    bad = ~np.isfinite(points).all(axis=1)
    bad |= (points[:, 0] < 0) | (points[:, 0] > width) | (points[:, 1] < 0) | (points[:, 1] > height)
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(f"{name}: point {i} at (x, y) = {points[i].tolist()} lies outside the {width}x{height} "
                         f"image (expected 0 <= x <= {width}, 0 <= y <= {height}, pixel centres at +0.5)")
    return points


def track_points(frames: np.ndarray, queries: np.ndarray, *, window_px: int = 21, levels: int = 3,
                 fb_threshold_px: float = 1.0, max_patch_error: float = 10.0,
                 anchor: bool = True, warp: str = "translation",
                 fb_max_scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Tracks frame-0 points through a video.

    Args:
      frames: [T, H, W, 3] uint8 RGB, T >= 2.
      queries: [N, 2] (x, y) pixels at frame 0.
      window_px: LK window side in pixels; levels: pyramid levels above the full image.
      fb_threshold_px: largest forward-backward round-trip error of a visible point, where the surface around it
        is seen at its frame-0 scale.
      max_patch_error: largest mean absolute grey-level difference (0..255) between the matched windows (at most
        ANCHOR_WINDOW_PX wide) after matching their mean and contrast (`_patch_error`).
      fb_max_scale: where the tracks' local map from frame 0 squeezes the surface by s > 1 (`_foreshortening`,
        capped at fb_max_scale; a door turning away), the fb threshold grows by s^2 and max_patch_error by s
        (translation warp only): on cabinet2's first door both tests end most tracks at ~40 deg (s ~ 1.3-1.5);
        at 2 twice as many last to the end (24 of 92), though some drift (benchmark in config.py). 1: fixed.
      anchor: refine every frame's positions against frame 0 (`_Template`) so errors do not add up.
      warp: "translation" (the above) or "affine": every track's frame-0 window follows an affine warp refined
        against frame 0 (`affine_lk.track_points_affine`; `anchor` is then unused).
    Returns:
      tracks [T, N, 2] float32 (x, y) pixels (row 0 equals the queries) and visibility [T, N] bool.
    Raises:
      InputError: malformed frames, a query outside the image, or an unknown warp.
    """
    check_frames(frames)
    T, H, W, _ = frames.shape
    q = check_points(queries, H, W, "queries")
    if warp not in ("translation", "affine"):
        raise InputError(f"warp: expected 'translation' or 'affine', got {warp!r}")
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    if warp == "affine":
        from arthoi_jax.preprocess.affine_lk import track_points_affine  # it imports this module's helpers

        tracks, vis = track_points_affine(grey, (q - 0.5).astype(np.float32), window_px=window_px, levels=levels,
                                          fb_threshold_px=fb_threshold_px, max_patch_error=max_patch_error)
        return tracks + np.float32(0.5), vis
    lk = dict(winSize=(window_px, window_px), maxLevel=levels,
              criteria=(cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 40, 0.003))
    q0 = (q - 0.5).astype(np.float32)  # OpenCV coordinates
    pos = q0.copy()
    tracks = np.empty((T, len(q), 2), np.float32)
    vis = np.zeros((T, len(q)), bool)
    tracks[0], vis[0] = pos, True
    alive = np.ones(len(q), bool)
    template = _Template(grey[0], q0, window_px) if anchor and len(q) >= 3 else None
    for t in range(1, T):
        idx = np.flatnonzero(alive)
        if idx.size:
            squeeze = 1.0
            if fb_max_scale > 1.0 and idx.size >= 3:
                squeeze = np.minimum(_foreshortening(q0[idx], pos[idx]), fb_max_scale)
            p0 = pos[idx].reshape(-1, 1, 2)
            p1, st1, _ = cv2.calcOpticalFlowPyrLK(grey[t - 1], grey[t], p0, None, **lk)
            back, st2, _ = cv2.calcOpticalFlowPyrLK(grey[t], grey[t - 1], p1, None, **lk)
            p1, back = p1.reshape(-1, 2), back.reshape(-1, 2)
            fb = np.linalg.norm(back - p0.reshape(-1, 2), axis=1)
            ok = (st1.ravel() == 1) & (st2.ravel() == 1) & (fb <= fb_threshold_px * squeeze**2) & _inside(p1, H, W)
            patch = min(window_px, ANCHOR_WINDOW_PX)  # a large window straddles the boundary of a small part
            ok &= _patch_error(grey[t - 1], p0.reshape(-1, 2), grey[t], p1, patch) <= max_patch_error * squeeze
            pos[idx[ok]] = p1[ok]
            alive[idx[~ok]] = False
        if template is not None and alive.sum() >= 3:
            refined, found = template.match(grey[t], pos, alive, levels, fb_threshold_px)
            found &= _inside(refined, H, W) & alive & (np.linalg.norm(refined - pos, axis=1) <= REANCHOR_MAX_PX)
            pos[found] = refined[found]
        tracks[t], vis[t] = pos, alive
    return tracks + np.float32(0.5), vis


# Re-anchoring (_Template): LK window of the match against frame 0 (small: the estimate is close, and a small
# window straddles fewer part boundaries); largest correction accepted per frame; the local motion model's
# neighbour weighting and ridge (_LocalAffine).
ANCHOR_WINDOW_PX = 11
REANCHOR_MAX_PX = 2.0
MOTION_SIGMA_PX = 1.0
MOTION_GRADIENT = 0.2  # px of displacement difference per px of distance a smooth (rigid, perspective) motion makes
AFFINE_RIDGE = 10.0


def _foreshortening(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """How much the surface around each track shrinks from frame 0 (src [n, 2], n >= 3) to its current position
    (dst [n, 2]) -> [n] >= 1: 1 / the smallest singular value of the local affine map's Jacobian (`_LocalAffine`,
    so one track's own error does not count; its motion-similarity weights make it underestimate a strong squeeze:
    2 on a 6 px grid reads 1.55-1.73). A window on a surface seen at a grazing angle holds less texture
    along the squeezed direction, and LK's round trip on it errs by more, though the track does not drift."""
    jac = _LocalAffine(src, dst).jacobian(src)
    return 1.0 / np.clip(np.linalg.svd(jac, compute_uv=False)[:, -1], 1e-3, 1.0)


def _inside(p: np.ndarray, H: int, W: int) -> np.ndarray:
    """[N, 2] OpenCV-convention positions -> [N] bool, finite and inside the image."""
    x, y = p[:, 0], p[:, 1]
    return np.isfinite(p).all(1) & (x >= -0.5) & (x <= W - 0.5) & (y >= -0.5) & (y <= H - 0.5)


def _patch_error(grey_a: np.ndarray, pa: np.ndarray, grey_b: np.ndarray, pb: np.ndarray,
                 window_px: int) -> np.ndarray:
    """Mean absolute grey-level difference of the windows around pa in a and pb in b ([N, 2] OpenCV convention)
    after matching b's window to a's mean and standard deviation -> [N]. Gain and bias compensated: a part turning
    in the light changes its brightness by 10 grey levels a frame (synthetic fridge, cabinet), an occluder
    changes the pattern."""
    r = (window_px - 1) / 2.0
    off = np.linspace(-r, r, window_px, dtype=np.float32)
    wins = []
    for img, p in ((grey_a, pa), (grey_b, pb)):
        mx = (p[:, 0, None, None] + off[None, None, :]).repeat(window_px, 1).reshape(-1, window_px)
        my = (p[:, 1, None, None] + off[None, :, None]).repeat(window_px, 2).reshape(-1, window_px)
        w = cv2.remap(img.astype(np.float32), mx.astype(np.float32), my.astype(np.float32), cv2.INTER_LINEAR,
                      borderMode=cv2.BORDER_REPLICATE)
        wins.append(w.reshape(len(p), -1))
    return window_difference(*wins)


def window_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean absolute difference of windows a, b [N, P] (grey levels) after matching b's mean and standard
    deviation to a's -> [N]."""
    sa, sb = a.std(1, keepdims=True), b.std(1, keepdims=True)
    b = (b - b.mean(1, keepdims=True)) * (sa / np.maximum(sb, 1e-3)) + a.mean(1, keepdims=True)
    return np.abs(a - b).mean(1)


def _normalise(grey: np.ndarray, sigma: float = 4.0) -> np.ndarray:
    """Local contrast normalisation -> uint8 (LK needs 8 bits): a part turning towards or away from the light
    changes its brightness and contrast, which plain LK takes for motion when matched against frame 0."""
    g = grey.astype(np.float32)
    mu = cv2.GaussianBlur(g, (0, 0), sigma)
    var = cv2.GaussianBlur(g * g, (0, 0), sigma) - mu * mu
    n = (g - mu) / np.sqrt(np.maximum(var, 0.0) + 16.0)  # + (4 grey levels)^2: flat areas' noise stays small
    return np.clip(n * 40.0 + 128.0, 0, 255).astype(np.uint8)


class _Template:
    """Frame 0 as the reference every frame is matched against (drift correction for `track_points`).

    For frame t, the current estimates of the alive tracks, smoothed by `_LocalAffine`, define a piecewise-affine
    map from frame 0 to frame t (linear over the Delaunay triangles of their frame-0 positions, the local affine
    map outside them). Frame t is resampled through it into frame 0's geometry, where a tracked surface looks as
    in frame 0 up to the estimate's error (a door turned by 60 deg is foreshortened, unwarped here), and both are
    contrast-normalised (`_normalise`). LK from frame 0 to the resampled frame gives the residual shift; the
    refined position is the map at the shifted point. A refinement that fails the forward-backward check or moves
    the estimate by more than REANCHOR_MAX_PX is dropped (the frame-to-frame estimate is kept).
    """

    def __init__(self, grey0: np.ndarray, q0: np.ndarray, window_px: int):
        H, W = grey0.shape
        m = 2 * window_px  # a window around every query stays inside the crop
        self.x0 = int(max(np.floor(q0[:, 0].min()) - m, 0))
        self.y0 = int(max(np.floor(q0[:, 1].min()) - m, 0))
        x1, y1 = int(min(np.ceil(q0[:, 0].max()) + m, W - 1)), int(min(np.ceil(q0[:, 1].max()) + m, H - 1))
        ys, xs = np.mgrid[self.y0:y1 + 1, self.x0:x1 + 1]
        self.grid = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float32)
        self.shape = ys.shape
        self.ref = np.ascontiguousarray(_normalise(grey0)[self.y0:y1 + 1, self.x0:x1 + 1])
        self.q0 = q0
        self.qc = (q0 - np.array([self.x0, self.y0], np.float32)).reshape(-1, 1, 2)  # crop coordinates
        self.win = (ANCHOR_WINDOW_PX, ANCHOR_WINDOW_PX)

    def match(self, grey: np.ndarray, pos: np.ndarray, alive: np.ndarray, levels: int, fb_px: float):
        """grey: [H, W] frame t; pos: [N, 2] current estimates (OpenCV convention), trusted where alive ->
        (refined positions [N, 2], found [N] bool)."""
        src = self.q0[alive]
        local = _LocalAffine(src, pos[alive])
        d = LinearNDInterpolator(src, local(src))(self.grid)
        holes = ~np.isfinite(d).all(1)
        if holes.any():
            d[holes] = local(self.grid[holes])
        mapx = (self.grid[:, 0] + d[:, 0]).reshape(self.shape).astype(np.float32)
        mapy = (self.grid[:, 1] + d[:, 1]).reshape(self.shape).astype(np.float32)
        warped = _normalise(cv2.remap(grey, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))
        lk = dict(winSize=self.win, maxLevel=min(levels, 1),
                  criteria=(cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 40, 0.003))
        p1, st1, _ = cv2.calcOpticalFlowPyrLK(self.ref, warped, self.qc, None, **lk)
        back, st2, _ = cv2.calcOpticalFlowPyrLK(warped, self.ref, p1, None, **lk)
        p1, back = p1.reshape(-1, 2), back.reshape(-1, 2)
        fb = np.linalg.norm(back - self.qc.reshape(-1, 2), axis=1)
        found = (st1.ravel() == 1) & (st2.ravel() == 1) & (fb <= fb_px)
        found &= (p1[:, 0] >= 0) & (p1[:, 0] <= self.shape[1] - 1) & (p1[:, 1] >= 0) & (p1[:, 1] <= self.shape[0] - 1)
        p1 = np.where(found[:, None], p1, self.qc.reshape(-1, 2))
        xy = np.stack([_bilinear(mapx, p1), _bilinear(mapy, p1)], 1)
        return np.where(found[:, None], xy, pos).astype(np.float32), found


class _LocalAffine:
    """The motion field of the tracks src [n, 2] -> dst [n, 2] as seen around each track: a weighted
    least-squares affine map of the displacements of its k nearest tracks, weighted by how close their
    displacement is to its own (Gaussian, MOTION_SIGMA_PX plus MOTION_GRADIENT per pixel of distance) so a
    neighbour across a part boundary counts little, with a weak pull (AFFINE_RIDGE) of the linear part towards a
    pure translation where the neighbours are few or collinear. Building the warp through these smoothed
    positions, not the tracks' own, keeps one track's error out of its window (matched against frame 0, only the
    smooth part of the error would be seen and corrected, the rest would add up frame after frame); outside the
    tracks' convex hull it extrapolates the nearest track's map (a constant fill shears the windows of the tracks
    on the hull)."""

    def __init__(self, src: np.ndarray, dst: np.ndarray, k: int = 8):
        self.tree, self.src = cKDTree(src), src
        k = min(k, len(src))
        _, nbr = self.tree.query(src, k=k)
        disp = dst - src
        rel = src[nbr] - src[:, None]  # [n, k, 2]
        X = np.concatenate([rel, np.ones((len(src), k, 1))], -1)  # [n, k, 3]
        sigma2 = MOTION_SIGMA_PX ** 2 + (MOTION_GRADIENT * np.linalg.norm(rel, axis=-1)) ** 2
        w = np.exp(-np.sum((disp[nbr] - disp[:, None]) ** 2, -1) / (2 * sigma2))  # [n, k]
        XtX = np.einsum("nk,nki,nkj->nij", w, X, X) + np.diag([AFFINE_RIDGE, AFFINE_RIDGE, 1e-9])
        self.A = np.linalg.solve(XtX, np.einsum("nk,nki,nkj->nij", w, X, disp[nbr]))  # [n, 3, 2]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Displacements [Q, 2] at points x [Q, 2]: the affine map of the nearest track."""
        _, j = self.tree.query(x)
        return np.einsum("qi,qij->qj", np.concatenate([x - self.src[j], np.ones((len(x), 1))], 1), self.A[j])

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        """d(position + displacement)/d position [Q, 2, 2] at points x [Q, 2], of the nearest track's map."""
        _, j = self.tree.query(x)
        return np.eye(2) + np.swapaxes(self.A[j, :2], 1, 2)


def _bilinear(img: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """img [h, w] float32 sampled at [N, 2] (x, y) array positions -> [N]."""
    return cv2.remap(img, xy[:, 0:1].astype(np.float32), xy[:, 1:2].astype(np.float32), cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE).ravel()


def corner_ratio(grey: np.ndarray, points: np.ndarray, window_px: int = ANCHOR_WINDOW_PX) -> np.ndarray:
    """How well a window pins a point in both directions: the smaller over the larger eigenvalue of the structure
    tensor (sum over the window_px x window_px box of the grey-level gradient outer products) -> [N] in [0, 1].

    grey: [H, W] uint8 or float; points: [N, 2] (x, y) pixels, bundle convention (centres at +0.5). 0 on an edge
    or stripe (the aperture problem: a window slides along it), 1 where gradients point every way; 0 on a flat
    window. The default window is the re-anchoring match's.
    """
    g = np.asarray(grey, np.float32)
    gx, gy = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)
    box = lambda x: cv2.boxFilter(x, -1, (window_px, window_px), normalize=False, borderType=cv2.BORDER_REFLECT)
    jxx, jxy, jyy = box(gx * gx), box(gx * gy), box(gy * gy)
    p = np.asarray(points, np.float64).reshape(-1, 2)
    cols = np.clip(np.floor(p[:, 0]).astype(int), 0, g.shape[1] - 1)
    rows = np.clip(np.floor(p[:, 1]).astype(int), 0, g.shape[0] - 1)
    a, b, c = (j[rows, cols].astype(np.float64) for j in (jxx, jxy, jyy))
    half_tr, root = (a + c) / 2, np.sqrt(((a - c) / 2) ** 2 + b**2)
    lo, hi = np.maximum(half_tr - root, 0.0), half_tr + root
    return np.where(hi > 1e-9, lo / np.maximum(hi, 1e-9), 0.0)


def grid_queries(mask: np.ndarray, step_px: int, *, max_points: int | None = None,
                 erode_px: int = 0, allow_empty: bool = False) -> np.ndarray:
    """Pixel centres on a regular grid inside a mask: [N, 2] float32 (x, y), row-major order.

    Args:
      mask: [H, W] bool; step_px: grid spacing; max_points: keep this many, evenly spread, when there are more;
      erode_px: first shrink the mask by this many pixels, so points avoid its boundary (mixed pixels track badly).
      allow_empty: return [0, 2] instead of raising when no grid point falls inside the mask.
    Raises:
      InputError: no grid point falls inside the (eroded) mask and `allow_empty` is False.
    """
    mask = np.asarray(mask, bool)
    if mask.ndim != 2:
        raise InputError(f"mask: expected [H, W] bool, got shape {list(mask.shape)}")
    if erode_px > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * erode_px + 1, 2 * erode_px + 1))
        eroded = cv2.erode(mask.astype(np.uint8), kernel).astype(bool)
        mask = eroded if eroded.any() else mask  # a thin mask keeps its points rather than losing all
    off = step_px // 2
    ys, xs = np.mgrid[off:mask.shape[0]:step_px, off:mask.shape[1]:step_px]
    keep = mask[ys, xs]
    if not keep.any() and allow_empty:
        return np.zeros((0, 2), np.float32)
    if not keep.any():
        raise InputError(f"mask: no grid point with step {step_px} px falls inside the mask "
                         f"({int(mask.sum())} pixels); lower preprocess.grid_step_px or check the mask")
    pts = np.stack([xs[keep], ys[keep]], axis=1).astype(np.float32) + 0.5
    if max_points is not None and len(pts) > max_points:
        pts = pts[np.linspace(0, len(pts) - 1, max_points).round().astype(int)]
    return pts


def _dis() -> cv2.DISOpticalFlow:
    # MEDIUM preset refined down to full resolution (finest scale 0) with more variational iterations:
    # measured on the synthetic scenes (benchmarks/tracking.py) this halves the endpoint error of the preset.
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    dis.setFinestScale(0)
    dis.setVariationalRefinementIterations(25)
    return dis


def dense_flow(frame_a: np.ndarray, frame_b: np.ndarray) -> np.ndarray:
    """DIS optical flow from a to b: [H, W, 2] float32, the (dx, dy) displacement of each pixel of a in pixels.

    frame_a, frame_b: [H, W, 3] uint8 RGB. A displacement is the same in OpenCV's and our pixel convention.
    """
    a = cv2.cvtColor(np.ascontiguousarray(frame_a), cv2.COLOR_RGB2GRAY)
    b = cv2.cvtColor(np.ascontiguousarray(frame_b), cv2.COLOR_RGB2GRAY)
    return _dis().calc(a, b, None)


def _sample(flow: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Bilinear sample of an [H, W, 2] flow at [N, 2] OpenCV-convention positions -> [N, 2]."""
    x, y = pos[:, 0:1].astype(np.float32), pos[:, 1:2].astype(np.float32)
    return np.concatenate([cv2.remap(flow[..., k], x, y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                           for k in range(2)], axis=1)


def track_points_dense(frames: np.ndarray, queries: np.ndarray, *,
                       fb_threshold_px: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Tracks frame-0 points by chaining DIS dense flow frame to frame, with the same forward-backward rule
    as `track_points` (the backward flow is a second dense field, sampled where the point landed).

    Dense variational flow keeps motion boundaries sharper than LK's square windows, which straddle them on
    thin parts (door frames, handles). Same arguments, returns and errors as `track_points`.
    """
    check_frames(frames)
    T, H, W, _ = frames.shape
    q = check_points(queries, H, W, "queries")
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    dis = _dis()
    pos = (q - 0.5).astype(np.float32)
    tracks = np.empty((T, len(q), 2), np.float32)
    vis = np.zeros((T, len(q)), bool)
    tracks[0], vis[0] = pos, True
    alive = np.ones(len(q), bool)
    for t in range(1, T):
        forward = dis.calc(grey[t - 1], grey[t], None)
        backward = dis.calc(grey[t], grey[t - 1], None)
        p1 = pos + _sample(forward, pos)
        fb = np.linalg.norm(p1 + _sample(backward, p1) - pos, axis=1)
        inside = (p1[:, 0] >= -0.5) & (p1[:, 0] <= W - 0.5) & (p1[:, 1] >= -0.5) & (p1[:, 1] <= H - 0.5)
        ok = alive & (fb <= fb_threshold_px) & inside & np.isfinite(p1).all(1)
        pos[ok] = p1[ok]
        alive = ok
        tracks[t], vis[t] = pos, alive
    return tracks + np.float32(0.5), vis
