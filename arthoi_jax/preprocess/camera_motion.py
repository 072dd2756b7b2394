"""Camera motion from point tracks on the static background (outside the human and object masks), with OpenCV.

Every frame t is estimated directly against frame 0 (no chaining, so no drift), from the tracks visible in both:
  1. A homography with RANSAC gives a first rotation R = SO(3)-projection of K^-1 H K, refined on its inliers by
     least squares of the pure-rotation reprojection error (scipy).
  2. An essential matrix with RANSAC (`findEssentialMat`) + `recoverPose` gives (R, t/|t|) and the inliers that
     are consistent with some rigid motion.
  3. Candidates: the rotation, with t by linear least squares from the metric frame-0 points given R; and, when
     the pure-rotation model's median residual on the rigid inliers (the parallax that translation causes) is at
     least `parallax_px`, the essential-matrix pose with metric scale s = median(d_i / z_i) over inliers (d_i the
     frame-0 depth of track i, `point_depth`; z_i its depth triangulated with |t| = 1). Below that parallax the
     translation direction is noise and E is not tried.
  4. Each candidate is refined by a two-view bundle adjustment on the tracks that fit either model: pose and
     per-point log-depth, robust reprojection error in frame t plus a prior tying each point's depth to its
     measured frame-0 depth (std `depth_rel_sigma` in log-depth); the lower final cost wins (`method` says which
     start won). With depth known, this resolves most of the rotation/translation ambiguity of a small baseline
     (a sideways step looks like a pan).
With `model="rotation"`, steps 2-4 are skipped: the refined rotation and its least-squares translation are used.
Returned poses are world-to-camera with world = camera of frame 0 (T[0] = I): p_t = R p_0 + t, OpenCV axes.

Coordinates: tracks and K are in our continuous pixel convention. The solvers only see pixel coordinates and K
together, so no half-pixel shift is needed (none of them samples an image).

Assumptions, stated: fixed intrinsics (a zoom is absorbed as forward motion), a static background (tracks on
anything that moves must be removed first: `drop_foreground`), depth of frame 0 known at some background tracks.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import cv2
import numpy as np
from scipy.optimize import least_squares
from scipy.spatial.transform import Rotation

from arthoi_jax.errors import InputError
from arthoi_jax.preprocess.lk_tracker import grid_queries, track_points

METHODS = ("reference", "essential", "rotation")
# The final refinement uses at most this many tracks per frame (evenly spread): enough to fix 6 DoF, and cheap.
MAX_REFINE_POINTS = 400


@dataclasses.dataclass(frozen=True)
class CameraMotion:
    T_cam_world: np.ndarray  # [T, 4, 4] float64 world (= camera 0) to camera t, metres, OpenCV axes
    # [T, 3, 3] float64 RANSAC homography of the background tracks, frame-0 pixels -> frame t: exact for a camera
    # rotation or a planar background, the 2D motion to compensate image-space flow with otherwise
    homographies: np.ndarray
    num_inliers: np.ndarray  # [T] int, tracks supporting the chosen model (all tracks at frame 0)
    parallax_px: np.ndarray  # [T] float64, median residual of the pure-rotation model on rigid inliers (0 unless
    #                          model "auto")
    method: tuple[str, ...]  # [T] one of METHODS

    @property
    def rotation_deg(self) -> np.ndarray:
        """[T] rotation angle of camera t relative to camera 0, degrees."""
        return np.degrees(Rotation.from_matrix(self.T_cam_world[:, :3, :3]).magnitude())

    @property
    def translation_m(self) -> np.ndarray:
        """[T] distance of camera t's centre from camera 0's, metres."""
        R, t = self.T_cam_world[:, :3, :3], self.T_cam_world[:, :3, 3]
        return np.linalg.norm(np.einsum("tji,tj->ti", R, t), axis=-1)


def background_mask(human_mask: np.ndarray, object_mask: np.ndarray, margin_px: int = 8) -> np.ndarray:
    """[H, W] bool: pixels at least `margin_px` away from the (union of the) human and object masks."""
    fg = (np.asarray(human_mask, bool) | np.asarray(object_mask, bool)).astype(np.uint8)
    if margin_px > 0:
        fg = cv2.dilate(fg, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin_px + 1, 2 * margin_px + 1)))
    return fg == 0


def drop_foreground(tracks: np.ndarray, visibility: np.ndarray, human_masks: np.ndarray, object_masks: np.ndarray,
                    margin_px: int = 8) -> np.ndarray:
    """visibility [T, N] with points that fall within `margin_px` of a human or object mask at frame t set False."""
    vis = np.asarray(visibility, bool).copy()
    T, H, W = human_masks.shape
    for t in range(T):
        bg = background_mask(human_masks[t], object_masks[t], margin_px)
        ij = np.clip(np.floor(tracks[t][:, ::-1]).astype(int), 0, [H - 1, W - 1])
        vis[t] &= bg[ij[:, 0], ij[:, 1]]
    return vis


def sample_depth(depth: np.ndarray, points: np.ndarray) -> np.ndarray:
    """[N] depth (metres, 0 unknown) at the pixels holding points [N, 2] (x, y); nearest pixel, no blending across
    depth edges."""
    H, W = depth.shape
    ij = np.clip(np.floor(np.asarray(points)[:, ::-1]).astype(int), 0, [H - 1, W - 1])
    return np.asarray(depth, np.float64)[ij[:, 0], ij[:, 1]]


def track_background(frames: np.ndarray, human_masks: np.ndarray, object_masks: np.ndarray, *, step_px: int = 16,
                     margin_px: int = 8, max_points: int | None = 2000) -> tuple[np.ndarray, np.ndarray]:
    """Tracks a grid of frame-0 background points with the LK tracker and drops them where a mask covers them.

    Args:
      frames: [T, H, W, 3] uint8 RGB; human_masks, object_masks: [T, H, W] bool.
    Returns:
      tracks [T, N, 2] float32 (x, y) pixels, visibility [T, N] bool.
    Raises:
      InputError: no background pixel in frame 0 (the masks cover the image), or malformed frames.
    """
    if human_masks.shape != frames.shape[:3] or object_masks.shape != frames.shape[:3]:
        raise InputError(f"camera motion: masks {list(human_masks.shape)} / {list(object_masks.shape)} do not match "
                         f"frames {list(frames.shape[:3])}")
    bg = background_mask(human_masks[0], object_masks[0], margin_px)
    if not bg.any():
        raise InputError("camera motion: the human and object masks leave no background in frame 0 to track")
    queries = grid_queries(bg, step_px, max_points=max_points)
    tracks, vis = track_points(frames, queries)
    return tracks, drop_foreground(tracks, vis, human_masks, object_masks, margin_px)


def camera_motion_from_video(frames: np.ndarray, human_masks: np.ndarray, object_masks: np.ndarray, K: np.ndarray,
                             depth0: np.ndarray, *, step_px: int = 16, margin_px: int = 8,
                             **estimate_kwargs) -> tuple[CameraMotion, np.ndarray, np.ndarray]:
    """`track_background`, then `estimate_camera_motion` with each track's frame-0 depth read from depth0.

    Args:
      frames [T, H, W, 3] uint8; human_masks, object_masks [T, H, W] bool; K [3, 3]; depth0 [H, W] metres
      (0 unknown); estimate_kwargs: passed to `estimate_camera_motion`.
    Returns:
      (CameraMotion, background tracks [T, N, 2], visibility [T, N]); the tracks also serve foot-contact labels.
    """
    tracks, vis = track_background(frames, human_masks, object_masks, step_px=step_px, margin_px=margin_px)
    return estimate_camera_motion(tracks, vis, K, sample_depth(depth0, tracks[0]), **estimate_kwargs), tracks, vis


def estimate_camera_motion(tracks: np.ndarray, visibility: np.ndarray, K: np.ndarray, point_depth: np.ndarray, *,
                           model: Literal["auto", "rotation"] = "auto", ransac_px: float = 1.0,
                           parallax_px: float = 1.0, depth_rel_sigma: float = 0.1,
                           min_points: int = 20) -> CameraMotion:
    """Per-frame camera poses relative to frame 0 from static-background tracks (module docstring).

    Args:
      tracks: [T, N, 2] (x, y) pixels of background points, row 0 at frame 0; visibility: [T, N] bool.
      K: [3, 3] intrinsics in pixels.
      point_depth: [N] metric depth (z, metres) of each track's frame-0 point; 0 where unknown.
      model: "auto" (module docstring) or "rotation": the refined homography rotation and its least-squares
        translation only, no essential matrix and no bundle adjustment. Use "rotation" when the depth is a guess:
        the adjustment then trades rotation for translation along the flat valley of a small baseline (on the
        shared real clips with a constant-depth guess, frame-to-frame rotation jitter 0.04-0.14 deg with "rotation"
        against 0.4-0.55 deg with "auto"), while with good depth "auto" is the accurate one.
      ransac_px: RANSAC inlier threshold in pixels.
      parallax_px: below this median pure-rotation residual, the motion is treated as a rotation.
      depth_rel_sigma: trust in `point_depth`, as the std of its log (0.1: about 10 %) in the final refinement.
      min_points: fewest tracks visible in frames 0 and t (and with known depth) to estimate frame t.
    Returns:
      CameraMotion.
    Raises:
      InputError: inconsistent shapes, or a frame with fewer than `min_points` usable background tracks (the
        message names the frame and the count).
    """
    tracks, visibility = np.asarray(tracks, np.float64), np.asarray(visibility, bool)
    K, point_depth = np.asarray(K, np.float64), np.asarray(point_depth, np.float64)
    if tracks.ndim != 3 or tracks.shape[2] != 2 or visibility.shape != tracks.shape[:2]:
        raise InputError(f"camera motion: expected tracks [T, N, 2] and visibility [T, N], got "
                         f"{list(tracks.shape)} and {list(visibility.shape)}")
    if K.shape != (3, 3) or point_depth.shape != tracks.shape[1:2]:
        raise InputError(f"camera motion: expected K [3, 3] and point_depth [N={tracks.shape[1]}], got "
                         f"{list(K.shape)} and {list(point_depth.shape)}")
    bad = visibility & ~np.isfinite(tracks).all(-1)
    if bad.any():
        t, n = np.argwhere(bad)[0]
        raise InputError(f"camera motion: visible track {n} at frame {t} is not finite ({tracks[t, n].tolist()}); "
                         f"mark it invisible or drop it")
    if model not in ("auto", "rotation"):
        raise InputError(f"camera motion: model must be 'auto' or 'rotation', got {model!r}")
    if min_points < 8:
        raise InputError(f"camera motion: min_points must be >= 8 (the essential and homography solvers' minimum), "
                         f"got {min_points}")
    T = tracks.shape[0]
    poses, Hs = np.tile(np.eye(4), (T, 1, 1)), np.tile(np.eye(3), (T, 1, 1))
    inliers, parallax, methods = np.zeros(T, int), np.zeros(T), ["reference"]
    inliers[0] = int(visibility[0].sum())
    known = point_depth > 0
    if (visibility[0] & known).sum() < min_points:
        raise InputError(f"camera motion: {int((visibility[0] & known).sum())} background tracks have a known "
                         f"frame-0 depth (> 0); need at least {min_points} to fix the metric scale")
    for t in range(1, T):
        common = visibility[0] & visibility[t]
        n = int(common.sum())
        if n < min_points:
            raise InputError(f"camera motion: frame {t} shares only {n} visible background tracks with frame 0 "
                             f"(need at least {min_points}); track more background (smaller grid step, smaller "
                             f"mask margin) or shorten the clip")
        R, tvec, H, inl, par, method = _frame_pose(tracks[0, common], tracks[t, common], point_depth[common], K,
                                                   model, ransac_px, parallax_px, depth_rel_sigma, min_points, t)
        poses[t, :3, :3], poses[t, :3, 3], Hs[t] = R, tvec, H
        inliers[t], parallax[t] = inl, par
        methods.append(method)
    return CameraMotion(poses, Hs, inliers, parallax, tuple(methods))


def _frame_pose(x0, xt, depth, K, model, ransac_px, parallax_px, depth_rel_sigma, min_points, t):
    H, h_mask = cv2.findHomography(x0, xt, cv2.RANSAC, ransac_px, maxIters=2000, confidence=0.999)
    if H is None:
        raise InputError(f"camera motion: frame {t}: no homography fits its {len(x0)} background tracks "
                         f"(degenerate point layout?)")
    h_in = h_mask.ravel().astype(bool)
    R_rot = _refine_rotation(_rotation_from_homography(H, K), x0[h_in], xt[h_in], K, ransac_px)
    rot_residual = np.linalg.norm(_rotate_pixels(R_rot, x0, K) - xt, axis=1)
    rot_in = rot_residual < ransac_px
    known = depth > 0
    use = rot_in & known
    t_rot = _translation_given_rotation(R_rot, x0[use], xt[use], depth[use], K) if use.sum() >= 3 else np.zeros(3)
    if model == "rotation":
        return R_rot, t_rot, H, int(rot_in.sum()), 0.0, "rotation"
    candidates = [("rotation", R_rot, t_rot)]
    E, e_mask = cv2.findEssentialMat(x0, xt, K, method=cv2.RANSAC, prob=0.999, threshold=ransac_px)
    if E is None:
        raise InputError(f"camera motion: frame {t}: no essential matrix fits its {len(x0)} background tracks "
                         f"(degenerate point layout?)")
    # OpenCV's default cheirality check drops points beyond 50 baselines, i.e. all of them at small baselines
    _, R_e, t_e, pose_mask, _ = cv2.recoverPose(E[:3], x0, xt, K, distanceThresh=1e9, mask=e_mask.copy())
    e_in = pose_mask.ravel() > 0
    par = float(np.median(rot_residual[e_in])) if e_in.sum() >= min_points else 0.0
    if par >= parallax_px:  # enough parallax for the translation direction to mean something
        z = _triangulate_depth(R_e, t_e.ravel(), x0[e_in], xt[e_in], K)
        ok = known[e_in] & (z > 0)
        if ok.sum() >= min_points:
            candidates.append(("essential", R_e, float(np.median(depth[e_in][ok] / z[ok])) * t_e.ravel()))
    inliers = rot_in | e_in
    if (inliers & known).sum() < min_points:
        raise InputError(f"camera motion: frame {t}: only {int((inliers & known).sum())} background tracks that "
                         f"fit a rigid motion have a known frame-0 depth (need at least {min_points})")
    refine = _spread(np.flatnonzero(inliers), MAX_REFINE_POINTS)
    fits = [(_refine_pose(R, tv, x0[refine], xt[refine], depth[refine], K, ransac_px, depth_rel_sigma), name)
            for name, R, tv in candidates]
    (R, tvec, _), method = min(fits, key=lambda fit: fit[0][2])
    return R, tvec, H, int(inliers.sum()), par, method


def _spread(index: np.ndarray, n: int) -> np.ndarray:
    """At most n entries of index, evenly spread (grid-ordered tracks stay spread over the image)."""
    return index if len(index) <= n else index[np.linspace(0, len(index) - 1, n).round().astype(int)]


def _refine_pose(R, t, x0, xt, depth, K, scale_px, depth_rel_sigma, iterations: int = 50):
    """Two-view bundle adjustment: pose and per-point log-depth, reprojection error in frame t (robust soft-L1 at
    `scale_px`) plus a prior pulling each known log-depth to its measured value with std `depth_rel_sigma`.
    Points of unknown depth start at the median known depth. Returns (R, t, final cost).

    Levenberg-Marquardt with iteratively reweighted least squares for the robust loss; each point's depth couples
    only to the pose, so the depths are eliminated (Schur complement) and every step solves a 6x6 system.
    """
    known = depth > 0
    rho0 = np.log(np.where(known, depth, np.median(depth[known]) if known.any() else 1.0))
    prior_w = known / depth_rel_sigma**2
    rays = np.c_[x0, np.ones(len(x0))] @ np.linalg.inv(K).T
    f = np.array([K[0, 0], K[1, 1]])

    def evaluate(R, t, rho):
        RX = (rays * np.exp(rho)[:, None]) @ R.T
        P = RX + t
        z = np.maximum(P[:, 2], 1e-6)
        r = ((P[:, :2] / z[:, None]) * f + K[:2, 2] - xt) / scale_px  # [n, 2]
        sq = (r**2).sum(1)
        cost = (2 * (np.sqrt(1 + sq) - 1)).sum() + (prior_w * (rho - rho0) ** 2).sum()
        return cost, r, sq, RX, P, z

    rho, lam = rho0.copy(), 1e-3
    cost, r, sq, RX, P, z = evaluate(R, t, rho)
    for _ in range(iterations):
        w = 1 / np.sqrt(1 + sq)  # IRLS weight of soft-L1
        J_pi = np.zeros((len(z), 2, 3))  # d r / d P
        J_pi[:, 0, 0], J_pi[:, 1, 1] = f[0] / z, f[1] / z
        J_pi[:, :, 2] = -(P[:, :2] / z[:, None] ** 2) * f
        J_pi /= scale_px
        skew = np.zeros((len(z), 3, 3))  # d (exp(w) R X) / d w = -[R X]x
        skew[:, 0, 1], skew[:, 0, 2], skew[:, 1, 2] = RX[:, 2], -RX[:, 1], RX[:, 0]
        skew[:, 1, 0], skew[:, 2, 0], skew[:, 2, 1] = -RX[:, 2], RX[:, 1], -RX[:, 0]
        Jp = np.concatenate([J_pi @ skew, J_pi], axis=2)  # [n, 2, 6]
        Jr = np.einsum("nij,nj->ni", J_pi, RX)  # [n, 2] d r / d log-depth
        A = np.einsum("n,nki,nkj->ij", w, Jp, Jp)
        B = np.einsum("n,nki,nk->ni", w, Jp, Jr)
        C = w * (Jr**2).sum(1) + prior_w
        g_p = np.einsum("n,nki,nk->i", w, Jp, r)
        g_r = w * (Jr * r).sum(1) + prior_w * (rho - rho0)
        while True:
            Cd = C * (1 + lam) + 1e-12
            S = A + lam * np.diag(np.diag(A)) - (B[:, :, None] * B[:, None, :] / Cd[:, None, None]).sum(0)
            dp = np.linalg.solve(S, -g_p + (B * (g_r / Cd)[:, None]).sum(0))
            drho = (-g_r - B @ dp) / Cd
            R_new = Rotation.from_rotvec(dp[:3]).as_matrix() @ R
            new = evaluate(R_new, t + dp[3:], rho + drho)
            if new[0] < cost:
                improvement = cost - new[0]
                R, t, rho, lam = R_new, t + dp[3:], rho + drho, max(lam / 10, 1e-9)
                cost, r, sq, RX, P, z = new
                break
            lam *= 10
            if lam > 1e8:
                return R, t, float(cost)
        if improvement < 1e-10 * max(cost, 1.0):
            break
    return R, t, float(cost)


def _rotation_from_homography(H: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Nearest rotation to K^-1 H K (exact for the infinite homography of a pure rotation)."""
    M = np.linalg.inv(K) @ H @ K
    U, _, Vt = np.linalg.svd(M / np.cbrt(np.linalg.det(M)))
    R = U @ Vt
    return R if np.linalg.det(R) > 0 else U @ np.diag([1, 1, -1]) @ Vt


