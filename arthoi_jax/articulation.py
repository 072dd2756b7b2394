"""Joints from rigid part motion: 1-DOF joint transforms (JAX) and closed-form joint fitting (numpy).

A part's motion is a sequence of poses T(t) [T, 4, 4] mapping its frame-0 points to frame t (T(0) = I), in the
world (= camera-0) frame. A revolute joint is a unit axis a, a pivot p on it and an angle per frame:
T(theta) = [R(a, theta), p - R p]. A prismatic joint is a unit direction a and a displacement per frame:
T(d) = [I, d a]. Angles in radians, lengths in metres.
"""

from __future__ import annotations

import dataclasses

import cv2
import jax.numpy as jnp
import numpy as np
from scipy.spatial.transform import Rotation

REVOLUTE, PRISMATIC = 0, 1
JOINT_NAMES = ("revolute", "prismatic")
# Below this much rotation over the whole sequence a part cannot define a rotation axis: `auto` picks prismatic.
MIN_REVOLUTE_DEG = 2.0
# joint_from_tracks: a revolute axis farther than this many part radii (+ PIVOT_SLACK_M) from the part's centre,
# normal to the axis, is no hinge: a far pivot turning a little mimics a translation (drawer, noisy tracks).
PIVOT_RADII = 2.0
PIVOT_SLACK_M = 0.05
# hinge_on_part: below this turn the tracks leave a pivot loose along the viewing direction (the LK lid: 15-19 deg).
SMALL_TURN_DEG = 25.0


def joint_transform(joint_type: jnp.ndarray, axis: jnp.ndarray, pivot: jnp.ndarray, value: jnp.ndarray) -> jnp.ndarray:
    """The 4x4 pose of a 1-DOF joint. joint_type: [] int (REVOLUTE | PRISMATIC); axis: [3] unit; pivot: [3] metres;
    value: [] radians or metres -> [4, 4]. Differentiable in axis, pivot and value (also at value 0)."""
    a = axis / jnp.linalg.norm(axis)
    k = jnp.array([[0.0, -a[2], a[1]], [a[2], 0.0, -a[0]], [-a[1], a[0], 0.0]])
    R_rev = jnp.eye(3) + jnp.sin(value) * k + (1.0 - jnp.cos(value)) * (k @ k)  # Rodrigues: smooth everywhere
    is_rev = joint_type == REVOLUTE
    R = jnp.where(is_rev, R_rev, jnp.eye(3))
    t = jnp.where(is_rev, pivot - R_rev @ pivot, value * a)
    return jnp.eye(4).at[:3, :3].set(R).at[:3, 3].set(t)


@dataclasses.dataclass(frozen=True)
class JointFit:
    """A joint fitted to one part's motion."""

    joint_type: str  # "revolute" | "prismatic"
    axis: np.ndarray  # [3] unit
    pivot: np.ndarray  # [3] metres (revolute: point of the axis nearest the part's points; prismatic: zeros)
    values: np.ndarray  # [T] radians | metres, values[0] ~ 0
    residual_m: float  # RMS over frames and part points of |T_joint(t) x - T(t) x|, metres

    def poses(self) -> np.ndarray:
        """[T, 4, 4] the joint's poses at the fitted values."""
        jt = REVOLUTE if self.joint_type == "revolute" else PRISMATIC
        return np.stack([_joint_np(jt, self.axis, self.pivot, v) for v in self.values])

    def to_json(self) -> dict:
        return {"type": self.joint_type, "axis": self.axis.tolist(), "pivot": self.pivot.tolist(),
                "values": self.values.tolist(), "residual_m": self.residual_m}


def _joint_np(jt: int, axis, pivot, value) -> np.ndarray:
    T = np.eye(4)
    if jt == REVOLUTE:
        R = Rotation.from_rotvec(np.asarray(axis) * value).as_matrix()
        T[:3, :3], T[:3, 3] = R, pivot - R @ pivot
    else:
        T[:3, 3] = value * np.asarray(axis)
    return T


