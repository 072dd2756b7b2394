"""Flow-based part segmentation (paper Sec. 3.1, Eq. 1-3, App. A).

1. Track motion: each track's largest displacement from its frame-0 position over the visible frames. Dynamic:
   > `dynamic_px` (5 px); static: <= `static_px` (2 px); in between: undecided (no prompt). The paper thresholds
   per-frame flow; on a slowly opening door per-frame flow stays under 5 px, so the sequence displacement is used.
2. Moving parts: the dynamic tracks seed a sequential RANSAC: PnP (frame-0 3D points from the depth, 2D
   positions at the frame of largest motion) takes the largest consistent set as one part and its per-frame
   motion, then the rest, up to `max_moving_parts`, while a motion explains at least `min_part_tracks` tracks
   over the whole sequence and differs from every earlier part's (tracks drifting off a part are no new part).
   Every track is then labelled with the motion (static or a part's) that reprojects it best, undecided when two
   motions explain it about equally, it is isolated among differently labelled neighbours, or it would be static
   but was lost early (seen in under STATIC_SEEN of the frames) having drifted more than `ambiguity_px` (LK tracks
   of the lid's back rows lag 1-5 px behind the lid and are lost by frame 9 of 32: read static, they cut the part
   mask, frame-0 IoU 0.58; with this 0.98. A static track hidden by a part stays put until then: without the drift
   clause the exact drawer's, which the drawer slides over, went undecided and its IoU 0.99 -> 0.66): Eq. 1's
   thresholds
   alone call a door's points near its hinge static, and those negative prompts cut the door mask short. A part
   left with fewer than `min_part_tracks` tracks, or whose tracks move the way another part would move them
   (`_follows`: tracks dragged along by a part's occluding edge, or sliding along its stripes, fit a rigid motion
   of their own), is dropped, the smallest such first, and the tracks relabelled (while one part remains).
3. Eq. 2: per frame and part, a mask from the part's tracks (positive) against the static and other parts' tracks
   (negative): SAM through `mask_fn` when given, else `grabcut_masks.prompt_mask` (GrabCut or Voronoi "tracks").
4. Back projection: the canonical Gaussians are frame-0 pixels, so a Gaussian's weight for part p is the
   part-p fraction of its frame-0 sampling cell (w_d); the static weight is the rest (w_s).
5. Eq. 3: quasi-static tracks are a part's dynamic tracks moving at most max(its 10th percentile, 1 px), among
   those visible in at least QUASI_STATIC_SEEN of the frames (a track lost while the part turns shows only its
   early, small motion: on LK tracks of the lid every quasi-static track lay 0.4-0.5 m from the hinge); their
   Gaussians bind to the static Gaussians within `binding_radius_m` (0.05 m, paper) or two sampling cells,
   whichever is larger: at 256 x 192 and stride 4 a cell is ~5 cm at 3 m, so the paper's radius alone binds
   nothing on the synthetic door.

Moving camera (`T_cam_world` given, world = camera 0): a static point's frame-0 3D point (from the depth) is
projected with each frame's camera; step 1 thresholds the residual motion (track minus that static position), not
the raw motion, and step 2 fits part poses in the world frame: PnP gives the pose in camera t, the part's pose is
inv(T_cam_world[t]) @ it. The static hypothesis of step 2 is the camera motion itself. A camera estimated with a
coarse depth leaves the whole object drifting (as one or a few rigid motions): when less than MIN_STATIC_SHARE of
the decided tracks stays static, no part is claimed. Without cameras (or with identity ones) every step is exactly
the static-camera one. No moving part at all raises `NoMovingPartError` with the evidence (residual and raw motion
statistics), so a rigid object is reported as such.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import cv2
import numpy as np
from scipy.ndimage import uniform_filter
from scipy.spatial import cKDTree

from arthoi_jax.config import SegmentationConfig
from arthoi_jax.errors import NoMovingPartError
from arthoi_jax.grabcut_masks import prompt_mask
from arthoi_jax.metrics import rotation_errors_deg
from arthoi_jax.object_gaussians import backproject_gaussians
from arthoi_jax.render.types import Gaussians

UNDECIDED, STATIC = -1, 0
CELLS_PER_RADIUS = 2.0
QUASI_STATIC_SEEN = 0.9  # step 5: fraction of the frames a track must be visible in to be judged quasi-static
STATIC_SEEN = 0.9  # step 2: a track seen in fewer of the frames is static only if it stayed put while seen
NEIGHBOURS, MAJORITY = 6, 5  # isolated-label filter: undecided when >= 5 of 6 neighbours disagree
DISTINCT_PARTS = 3.0  # a new part's tracks must reproject this many part_reproj_px off every earlier part
# label_tracks: a part whose tracks move the way another part would move them (`_follows` above this) is no part.
# LK tracks with preprocess.fb_max_scale=2: the spurious parts (drawer: static-body tracks dragged by the drawer's
# edge; door: tracks sliding along its stripes) score 0.77-0.80 against the real part (which may score as high
# against them, hence the smaller goes first); cabinet2's two doors 0.08 and -0.35 against each other (0.42 and
# 0.11 at fb_max_scale=1.5, where its second door keeps 18 tracks).
DRAGGED_COS = 0.6
# OpenCV's RANSAC draws from its global generator: seeded at each call so that a scene's parts and poses do not
# depend on what ran before it in the process (LK drawer: 0.43 or 0.54 cm by the benchmark's scene order).
RANSAC_SEED = 0
MIN_PNP_INLIERS = 6  # find_moving_parts: RANSAC inliers a part's seed needs at its frame of largest motion
# Moving camera: an articulated object keeps a static body. When less than this share of the decided object
# tracks stays static, the whole object moves relative to the estimated camera (its error, e.g. from a coarse
# depth or a zoom), and the rigid motions found are that drift, not parts.
MIN_STATIC_SHARE = 0.05
# mask_fn(image [H,W,3] uint8, positive_xy [K,2], negative_xy [L,2], box_xyxy | None) -> [H, W] bool
MaskFn = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None], np.ndarray]


@dataclasses.dataclass(frozen=True)
class PartSegmentation:
    """What Stage I needs from the segmentation. G Gaussians, N tracks, P moving parts, T frames."""

    track_labels: np.ndarray  # [N] int32: -1 undecided, 0 static, p >= 1 moving part p
    track_points: np.ndarray  # [N, 3] float32 frame-0 3D points (world = camera 0), zeros where unknown
    track_motion_px: np.ndarray  # [N] float32 largest displacement from frame 0
    quasi_static: np.ndarray  # [N] bool
    part_masks: np.ndarray  # [T, P, H, W] bool dynamic-part masks M^d(t)
    gaussians: Gaussians  # numpy arrays, N = G, frame-0 (canonical) object Gaussians
    gaussian_uv: np.ndarray  # [G, 2] float32 frame-0 pixel of each Gaussian
    weights: np.ndarray  # [G, P + 1] float32 (w_s, w_d of part 1..P); rows sum to 1
    binding_pairs: np.ndarray  # [E, 2] int32 (quasi-static dynamic Gaussian, static Gaussian)

    @property
    def num_parts(self) -> int:
        return self.weights.shape[1] - 1


def track_motion(tracks: np.ndarray, visibility: np.ndarray) -> np.ndarray:
    """[T, N, 2], [T, N] -> [N] px: largest displacement from frame 0 over frames where the track is visible."""
    d = np.linalg.norm(tracks - tracks[:1], axis=-1)
    return np.where(visibility & visibility[:1], d, 0.0).max(0).astype(np.float32)


def static_tracks(points: np.ndarray, K: np.ndarray, T_cam_world: np.ndarray) -> np.ndarray:
    """Where static frame-0 points [N, 3] (world = camera 0) are seen in each frame: [T, N, 2] px, projected
    with the world-to-camera extrinsics T_cam_world [T, 4, 4]; NaN behind the camera."""
    cam = np.einsum("tij,nj->tni", T_cam_world[:, :3, :3], points) + T_cam_world[:, None, :3, 3]
    z = np.where(cam[..., 2:3] > 1e-6, cam[..., 2:3], np.nan)
    return cam[..., :2] / z * np.array([K[0, 0], K[1, 1]]) + np.array([K[0, 2], K[1, 2]])


def compensate_camera(tracks: np.ndarray, points: np.ndarray, usable: np.ndarray, K: np.ndarray,
                      T_cam_world: np.ndarray) -> np.ndarray:
    """Tracks [T, N, 2] as a static camera would have seen them: frame-0 position plus the residual (track minus
    the static point's position, `static_tracks`). Tracks that are not `usable` ([N] bool, no depth) are kept."""
    pred = static_tracks(points, K, T_cam_world)
    comp = tracks[:1] + tracks - pred
    return np.where(usable[None, :, None] & np.isfinite(comp), comp, tracks).astype(np.float32)


def residual_motion(tracks: np.ndarray, visibility: np.ndarray, points: np.ndarray, usable: np.ndarray,
                    K: np.ndarray, cams: np.ndarray | None) -> np.ndarray:
    """[N] px: `track_motion` of the camera-compensated tracks (of the raw ones for a static camera, cams None)."""
    if cams is None:
        return track_motion(tracks, visibility)
    return track_motion(compensate_camera(tracks, points, usable, K, cams), visibility)


def _moving(T_cam_world: np.ndarray | None) -> np.ndarray | None:
    """The extrinsics as float64, or None for a static camera (None or all identity: the exact static path)."""
    if T_cam_world is None or np.array_equal(T_cam_world, np.broadcast_to(np.eye(4), np.shape(T_cam_world))):
        return None
    return np.asarray(T_cam_world, np.float64)


def classify_tracks(motion: np.ndarray, usable: np.ndarray, cfg: SegmentationConfig) -> np.ndarray:
    """Eq. 1: [N] motion px, [N] bool usable -> [N] int32 in {-1 undecided, 0 static, 1 dynamic}."""
    labels = np.full(motion.shape, UNDECIDED, np.int32)
    labels[usable & (motion <= cfg.static_px)] = STATIC
    labels[usable & (motion > cfg.dynamic_px)] = 1
    return labels


def track_points_3d(tracks0: np.ndarray, depth: np.ndarray, mask0: np.ndarray, K: np.ndarray):
    """Frame-0 3D points of tracks [N, 2] from the depth at their pixel -> (points [N, 3], usable [N] bool)."""
    H, W = depth.shape
    cols = np.floor(tracks0[:, 0]).astype(int)
    rows = np.floor(tracks0[:, 1]).astype(int)
    inside = (cols >= 0) & (cols < W) & (rows >= 0) & (rows < H)
    rows, cols = np.clip(rows, 0, H - 1), np.clip(cols, 0, W - 1)
    z = np.where(inside, depth[rows, cols], 0.0)
    usable = inside & (z > 0) & mask0[rows, cols]
    x = (tracks0[:, 0] - K[0, 2]) / K[0, 0] * z
    y = (tracks0[:, 1] - K[1, 2]) / K[1, 1] * z
    return np.stack([x, y, z], -1).astype(np.float32), usable


def _rt_to_pose(rvec, tvec) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = cv2.Rodrigues(rvec)[0]
    T[:3, 3] = tvec.reshape(3)
    return T


def pnp_poses(points: np.ndarray, tracks: np.ndarray, visibility: np.ndarray, K: np.ndarray,
              reproj_px: float, T_cam_world: np.ndarray | None = None) -> np.ndarray:
    """Per-frame rigid pose of one part from its tracks (the closed-form Stage I initialization).

    points: [M, 3] frame-0 3D points; tracks: [T, M, 2] px; visibility: [T, M] -> [T, 4, 4] poses mapping frame-0
    points to frame t (pose 0 = I). Each frame: RANSAC PnP warm-started from the previous frame, refined (LM) on
    its inliers; a frame with fewer than 6 visible tracks or a failed solve keeps the previous pose.
    T_cam_world [T, 4, 4] (a moving camera, world = camera 0): PnP solves in camera t, the pose returned is in the
    world, inv(T_cam_world[t]) @ pose in camera t.
    """
    T = tracks.shape[0]
    poses = np.tile(np.eye(4), (T, 1, 1))
    rvec, tvec = np.zeros((3, 1)), np.zeros((3, 1))
    cv2.setRNGSeed(RANSAC_SEED)
    visibility = visibility & np.all(np.isfinite(points), -1)[None] & np.all(np.isfinite(tracks), -1)
    Kd = np.asarray(K, np.float64)
    for t in range(1, T):
        vis = visibility[t]
        if vis.sum() >= 6:
            obj = points[vis].astype(np.float64)
            img = tracks[t, vis].astype(np.float64)
            ok, r, tv, inl = cv2.solvePnPRansac(obj, img, Kd, None, rvec.copy(), tvec.copy(), True, 100,
                                                reproj_px, 0.999, None, cv2.SOLVEPNP_ITERATIVE)
            if ok and inl is not None and len(inl) >= 6:
                inl = inl.reshape(-1)
                r, tv = cv2.solvePnPRefineLM(obj[inl], img[inl], Kd, None, r, tv)
                rvec, tvec = r, tv
        poses[t] = _rt_to_pose(rvec, tvec)
    if T_cam_world is not None:
        poses = np.linalg.inv(np.asarray(T_cam_world, np.float64)) @ poses
    return poses


def reprojection_errors(poses: np.ndarray, points: np.ndarray, tracks: np.ndarray, visibility: np.ndarray,
                        K: np.ndarray) -> np.ndarray:
    """Mean over visible frames of |project(pose_t x) - track_t| per track: [T,4,4],[N,3],[T,N,2],[T,N] -> [N] px."""
    err = np.linalg.norm(_project(poses, points, K) - tracks, axis=-1)
    n = np.maximum(visibility.sum(0), 1)
    return np.where(visibility, err, 0.0).sum(0) / n


def _project(poses: np.ndarray, points: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Pixels [T, M, 2] of points [M, 3] moved by poses [T, 4, 4] (camera frame)."""
    cam = np.einsum("tij,nj->tni", poses[:, :3, :3], points) + poses[:, None, :3, 3]
    return cam[..., :2] / np.maximum(cam[..., 2:3], 1e-6) * np.array([K[0, 0], K[1, 1]]) + np.array([K[0, 2], K[1, 2]])


def find_moving_parts(points: np.ndarray, tracks: np.ndarray, visibility: np.ndarray, K: np.ndarray,
                      dynamic: np.ndarray, cfg: SegmentationConfig,
                      T_cam_world: np.ndarray | None = None) -> list[np.ndarray]:
    """Sequential RANSAC (step 2 of the module doc). dynamic: [N] bool seeds -> per part its poses [T, 4, 4]
    (world frame). T_cam_world [T, 4, 4]: a moving camera (None: static)."""
    cams = _moving(T_cam_world)
    cv2.setRNGSeed(RANSAC_SEED)
    remaining = dynamic.copy()
    part_poses = []  # camera-t poses (the world ones for a static camera)
    ref = tracks[:1] if cams is None else static_tracks(points, K, cams)
    disp = np.nan_to_num(np.linalg.norm(tracks - ref, axis=-1))
    while len(part_poses) < cfg.max_moving_parts and remaining.sum() >= cfg.min_part_tracks:
        vis_rem = visibility & remaining[None]
        counts = vis_rem.sum(1)
        score = np.where(counts >= cfg.min_part_tracks,
                         np.where(vis_rem, disp, 0.0).sum(1) / np.maximum(counts, 1), -1.0)
        t = int(np.argmax(score))
        if score[t] <= 0:
            break
        idx = np.nonzero(vis_rem[t])[0]
        ok, _, _, inl = cv2.solvePnPRansac(points[idx].astype(np.float64), tracks[t, idx].astype(np.float64),
                                           np.asarray(K, np.float64), None, iterationsCount=300,
                                           reprojectionError=cfg.part_reproj_px, confidence=0.999,
                                           flags=cv2.SOLVEPNP_SQPNP)
        # At frame t only the seed needs PnP's minimum; the part's size is tested over the whole sequence below
        # (a door whose tracks are lost as it turns has fewer than min_part_tracks visible at its peak frame).
        if not ok or inl is None or len(inl) < MIN_PNP_INLIERS:
            break
        members = idx[inl.reshape(-1)]
        poses = pnp_poses(points[members], tracks[:, members], visibility[:, members], K, cfg.part_reproj_px)
        # A part is a motion that explains enough tracks over the whole sequence, not at frame t alone (drifting
        # tracks agree with some rigid motion at one frame by chance).
        explained = remaining & (reprojection_errors(poses, points, tracks, visibility, K) <= cfg.part_reproj_px)
        if explained.sum() < cfg.min_part_tracks:
            break
        # A second door moves tens of pixels away from the first one's motion at some frame; tracks drifting off
        # a part stay within a few pixels of it all along: they do not make a new part. Compared on the poses of
        # every frame, not on the tracks: a part whose tracks are lost early is only seen while it barely moves.
        if any(_motion_gap(poses, P, points[explained], K) <= DISTINCT_PARTS * cfg.part_reproj_px
               for P in part_poses):
            break
        part_poses.append(poses)
        remaining &= ~explained
    return part_poses if cams is None else [np.linalg.inv(cams) @ P for P in part_poses]


def _follows(poses: np.ndarray, points: np.ndarray, tracks: np.ndarray, visibility: np.ndarray, ref: np.ndarray,
             K: np.ndarray) -> float:
    """How much tracks [T, M, 2] move the way a part's motion poses [T, 4, 4] (camera t) would move their frame-0
    points [M, 3]: the cosine between the two displacements from where the static scene puts the points (ref
    [T or 1, M, 2]), summed over the visible frames ([T, M]) with weights |observed| |predicted| -> [-1, 1]. A
    second door moving after the first, or the other way, scores about 0 or below; tracks dragged along by the
    part (static-body tracks under its occluding edge) or sliding along its texture score near 1."""
    observed = np.nan_to_num(tracks - ref)
    predicted = np.nan_to_num(_project(poses, points, K) - ref)
    dot = np.where(visibility, np.sum(observed * predicted, -1), 0.0).sum()
    norms = np.where(visibility, np.linalg.norm(observed, axis=-1) * np.linalg.norm(predicted, axis=-1), 0.0).sum()
    return float(dot / norms) if norms > 0 else 0.0


def _motion_gap(poses_a: np.ndarray, poses_b: np.ndarray, points: np.ndarray, K: np.ndarray) -> float:
    """How far apart two motions [T, 4, 4] put points [M, 3]: max over frames of the median pixel distance."""
    gap = np.linalg.norm(_project(poses_a, points, K) - _project(poses_b, points, K), axis=-1)
    return float(np.max(np.median(gap, axis=1)))


def assign_tracks(points: np.ndarray, tracks: np.ndarray, visibility: np.ndarray, K: np.ndarray,
                  part_poses: list[np.ndarray], usable: np.ndarray, cfg: SegmentationConfig,
                  T_cam_world: np.ndarray | None = None) -> np.ndarray:
    """Labels every usable track with the motion that reprojects it best: static (identity) or part p's poses.
    Undecided (-1) when the best error exceeds `part_reproj_px` or the runner-up is within `ambiguity_px` (tracks
    on a hinge line move with both); a track seen in under STATIC_SEEN of the frames is static only when it stays
    within `ambiguity_px` of its static position while seen. part_poses: world frame; T_cam_world: a moving camera
    (None: static).
    -> [N] int32."""
    T = tracks.shape[0]
    cams = _moving(T_cam_world)
    hyps = [np.tile(np.eye(4), (T, 1, 1))] + list(part_poses)
    if cams is not None:  # seen from camera t
        hyps = [cams @ P for P in hyps]
    err = np.stack([reprojection_errors(P, points, tracks, visibility, K) for P in hyps])  # [P + 1, N]
    order = np.sort(err, 0)
    labels = np.argmin(err, 0).astype(np.int32)
    gap = order[1] - order[0] if len(hyps) > 1 else np.full(len(points), np.inf)
    labels[~usable | (order[0] > cfg.part_reproj_px) | (gap < cfg.ambiguity_px)] = UNDECIDED
    drift = np.where(visibility, np.linalg.norm(tracks - _project(hyps[0], points, K), axis=-1), 0.0).max(0)
    labels[(labels == STATIC) & (visibility.mean(0) < STATIC_SEEN) & (drift > cfg.ambiguity_px)] = UNDECIDED
    return _drop_isolated(labels, tracks[0])


def label_tracks(points: np.ndarray, tracks: np.ndarray, visibility: np.ndarray, K: np.ndarray,
                 part_poses: list[np.ndarray], usable: np.ndarray, cfg: SegmentationConfig,
                 T_cam_world: np.ndarray | None = None) -> tuple[np.ndarray, list[np.ndarray]]:
    """`assign_tracks`, then, while another part remains, the part with the fewest tracks among those left with
    fewer than `min_part_tracks` or following another part (`_follows` > DRAGGED_COS) is dropped and the tracks
    relabelled: a part found on that many tracks can keep fewer once every track goes to its best motion (on LK
    tracks of cabinet2, a door's longest-kept tracks split off as a second motion of the same door and kept 3);
    tracks dragged along by a part fit a rigid motion of their own (module doc, step 2).
    -> (labels [N] int32, the kept part poses)."""
    part_poses = list(part_poses)
    cams = _moving(T_cam_world)
    ref = tracks[:1] if cams is None else static_tracks(points, K, cams)
    while True:
        labels = assign_tracks(points, tracks, visibility, K, part_poses, usable, cfg, T_cam_world)
        if len(part_poses) <= 1:
            return labels, part_poses
        counts = np.bincount(labels[labels > 0], minlength=len(part_poses) + 1)[1:]
        seen = [P if cams is None else cams @ P for P in part_poses]  # camera-t poses, as the tracks see them
        follows = [max(_follows(Q, points[m], tracks[:, m], visibility[:, m], ref[:, m], K)
                       for q, Q in enumerate(seen) if q != p)
                   for p, m in enumerate(labels[None] == np.arange(1, len(seen) + 1)[:, None])]
        drop = (counts < cfg.min_part_tracks) | (np.array(follows) > DRAGGED_COS)
        if not drop.any():
            return labels, part_poses
        part_poses.pop(int(np.argmin(np.where(drop, counts, np.iinfo(np.int64).max))))


def _drop_isolated(labels: np.ndarray, xy0: np.ndarray) -> np.ndarray:
    """A decided track whose label disagrees with nearly all its NEIGHBOURS nearest decided tracks (frame 0) is
    an outlier (a tracker stuck on an occluding edge, a drifting track) and becomes undecided."""
    decided = np.nonzero(labels >= 0)[0]
    if len(decided) <= NEIGHBOURS:
        return labels
    _, nn = cKDTree(xy0[decided]).query(xy0[decided], k=NEIGHBOURS + 1)
    agree = (labels[decided][nn[:, 1:]] == labels[decided][:, None]).sum(1)
    out = labels.copy()
    out[decided[agree <= NEIGHBOURS - MAJORITY]] = UNDECIDED
    return out


def _subsample(xy: np.ndarray, k: int) -> np.ndarray:
    if len(xy) <= k:
        return xy
    return xy[np.linspace(0, len(xy) - 1, k).round().astype(int)]


def part_masks(frames: np.ndarray, object_masks: np.ndarray, tracks: np.ndarray, visibility: np.ndarray,
               labels: np.ndarray, num_parts: int, cfg: SegmentationConfig,
               mask_fn: MaskFn | None = None) -> np.ndarray:
    """Eq. 2 per frame and part -> [T, P, H, W] bool (inside the object mask). Prompts: the part's visible tracks
    (positive) against the visible static and other-part tracks; at most `max_prompts` of each for `mask_fn`."""
    T, H, W = object_masks.shape
    out = np.zeros((T, num_parts, H, W), bool)
    for t in range(T):
        for p in range(1, num_parts + 1):
            pos = tracks[t, visibility[t] & (labels == p)]
            neg = tracks[t, visibility[t] & (labels >= 0) & (labels != p)]
            if mask_fn is not None and len(pos) == 0:
                continue  # the part is hidden at t: empty mask (SAM needs a positive prompt)
            if mask_fn is not None:
                m = mask_fn(frames[t], _subsample(pos, cfg.max_prompts), _subsample(neg, cfg.max_prompts), None)
                out[t, p - 1] = np.asarray(m, bool) & object_masks[t]
            else:
                out[t, p - 1] = prompt_mask(frames[t], object_masks[t], pos, neg, cfg.dynamic_mask)
    return out


def backproject_weights(masks0: np.ndarray, uv: np.ndarray, stride: int) -> np.ndarray:
    """Back projection of frame-0 part masks [P, H, W] onto Gaussians at pixels uv [G, 2] -> weights [G, P + 1]
    (w_s, then w_d per part): each part's share of the Gaussian's stride x stride sampling cell."""
    _, H, W = masks0.shape
    cols = np.clip(np.floor(uv[:, 0]).astype(int), 0, W - 1)
    rows = np.clip(np.floor(uv[:, 1]).astype(int), 0, H - 1)
    wd = np.stack([uniform_filter(m.astype(np.float32), size=stride, mode="nearest")[rows, cols] for m in masks0], -1)
    total = wd.sum(-1, keepdims=True)
    wd = np.where(total > 1, wd / np.maximum(total, 1e-9), wd)
    return np.concatenate([1.0 - wd.sum(-1, keepdims=True), wd], -1).clip(0, 1).astype(np.float32)


def binding_pairs(track_xy0: np.ndarray, motion: np.ndarray, labels: np.ndarray, means: np.ndarray,
                  log_scales: np.ndarray, uv: np.ndarray, gaussian_part: np.ndarray, cfg: SegmentationConfig,
                  stride: int, judged: np.ndarray | None = None):
    """Eq. 3 -> (pairs [E, 2] int32 (dynamic, static Gaussian), quasi_static [N] bool). The radius is
    max(binding_radius_m, CELLS_PER_RADIUS sampling cells of the dynamic Gaussian). At most `max_binding_pairs`,
    evenly subsampled. judged: [N] bool, the tracks whose motion can tell a quasi-static point (None: all)."""
    quasi = np.zeros(len(labels), bool)
    judged = np.ones(len(labels), bool) if judged is None else judged
    for p in np.unique(labels[(labels > 0) & judged]):
        sel = (labels == p) & judged
        thr = max(np.percentile(motion[sel], cfg.quasi_static_percentile), cfg.quasi_static_min_px)
        quasi |= sel & (motion <= thr)
    static_idx = np.nonzero(gaussian_part == 0)[0]
    if not quasi.any() or static_idx.size == 0:
        return np.zeros((0, 2), np.int32), quasi
    pix_tree = cKDTree(uv)
    dyn = set()
    for xy, p in zip(track_xy0[quasi], labels[quasi]):
        dyn.update(i for i in pix_tree.query_ball_point(xy, stride) if gaussian_part[i] == p)
    dyn = np.array(sorted(dyn), int)
    if dyn.size == 0:
        return np.zeros((0, 2), np.int32), quasi
    # A radius below the Gaussians' spacing finds no neighbour: search at least CELLS_PER_RADIUS cells away.
    cell = np.exp(log_scales[dyn, 0]) * 2.0  # sigma is half a sampling cell (object_gaussians)
    radius = np.maximum(cfg.binding_radius_m, CELLS_PER_RADIUS * cell)
    tree = cKDTree(means[static_idx])
    near = [tree.query_ball_point(m, r) for m, r in zip(means[dyn], radius)]
    pairs = np.array([(d, static_idx[s]) for d, ss in zip(dyn, near) for s in ss], np.int32).reshape(-1, 2)
    if len(pairs) > cfg.max_binding_pairs:
        pairs = pairs[np.linspace(0, len(pairs) - 1, cfg.max_binding_pairs).round().astype(int)]
    return pairs, quasi


def motion_evidence(raw: np.ndarray, residual: np.ndarray, usable: np.ndarray, classes: np.ndarray,
                    cfg: SegmentationConfig, compensated: bool) -> dict:
    """What the moving/static decision rests on (JSON-able): counts per Eq. 1 class and the usable tracks' motion
    statistics in px, raw (from frame 0) and residual (after camera compensation; the raw one for a static camera)."""
    def stats(m):
        m = m[usable]
        q = np.percentile(m, [50, 90, 99]) if m.size else np.zeros(3)
        return {"median": float(q[0]), "p90": float(q[1]), "p99": float(q[2]),
                "max": float(m.max()) if m.size else 0.0}

    return {"camera_compensated": bool(compensated), "usable_tracks": int(usable.sum()),
            "dynamic_px": cfg.dynamic_px, "static_px": cfg.static_px,
            "dynamic_tracks": int((classes == 1).sum()), "static_tracks": int((classes == STATIC).sum()),
            "undecided_tracks": int((usable & (classes == UNDECIDED)).sum()),
            "residual_motion_px": stats(residual), "raw_motion_px": stats(raw)}


def segment(frames: np.ndarray, object_masks: np.ndarray, depth: np.ndarray, K: np.ndarray, tracks: np.ndarray,
            visibility: np.ndarray, cfg: SegmentationConfig, mask_fn: MaskFn | None = None,
            T_cam_world: np.ndarray | None = None) -> PartSegmentation:
    """Runs steps 1-5 of the module doc on a bundle's arrays (see arthoi_jax.io.bundle for shapes).

    T_cam_world: [T, 4, 4] world-to-camera extrinsics of a moving camera (world = camera 0); None: static.
    Raises NoMovingPartError (an InputError, with `evidence`) when no track moves more than `dynamic_px` (after
    camera compensation) or no moving part can be found.
    """
    K = np.asarray(K, np.float64)
    cams = _moving(T_cam_world)
    points, usable = track_points_3d(tracks[0], depth, object_masks[0], K)
    usable &= visibility[0]
    raw = track_motion(tracks, visibility)
    motion = raw if cams is None else residual_motion(tracks, visibility, points, usable, K, cams)
    cls = classify_tracks(motion, usable, cfg)
    evidence = motion_evidence(raw, motion, usable, cls, cfg, cams is not None)
    rel = " relative to the static scene (camera motion compensated)" if cams is not None else ""
    if not (cls == 1).any():
        raise NoMovingPartError(
            f"segmentation: no moving part found: no track moves more than segmentation.dynamic_px="
            f"{cfg.dynamic_px} px{rel} (largest motion {motion[usable].max() if usable.any() else 0:.2f} px over "
            f"{int(usable.sum())} usable tracks); is anything articulated in this video?", evidence)
    part_poses = find_moving_parts(points, tracks, visibility, K, cls == 1, cfg, cams)
    if not part_poses:
        raise NoMovingPartError(
            f"segmentation: no moving part found: {int((cls == 1).sum())} dynamic tracks{rel}, but no rigid part "
            f"of at least segmentation.min_part_tracks={cfg.min_part_tracks} tracks moves consistently (within "
            f"segmentation.part_reproj_px={cfg.part_reproj_px} px)", evidence)
    labels, part_poses = label_tracks(points, tracks, visibility, K, part_poses, usable, cfg, cams)
    if cams is not None:
        _check_not_whole_object(labels, part_poses, evidence)
    num_parts = int(labels.max())
    masks = part_masks(frames, object_masks, tracks, visibility, labels, num_parts, cfg, mask_fn)
    g, uv = backproject_gaussians(frames[0], depth, object_masks[0], K, cfg.gaussian_stride)
    weights = backproject_weights(masks[0], uv, cfg.gaussian_stride)
    judged = visibility.mean(0) >= QUASI_STATIC_SEEN  # a track lost early has no large motion to show
    pairs, quasi = binding_pairs(tracks[0], motion, labels, np.asarray(g.means), np.asarray(g.log_scales), uv,
                                 np.argmax(weights, -1), cfg, cfg.gaussian_stride, judged)
    return PartSegmentation(track_labels=labels, track_points=points * usable[:, None], track_motion_px=motion,
                            quasi_static=quasi, part_masks=masks, gaussians=g, gaussian_uv=uv, weights=weights,
                            binding_pairs=pairs)


def _check_not_whole_object(labels: np.ndarray, part_poses: list[np.ndarray], evidence: dict) -> None:
    """Raises NoMovingPartError when less than MIN_STATIC_SHARE of the decided tracks stay static (module doc)."""
    decided = int((labels >= 0).sum())
    static = int((labels == STATIC).sum())
    if static >= MIN_STATIC_SHARE * decided:
        return
    parts = []
    for p, P in enumerate(part_poses, 1):
        rot = rotation_errors_deg(P[:, :3, :3], np.eye(3))
        parts.append({"tracks": int((labels == p).sum()), "max_rotation_deg": float(rot.max()),
                      "max_translation_m": float(np.linalg.norm(P[:, :3, 3], axis=1).max())})
    evidence = {**evidence, "decided_tracks": decided, "static_share": static / max(decided, 1),
                "rigid_motions": parts}
    raise NoMovingPartError(
        f"segmentation: no moving part found: only {static} of the {decided} decided object tracks "
        f"({100 * static / max(decided, 1):.1f} % < {100 * MIN_STATIC_SHARE:.0f} %) stay static under the estimated "
        f"camera motion; the rest follow {len(parts)} rigid motion(s) of up to "
        f"{max(q['max_rotation_deg'] for q in parts):.2f} deg (residual motion median "
        f"{evidence['residual_motion_px']['median']:.2f} px): the whole object drifts against the camera estimate, "
        f"its error, not a part of it", evidence)


def rigid_segmentation(frames: np.ndarray, object_masks: np.ndarray, depth: np.ndarray, K: np.ndarray,
                       tracks: np.ndarray, visibility: np.ndarray, cfg: SegmentationConfig,
                       T_cam_world: np.ndarray | None = None) -> PartSegmentation:
    """The segmentation of a rigid object (P = 0 moving parts): every usable track static, every Gaussian fully
    static, no part masks and no binding pairs. What the pipeline uses after `NoMovingPartError` on a video."""
    K = np.asarray(K, np.float64)
    points, usable = track_points_3d(tracks[0], depth, object_masks[0], K)
    usable &= visibility[0]
    motion = residual_motion(tracks, visibility, points, usable, K, _moving(T_cam_world))
    g, uv = backproject_gaussians(frames[0], depth, object_masks[0], K, cfg.gaussian_stride)
    T, H, W = object_masks.shape
    return PartSegmentation(track_labels=np.where(usable, STATIC, UNDECIDED).astype(np.int32),
                            track_points=points * usable[:, None], track_motion_px=motion,
                            quasi_static=np.zeros(len(usable), bool), part_masks=np.zeros((T, 0, H, W), bool),
                            gaussians=g, gaussian_uv=uv, weights=np.ones((len(uv), 1), np.float32),
                            binding_pairs=np.zeros((0, 2), np.int32))