def _rotate_pixels(R: np.ndarray, x: np.ndarray, K: np.ndarray) -> np.ndarray:
    p = np.c_[x, np.ones(len(x))] @ (K @ R @ np.linalg.inv(K)).T
    return p[:, :2] / p[:, 2:3]


def _refine_rotation(R0: np.ndarray, x0: np.ndarray, xt: np.ndarray, K: np.ndarray, scale_px: float) -> np.ndarray:
    """Least squares (robust, soft-L1 at `scale_px`) of the pure-rotation reprojection error, from R0."""
    if len(x0) < 3:
        return R0

    def residual(w):
        return (_rotate_pixels(Rotation.from_rotvec(w).as_matrix() @ R0, x0, K) - xt).ravel()

    w = least_squares(residual, np.zeros(3), loss="soft_l1", f_scale=scale_px).x
    return Rotation.from_rotvec(w).as_matrix() @ R0


def _translation_given_rotation(R, x0, xt, depth, K) -> np.ndarray:
    """t minimizing the algebraic error of xt ~ K (R X + t), X the metric frame-0 points (linear least squares):
    ray x (R X + t) = 0, i.e. [ray]x t = -ray x R X, stacked over points."""
    Kinv = np.linalg.inv(K)
    X = (np.c_[x0, np.ones(len(x0))] @ Kinv.T) * depth[:, None]
    rays = np.c_[xt, np.ones(len(xt))] @ Kinv.T
    skew = np.zeros((len(rays), 3, 3))
    skew[:, 0, 1], skew[:, 0, 2], skew[:, 1, 2] = -rays[:, 2], rays[:, 1], -rays[:, 0]
    skew[:, 1, 0], skew[:, 2, 0], skew[:, 2, 1] = rays[:, 2], -rays[:, 1], rays[:, 0]
    b = -np.cross(rays, X @ R.T)
    return np.linalg.lstsq(skew.reshape(-1, 3), b.ravel(), rcond=None)[0]


def _triangulate_depth(R, t, x0, xt, K) -> np.ndarray:
    """[N] depth in camera 0 of each correspondence, in units of |t|."""
    P0 = K @ np.c_[np.eye(3), np.zeros(3)]
    P1 = K @ np.c_[R, t]
    X = cv2.triangulatePoints(P0, P1, x0.T.astype(np.float64), xt.T.astype(np.float64))
    return X[2] / X[3]