def _residual(fit_poses: np.ndarray, poses: np.ndarray, points: np.ndarray) -> float:
    a = np.einsum("tij,nj->tni", fit_poses[:, :3, :3], points) + fit_poses[:, None, :3, 3]
    b = np.einsum("tij,nj->tni", poses[:, :3, :3], points) + poses[:, None, :3, 3]
    return float(np.sqrt(np.mean(np.sum((a - b) ** 2, -1))))


def fit_revolute(poses: np.ndarray, points: np.ndarray) -> JointFit:
    """Fits a revolute joint. poses: [T, 4, 4] part poses (frame 0 -> t); points: [N, 3] the part's frame-0 points
    (metres; they define the residual and which point of the axis is reported as pivot).

    Axis: the angle-weighted mean of the per-frame rotation axes (sign-aligned). Pivot: least squares over frames of
    (I - R_t) p = t_t restricted to the plane through the points' centroid normal to the axis. Angles: the rotation
    about the axis of each R_t.
    """
    poses = np.asarray(poses, np.float64)
    rotvecs = Rotation.from_matrix(poses[:, :3, :3]).as_rotvec()
    k = int(np.argmax(np.linalg.norm(rotvecs, axis=-1)))
    ref = rotvecs[k] / max(np.linalg.norm(rotvecs[k]), 1e-12)
    signs = np.where(rotvecs @ ref < 0, -1.0, 1.0)
    axis = np.sum(rotvecs * signs[:, None], 0)
    axis = axis / max(np.linalg.norm(axis), 1e-12) if np.linalg.norm(axis) > 1e-12 else np.array([0.0, 1.0, 0.0])
    centroid = np.mean(points, 0) if len(points) else np.zeros(3)
    # Rows (I - R_t) p = t_t for all frames, plus a . p = a . centroid to pick one point of the axis line.
    A = np.concatenate([(np.eye(3)[None] - poses[:, :3, :3]).reshape(-1, 3), axis[None]], 0)
    b = np.concatenate([poses[:, :3, 3].reshape(-1), [axis @ centroid]])
    pivot = np.linalg.lstsq(A, b, rcond=None)[0]
    # Signed angle about the axis: the rotation vector's component along it (exact for rotations about the axis).
    values = rotvecs @ axis
    fit = JointFit("revolute", axis, pivot, values, 0.0)
    return dataclasses.replace(fit, residual_m=_residual(fit.poses(), poses, points))


def fit_prismatic(poses: np.ndarray, points: np.ndarray) -> JointFit:
    """Fits a prismatic joint: direction = principal direction of the translations (sign: the largest displacement
    is positive), displacement per frame = translation . direction. Shapes as `fit_revolute`."""
    poses = np.asarray(poses, np.float64)
    t = poses[:, :3, 3]
    _, _, vt = np.linalg.svd(t, full_matrices=False)
    axis = vt[0]
    d = t @ axis
    if d[np.argmax(np.abs(d))] < 0:
        axis, d = -axis, -d
    fit = JointFit("prismatic", axis, np.zeros(3), d, 0.0)
    return dataclasses.replace(fit, residual_m=_residual(fit.poses(), poses, points))


def fit_joint(poses: np.ndarray, points: np.ndarray, joint_type: str = "auto") -> JointFit:
    """Fits `joint_type` ("revolute" | "prismatic" | "auto"). auto: prismatic when the part turns less than
    MIN_REVOLUTE_DEG over the sequence, otherwise whichever fit has the smaller residual."""
    if joint_type == "revolute":
        return fit_revolute(poses, points)
    if joint_type == "prismatic":
        return fit_prismatic(poses, points)
    rotvecs = Rotation.from_matrix(np.asarray(poses)[:, :3, :3]).as_rotvec()
    max_deg = np.rad2deg(np.max(np.linalg.norm(rotvecs, axis=-1)))
    pri = fit_prismatic(poses, points)
    if max_deg < MIN_REVOLUTE_DEG:
        return pri
    rev = fit_revolute(poses, points)
    return rev if rev.residual_m <= pri.residual_m else pri


