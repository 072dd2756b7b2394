"""Flow-based part segmentation (paper Sec. 3.1, Eq. 1-3, App. A).

1. Track motion: each track's largest displacement from its frame-0 position over the visible frames. Dynamic:
   > `dynamic_px` (5 px); static: <= `static_px` (2 px); in between: undecided (no prompt). The paper thresholds
   per-frame flow; on a slowly opening door per-frame flow stays under 5 px, so the sequence displacement is used.
2. Moving parts: the dynamic tracks seed a sequential RANSAC: PnP (frame-0 3D points from the depth, 2D
   positions at the frame of largest motion) takes the largest consistent set as one part and its per-frame
   motion, then the rest, up to `max_moving_parts`, while a motion explains at least `min_part_tracks` tracks
   over the whole sequence and differs from every earlier part's (tracks drifting off a part are no new part).
   Every track is then labelled with the motion (static or a part's) that reprojects it best, undecided when two
   motions explain it about equally or it is isolated among differently labelled neighbours: Eq. 1's thresholds
   alone call a door's points near its hinge static, and those negative prompts cut the door mask short.
3. Eq. 2: per frame and part, a mask from the part's tracks (positive) against the static and other parts' tracks
   (negative): SAM through `mask_fn` when given, else `grabcut_masks.prompt_mask` (GrabCut or Voronoi "tracks").
4. Back projection: the canonical Gaussians are frame-0 pixels, so a Gaussian's weight for part p is the
   part-p fraction of its frame-0 sampling cell (w_d); the static weight is the rest (w_s).
5. Eq. 3: quasi-static tracks are a part's dynamic tracks moving at most max(its 10th percentile, 1 px); their
   Gaussians bind to the static Gaussians within `binding_radius_m` (0.05 m, paper) or two sampling cells,
   whichever is larger: at 256 x 192 and stride 4 a cell is ~5 cm at 3 m, so the paper's radius alone binds
   nothing on the synthetic door.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import cv2
import numpy as np
from scipy.ndimage import uniform_filter
from scipy.spatial import cKDTree

from arthoi_jax.config import SegmentationConfig
from arthoi_jax.errors import InputError
from arthoi_jax.grabcut_masks import prompt_mask
from arthoi_jax.object_gaussians import backproject_gaussians
from arthoi_jax.render.types import Gaussians

UNDECIDED, STATIC = -1, 0
CELLS_PER_RADIUS = 2.0
NEIGHBOURS, MAJORITY = 6, 5  # isolated-label filter: undecided when >= 5 of 6 neighbours disagree
DISTINCT_PARTS = 3.0  # a new part's tracks must reproject this many part_reproj_px off every earlier part
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
              reproj_px: float) -> np.ndarray:
    """Per-frame rigid pose of one part from its tracks (the closed-form Stage I initialization).

    points: [M, 3] frame-0 3D points; tracks: [T, M, 2] px; visibility: [T, M] -> [T, 4, 4] poses mapping frame-0
    points to frame t (pose 0 = I). Each frame: RANSAC PnP warm-started from the previous frame, refined (LM) on
    its inliers; a frame with fewer than 6 visible tracks or a failed solve keeps the previous pose.
    """
    T = tracks.shape[0]
    poses = np.tile(np.eye(4), (T, 1, 1))
    rvec, tvec = np.zeros((3, 1)), np.zeros((3, 1))
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
    return poses


def reprojection_errors(poses: np.ndarray, points: np.ndarray, tracks: np.ndarray, visibility: np.ndarray,
                        K: np.ndarray) -> np.ndarray:
    """Mean over visible frames of |project(pose_t x) - track_t| per track: [T,4,4],[N,3],[T,N,2],[T,N] -> [N] px."""
    cam = np.einsum("tij,nj->tni", poses[:, :3, :3], points) + poses[:, None, :3, 3]
    z = np.maximum(cam[..., 2:3], 1e-6)
    uv = cam[..., :2] / z * np.array([K[0, 0], K[1, 1]]) + np.array([K[0, 2], K[1, 2]])
    err = np.linalg.norm(uv - tracks, axis=-1)
    n = np.maximum(visibility.sum(0), 1)
    return np.where(visibility, err, 0.0).sum(0) / n


def find_moving_parts(points: np.ndarray, tracks: np.ndarray, visibility: np.ndarray, K: np.ndarray,
                      dynamic: np.ndarray, cfg: SegmentationConfig) -> list[np.ndarray]:
    """Sequential RANSAC (step 2 of the module doc). dynamic: [N] bool seeds -> per part its poses [T, 4, 4]."""
    remaining = dynamic.copy()
    part_poses = []
    disp = np.linalg.norm(tracks - tracks[:1], axis=-1)
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
        if not ok or inl is None or len(inl) < cfg.min_part_tracks:
            break
        members = idx[inl.reshape(-1)]
        poses = pnp_poses(points[members], tracks[:, members], visibility[:, members], K, cfg.part_reproj_px)
        # A part is a motion that explains enough tracks over the whole sequence, not at frame t alone (drifting
        # tracks agree with some rigid motion at one frame by chance).
        explained = remaining & (reprojection_errors(poses, points, tracks, visibility, K) <= cfg.part_reproj_px)
        if explained.sum() < cfg.min_part_tracks:
            break
        # A second door moves tens of pixels away from the first one's motion; tracks drifting off a part stay
        # within a few pixels of it: they do not make a new part.
        if any(np.median(reprojection_errors(P, points[explained], tracks[:, explained], visibility[:, explained],
                                             K)) <= DISTINCT_PARTS * cfg.part_reproj_px for P in part_poses):
            break
        part_poses.append(poses)
        remaining &= ~explained
    return part_poses


def assign_tracks(points: np.ndarray, tracks: np.ndarray, visibility: np.ndarray, K: np.ndarray,
                  part_poses: list[np.ndarray], usable: np.ndarray, cfg: SegmentationConfig) -> np.ndarray:
    """Labels every usable track with the motion that reprojects it best: static (identity) or part p's poses.
    Undecided (-1) when the best error exceeds `part_reproj_px` or the runner-up is within `ambiguity_px` (tracks
    on a hinge line move with both). -> [N] int32."""
    T = tracks.shape[0]
    hyps = [np.tile(np.eye(4), (T, 1, 1))] + list(part_poses)
    err = np.stack([reprojection_errors(P, points, tracks, visibility, K) for P in hyps])  # [P + 1, N]
    order = np.sort(err, 0)
    labels = np.argmin(err, 0).astype(np.int32)
    gap = order[1] - order[0] if len(hyps) > 1 else np.full(len(points), np.inf)
    labels[~usable | (order[0] > cfg.part_reproj_px) | (gap < cfg.ambiguity_px)] = UNDECIDED
    return _drop_isolated(labels, tracks[0])


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
                  stride: int):
    """Eq. 3 -> (pairs [E, 2] int32 (dynamic, static Gaussian), quasi_static [N] bool). The radius is
    max(binding_radius_m, CELLS_PER_RADIUS sampling cells of the dynamic Gaussian). At most `max_binding_pairs`,
    evenly subsampled."""
    quasi = np.zeros(len(labels), bool)
    for p in np.unique(labels[labels > 0]):
        sel = labels == p
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


def segment(frames: np.ndarray, object_masks: np.ndarray, depth: np.ndarray, K: np.ndarray, tracks: np.ndarray,
            visibility: np.ndarray, cfg: SegmentationConfig, mask_fn: MaskFn | None = None) -> PartSegmentation:
    """Runs steps 1-5 of the module doc on a bundle's arrays (see arthoi_jax.io.bundle for shapes).

    Raises InputError when no track moves more than `dynamic_px` or no moving part can be found.
    """
    K = np.asarray(K, np.float64)
    points, usable = track_points_3d(tracks[0], depth, object_masks[0], K)
    usable &= visibility[0]
    motion = track_motion(tracks, visibility)
    cls = classify_tracks(motion, usable, cfg)
    if not (cls == 1).any():
        raise InputError(f"segmentation: no track moves more than segmentation.dynamic_px={cfg.dynamic_px} px "
                         f"(largest motion {motion[usable].max() if usable.any() else 0:.2f} px over "
                         f"{int(usable.sum())} usable tracks); is anything articulated in this video?")
    part_poses = find_moving_parts(points, tracks, visibility, K, cls == 1, cfg)
    if not part_poses:
        raise InputError(f"segmentation: {int((cls == 1).sum())} dynamic tracks, but no rigid part of at least "
                         f"segmentation.min_part_tracks={cfg.min_part_tracks} tracks moves consistently "
                         f"(within segmentation.part_reproj_px={cfg.part_reproj_px} px)")
    labels = assign_tracks(points, tracks, visibility, K, part_poses, usable, cfg)
    num_parts = int(labels.max())
    masks = part_masks(frames, object_masks, tracks, visibility, labels, num_parts, cfg, mask_fn)
    g, uv = backproject_gaussians(frames[0], depth, object_masks[0], K, cfg.gaussian_stride)
    weights = backproject_weights(masks[0], uv, cfg.gaussian_stride)
    pairs, quasi = binding_pairs(tracks[0], motion, labels, np.asarray(g.means), np.asarray(g.log_scales), uv,
                                 np.argmax(weights, -1), cfg, cfg.gaussian_stride)
    return PartSegmentation(track_labels=labels, track_points=points * usable[:, None], track_motion_px=motion,
                            quasi_static=quasi, part_masks=masks, gaussians=g, gaussian_uv=uv, weights=weights,
                            binding_pairs=pairs)