def _joint_pixels(axis: np.ndarray, pivot: np.ndarray, values: np.ndarray, points: np.ndarray, revolute: bool,
                  K: np.ndarray, cams: np.ndarray | None) -> np.ndarray:
    """Frame-0 points [N, 3] (world) moved by a joint (unit axis, pivot, values [T'] radians or metres) and projected
    -> pixels [T', N, 2] (OpenCV, the tracks' convention), through world-to-camera cams [T', 4, 4] (None: static).
    The inner function of the least-squares refinements below, so plain numpy (finite differences)."""
    v = values[:, None, None]
    if revolute:
        k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
        R = np.eye(3) + np.sin(v) * k + (1 - np.cos(v)) * (k @ k)  # Rodrigues, [T', 3, 3]
        X = np.einsum("tij,nj->tni", R, points - pivot) + pivot
    else:
        X = points[None] + v * axis
    if cams is not None:
        X = np.einsum("tij,tnj->tni", cams[:, :3, :3], X) + cams[:, None, :3, 3]
    return X[..., :2] / np.maximum(X[..., 2:], 1e-6) * np.array([K[0, 0], K[1, 1]]) + K[:2, 2]


def refine_joint_on_tracks(fit: JointFit, points: np.ndarray, tracks: np.ndarray, visibility: np.ndarray,
                           K: np.ndarray, scale_px: float = 2.0,
                           T_cam_world: np.ndarray | None = None) -> tuple[JointFit, float]:
    """Joint bundle adjustment: refines one joint (axis, pivot and every frame's value together) to minimise the
    reprojection error of the part's tracks over all frames (robust soft-L1 loss, scale `scale_px`).

    points: [M, 3] frame-0 3D points (world); tracks: [T, M, 2] px; visibility: [T, M]; K: [3, 3]; T_cam_world:
    [T, 4, 4] world-to-camera extrinsics of a moving camera, the joint's poses projected through frame t's camera
    (None: static camera, world = camera). A shared axis removes
    the per-frame ambiguity of PnP on a planar, obliquely seen part (on LK tracks of the synthetic door, per-frame
    PnP drifts to 25 deg of rotation error; see benchmarks/articulation.py). Returns (the joint, whose
    residual_m is NaN: it is fitted to tracks, not to poses; the median reprojection error of the visible tracks
    in pixels).
    """
    import scipy.sparse
    from scipy.optimize import least_squares

    rev = fit.joint_type == "revolute"
    finite = np.all(np.isfinite(points), -1) & np.all(np.isfinite(tracks), -1)  # [T, M]
    vis = visibility[1:] & finite[1:] & finite[:1]
    points = np.where(finite[0][:, None], points, 0.0)
    tracks = np.where(finite[..., None], tracks, 0.0)
    cams = None if T_cam_world is None else np.asarray(T_cam_world, np.float64)[1:]

    def unpack(x):
        axis = x[:3] / max(np.linalg.norm(x[:3]), 1e-12)
        return axis, x[3:6], np.concatenate([[0.0], x[6:]])

    def residuals(x, per_track=False):
        axis, pivot, values = unpack(x)
        uv = _joint_pixels(axis, pivot, values[1:], points, rev, K, cams)
        r = np.where(vis[..., None], uv - tracks[1:], 0.0)
        if per_track:
            return np.linalg.norm(r, axis=-1)[vis]
        r = r.reshape(-1)
        gauge = 1e-3 * np.array([axis @ (pivot - fit.pivot), np.linalg.norm(x[:3]) - 1.0])  # fix free directions
        return np.concatenate([r, gauge])

    x0 = np.concatenate([fit.axis, fit.pivot, fit.values[1:]])
    # Frame t's residuals depend on the axis, the pivot and value t only: with this sparsity the finite-difference
    # Jacobian costs 7 evaluations instead of T + 5 and O(T) memory instead of O(T^2) (300 frames: 24 s, not ~40 min).
    n_obs, n_frames = 2 * points.shape[0], len(x0) - 6
    rows = np.arange(n_obs * n_frames)
    sparsity = scipy.sparse.hstack([np.ones((len(rows) + 2, 6)), scipy.sparse.coo_matrix(
        (np.ones(len(rows)), (rows, rows // n_obs)), shape=(len(rows) + 2, n_frames))])
    sol = least_squares(residuals, x0, loss="soft_l1", f_scale=scale_px, method="trf", max_nfev=200,
                        jac_sparsity=sparsity)
    axis, pivot, values = unpack(sol.x)
    if not rev:
        pivot = np.zeros(3)
    err = residuals(sol.x, per_track=True)
    return JointFit(fit.joint_type, axis, pivot, values, float("nan")), float(np.median(err)) if err.size else 0.0


def reprojection_error_px(fit: JointFit, points: np.ndarray, tracks: np.ndarray, visibility: np.ndarray,
                          K: np.ndarray, T_cam_world: np.ndarray | None = None) -> float:
    """Median over visible (track, frame > 0) pairs of the distance in pixels between the track and its frame-0
    point moved by the joint and projected (through T_cam_world [T, 4, 4] when given). Shapes as
    `refine_joint_on_tracks`; 0 when nothing is visible."""
    cams = None if T_cam_world is None else np.asarray(T_cam_world, np.float64)[1:]
    uv = _joint_pixels(fit.axis, fit.pivot, fit.values[1:], points, fit.joint_type == "revolute", K, cams)
    err = np.linalg.norm(uv - tracks[1:], axis=-1)
    ok = visibility[1:] & np.isfinite(err)
    return float(np.median(err[ok])) if ok.any() else 0.0


def _photometric_residuals(axis, pivot, values, rev: bool, grey: np.ndarray, ref: np.ndarray, points: np.ndarray,
                           K: np.ndarray, cams: np.ndarray | None, gain: bool) -> np.ndarray:
    """[T - 1, N] grey level at each frame-0 pixel's point moved by the joint (values [T - 1] of frames 1..) and
    projected into grey[1:] ([T, H, W]), minus its frame-0 level ref [N]; gain: each frame scaled by the ratio of
    medians first (a turning face's shading changes; robust to occlusion)."""
    m = (_joint_pixels(axis, pivot, values, points, rev, K, cams) - 0.5).astype(np.float32)  # remap: pixel i at i
    r = np.stack([cv2.remap(grey[t + 1], m[t, :, 0].copy(), m[t, :, 1].copy(), cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REPLICATE).ravel() for t in range(len(values))])
    if gain:
        r *= np.median(ref) / np.maximum(np.median(r, 1, keepdims=True), 1e-6)
    return r - ref


def _frames_used(frames: np.ndarray | None, num_frames: int) -> np.ndarray:
    used = np.flatnonzero(np.ones(num_frames, bool) if frames is None else np.asarray(frames, bool))
    return used[used > 0]


def _grey_at(grey: np.ndarray, uv: np.ndarray) -> np.ndarray:
    H, W = grey.shape
    return grey[np.clip(uv[:, 1].astype(int), 0, H - 1), np.clip(uv[:, 0].astype(int), 0, W - 1)]


def photometric_error(fit: JointFit, grey: np.ndarray, uv: np.ndarray, points: np.ndarray, K: np.ndarray,
                      T_cam_world: np.ndarray | None = None, frames: np.ndarray | None = None) -> float:
    """How well a joint aligns the part's frame-0 pixels to the frames (arguments as `refine_joint_photometric`):
    the median over pixels of each pixel's median |grey-level residual| over the frames, with the per-frame gain
    for either joint type. NaN when no frame is used."""
    used = _frames_used(frames, grey.shape[0])
    if len(used) == 0:
        return float("nan")
    cams = None if T_cam_world is None else np.asarray(T_cam_world, np.float64)[used]
    r = _photometric_residuals(fit.axis, fit.pivot, fit.values[used], fit.joint_type == "revolute",
                               grey[np.concatenate([[0], used])], _grey_at(grey[0], uv), points, K, cams, True)
    return float(np.median(np.median(np.abs(r), 0)))


def refine_joint_photometric(fit: JointFit, grey: np.ndarray, uv: np.ndarray, points: np.ndarray,
                             K: np.ndarray, scale: float = 3.0, max_nfev: int = 60, trim: float = 4.0,
                             T_cam_world: np.ndarray | None = None, frames: np.ndarray | None = None) -> JointFit:
    """Refines a joint (prismatic: direction and every frame's displacement; revolute: axis direction, pivot
    across the axis (2 DOF) and every frame's angle) by direct image alignment: each of the part's frame-0 pixels,
    moved by the joint and projected into frame t, must read its frame-0 grey level (brightness constancy: a
    translating part keeps its shading; a turning one's changes, absorbed by a gain per frame, the ratio of the
    medians of the frame-0 and the moved pixels: without it the LK cabinet2's door axes went 5.0 / 3.7 ->
    12.6 / 5.5 deg off, with it 0.14 / 0.09). Robust soft-L1 loss of scale `scale` grey levels (hand occlusion,
    mask pixels of another part), solved twice: the second time without the pixels whose median |residual| over
    frames exceeds `trim` times the median over pixels (a handle's view-dependent shading and smeared depth: on
    the synthetic drawer with exact tracks 16 % of the pixels, which pulled the direction 2.2 deg off the truth,
    0.6 deg without them).

    grey: [T, H, W] float32 grey images (blurred by the caller: the basin of a stripe texture is its period);
    uv: [N, 2] frame-0 pixel centres of the part (OpenCV convention + 0.5, as the tracks); points: [N, 3] their
    frame-0 world points, metres; K: [3, 3]; T_cam_world: [T, 4, 4] world-to-camera (None: static camera);
    frames: [T] bool, the frames aligned (None: all); the others keep the start's values (where the part's
    frame-0 face has turned away there is nothing to align it to).
    Why: LK tracks of a textured part coming towards the camera slide along its stripes by 1-4 px, proportional
    to the displacement (a window fixed in size on a surface that grows), and the prismatic direction rests on that
    growth: on the synthetic drawer (benchmarks/articulation.py --tracker lk) the track fit is 6.92 deg / 2.5 cm
    off, this alignment from it 0.97 deg / 0.37 cm; LK tracks of a turning door slide likewise, its axis 4-5 deg
    off on cabinet2. Returns the joint (residual_m NaN: fitted to images)."""
    import scipy.sparse
    from scipy.optimize import least_squares

    rev = fit.joint_type == "revolute"
    ref = _grey_at(grey[0], uv)
    used = _frames_used(frames, grey.shape[0])
    if len(used) == 0:
        return fit
    grey = grey[np.concatenate([[0], used])]
    T = grey.shape[0]
    cams = None if T_cam_world is None else np.asarray(T_cam_world, np.float64)[used]
    # Revolute pivot: the start's pivot moved across its axis (a point sliding along the axis changes nothing).
    across = np.linalg.svd(fit.axis[None])[2][1:] if rev else np.zeros((0, 3))  # [2 | 0, 3]
    n_shared = 3 + len(across)

    def unpack(x):
        return x[:3] / np.linalg.norm(x[:3]), fit.pivot + x[3:n_shared] @ across, x[n_shared:]

    def residuals(x, keep):
        r = _photometric_residuals(*unpack(x), rev, grey, ref[keep], points[keep], K, cams, gain=rev)
        return np.concatenate([r.ravel(), [1e2 * (np.linalg.norm(x[:3]) - 1.0)]])

    def solve(x0, keep):
        n = int(keep.sum())
        rows = np.arange(n * (T - 1))
        sparsity = scipy.sparse.hstack([np.ones((len(rows) + 1, n_shared)), scipy.sparse.coo_matrix(
            (np.ones(len(rows)), (rows, rows // n)), shape=(len(rows) + 1, T - 1))])
        # diff_step: the default (~1e-8 relative) moves a float32 remap coordinate by nothing.
        return least_squares(residuals, x0, loss="soft_l1", f_scale=scale, method="trf", max_nfev=max_nfev,
                             x_scale="jac", diff_step=1e-3, jac_sparsity=sparsity, args=(keep,)).x

    every = np.ones(len(points), bool)
    x = solve(np.concatenate([fit.axis, np.zeros(len(across)), fit.values[used]]), every)
    med = np.median(np.abs(residuals(x, every)[:-1].reshape(T - 1, -1)), 0)
    keep = med <= trim * np.median(med)
    if keep.sum() >= 3:
        x = solve(x, keep)
    axis, pivot, d_used = unpack(x)
    d = np.array(fit.values, np.float64)
    d[0], d[used] = 0.0, d_used
    if not rev and d[np.argmax(np.abs(d))] < 0:
        axis, d = -axis, -d
    return JointFit(fit.joint_type, axis, pivot if rev else np.zeros(3), d, float("nan"))


def pivot_plausible(fit: JointFit, points: np.ndarray) -> bool:
    """Whether a revolute fit's axis passes within PIVOT_RADII part radii (+ PIVOT_SLACK_M) of the part's centre,
    both measured in the plane normal to the axis. points: [M, 3] the part's frame-0 points, metres. A hinge lies
    on or near the part it turns (door edge, lid back edge); a pivot metres away turning a few degrees is a
    translation in disguise."""
    a = fit.axis / np.linalg.norm(fit.axis)
    flat = points - np.outer(points @ a, a)  # projections onto the plane through the origin normal to a
    centre = flat.mean(0)
    radius = np.max(np.linalg.norm(flat - centre, axis=1)) if len(points) else 0.0
    pivot = fit.pivot - (fit.pivot @ a) * a
    return bool(np.linalg.norm(pivot - centre) <= PIVOT_RADII * radius + PIVOT_SLACK_M)


def hinge_on_part(fit: JointFit, points: np.ndarray, frames: np.ndarray | None = None) -> JointFit:
    """A revolute fit with its axis line slid onto the part: along the one direction normal to the axis that the
    tracks of a small turn cannot see, to where the line passes nearest one of the part's points.

    points: [N, 3] frame-0 points of the part (metres, world = camera 0). Turning by a small angle about a line
    moved by d (normal to the axis a) adds a translation angle * (a x d); for d along r x a, r the viewing ray
    of the part, that translation runs along r and barely moves the part in the image. So a fit to a small turn
    leaves the pivot loose along that direction (the LK lid, turned 15 deg before its tracks are lost, seen from
    above), and a hinge lies on the part it turns. frames: [T] bool, the frames the fit rests on (None: all); a
    turn of SMALL_TURN_DEG or more over them pins the pivot (the LK door's, 2.3 cm off its hinge, slid to 1.0 cm
    off: 0.41 -> 0.92 deg mean rotation error after Stage I). Such a fit, a pivot within PIVOT_SLACK_M of a point,
    a prismatic fit and an axis along the ray are returned unchanged."""
    turn = np.abs(fit.values if frames is None else fit.values[np.asarray(frames, bool)])
    if fit.joint_type != "revolute" or len(points) == 0 or np.rad2deg(turn.max(initial=0.0)) >= SMALL_TURN_DEG:
        return fit
    a = fit.axis / np.linalg.norm(fit.axis)
    ray = np.mean(points, 0)
    u = np.cross(ray / max(np.linalg.norm(ray), 1e-12), a)
    if np.linalg.norm(u) < 1e-3:
        return fit
    u /= np.linalg.norm(u)
    q = points - fit.pivot
    q -= np.outer(q @ a, a)  # normal to the axis
    if np.min(np.linalg.norm(q, axis=1)) <= PIVOT_SLACK_M:
        return fit  # already on the part
    s = q @ u
    dist = np.linalg.norm(q - np.outer(s, u), axis=1)
    # A part whose section runs along u (a door facing the camera) meets the line at many points: the nearest.
    near = dist <= dist.min() + PIVOT_SLACK_M
    i = np.flatnonzero(near)[np.argmin(np.abs(s[near]))]
    return dataclasses.replace(fit, pivot=fit.pivot + s[i] * u)


def prefer_revolute(rev: JointFit, rev_err_px: float, pri_err_px: float, points: np.ndarray,
                    num_tracks: int) -> bool:
    """The joint-type test of `joint_from_tracks`: revolute when it turns at least MIN_REVOLUTE_DEG, its pivot is
    plausible (`pivot_plausible`) and it wins a BIC comparison of the two refined fits: n log(err^2) + k log n with
    err the median reprojection error (px) and k the free parameters; revolute has two more (its pivot). n counts
    tracks, not (track, frame) observations: a track's errors over frames are correlated, so counting frames would
    make any noise-level difference decisive. The prismatic model is the limit of a revolute one with a far pivot,
    so with a plausible pivot and a lower error revolute is kept without a fixed margin."""
    if np.rad2deg(np.max(np.abs(rev.values))) < MIN_REVOLUTE_DEG or not pivot_plausible(rev, points):
        return False
    n = max(num_tracks, 1)
    bic = lambda err, k: n * np.log(max(err, 1e-6) ** 2) + k * np.log(n)
    return bool(bic(rev_err_px, 2) < bic(pri_err_px, 0))


def joint_candidates(poses: np.ndarray, points: np.ndarray, tracks: np.ndarray, visibility: np.ndarray,
                     K: np.ndarray, joint_type: str = "auto",
                     T_cam_world: np.ndarray | None = None) -> dict[str, tuple[JointFit, float]]:
    """Joints fitted to per-frame world poses [T, 4, 4] (e.g. PnP), then refined on the tracks of all frames
    (`refine_joint_on_tracks`, through the cameras T_cam_world [T, 4, 4] when given) -> {type: (joint, median
    reprojection error px)}, both types for auto."""
    keep = np.all(np.isfinite(points), -1)  # a track without a 3D point says nothing about the joint
    points, tracks, visibility = points[keep], tracks[:, keep], visibility[:, keep]
    kinds = ("revolute", "prismatic") if joint_type == "auto" else (joint_type,)
    return {k: refine_joint_on_tracks(fit_joint(poses, points, k), points, tracks, visibility, K,
                                      T_cam_world=T_cam_world) for k in kinds}


def pick_joint(fits: dict[str, tuple[JointFit, float]], points: np.ndarray, num_tracks: int) -> JointFit:
    """The revolute or the prismatic fit of {type: (joint, error)} by `prefer_revolute` (points: [M, 3] the part's
    frame-0 points; num_tracks: tracks seen moving); the one fit when there is one."""
    if len(fits) == 1:
        return next(iter(fits.values()))[0]
    (rev, rev_err), (pri, pri_err) = fits["revolute"], fits["prismatic"]
    points = points[np.all(np.isfinite(points), -1)]
    return rev if prefer_revolute(rev, rev_err, pri_err, points, num_tracks) else pri


def joint_from_tracks(poses: np.ndarray, points: np.ndarray, tracks: np.ndarray, visibility: np.ndarray,
                      K: np.ndarray, joint_type: str = "auto", T_cam_world: np.ndarray | None = None) -> JointFit:
    """The joint of `joint_candidates` (arguments as there); auto: `pick_joint` (per-frame poses of a small part
    are too noisy to tell the two types apart: on LK tracks of the synthetic drawer, residuals on PnP poses
    picked revolute)."""
    fits = joint_candidates(poses, points, tracks, visibility, K, joint_type, T_cam_world)
    seen = visibility[1:, np.all(np.isfinite(points), -1)].any(0)
    return pick_joint(fits, points, int(seen.sum()))
