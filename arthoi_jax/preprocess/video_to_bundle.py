"""Assembles a scene bundle from decoded frames and side inputs. Pure except for the adapters it is handed
(SAM, a tracker, a depth model, an SMPL-X joint function), which the pipeline builds from the config.

Order: camera -> frame-0 masks (files or SAM prompts) -> tracks of grid queries inside the object mask (plus a
coarse grid elsewhere, used only to give SAM negative prompts) -> masks of every frame -> depth of frame 0 ->
human initialisation (GVHMR parameters, hand keypoints) -> validated `SceneBundle`.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Callable, Optional

import numpy as np

from arthoi_jax.config import PreprocessConfig
from arthoi_jax.errors import ConfigError, InputError
from arthoi_jax.io.bundle import SceneBundle, SmplxParams, validate_bundle
from arthoi_jax.preprocess import depth as depth_lib
from arthoi_jax.preprocess import hands as hands_lib
from arthoi_jax.preprocess import masks as masks_lib
from arthoi_jax.preprocess.lk_tracker import grid_queries, track_points, track_points_dense

log = logging.getLogger("arthoi_jax")

# (frames [T, H, W, 3] uint8, queries [N, 2]) -> (tracks [T, N, 2], visibility [T, N])
Tracker = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
# Context grid for SAM's negative prompts is this many times coarser than the object grid.
CONTEXT_GRID_FACTOR = 4


@dataclasses.dataclass(frozen=True)
class SideInputs:
    """What the pipeline read from disk besides the frames (all optional)."""

    object_masks: Optional[np.ndarray] = None  # [1 or T, H, W] bool at the output size
    human_masks: Optional[np.ndarray] = None
    depth: Optional[np.ndarray] = None  # [h, w] metres, any size (resized to the frames)
    smplx_init: Optional[SmplxParams] = None  # camera-0 frame, OpenCV axes, one entry per output frame
    hmr_K: Optional[np.ndarray] = None  # [3, 3] the HMR's intrinsics of frame 0, source-video pixels
    hand_keypoints: Optional[tuple[np.ndarray, np.ndarray]] = None  # source-video pixels, see hands.py


def resolve(cfg: PreprocessConfig, source: str) -> dict[str, str]:
    """The concrete mask, tracker and depth methods that 'auto' stands for, for scene source `source`."""
    synthetic = source in ("synthetic", "bundle")
    masks = cfg.masks
    if masks == "auto":
        masks = "gt" if synthetic else ("files" if cfg.object_mask_path else "sam")
    tracker = cfg.tracker
    if tracker == "auto":
        tracker = "gt" if synthetic else ("cotracker" if cfg.cotracker_checkpoint else "dense")
    depth = cfg.depth
    if depth == "auto":
        depth = "gt" if synthetic else "file" if cfg.depth_path else "model" if cfg.depth_model else "constant"
    if not synthetic:
        for key, value in (("masks", masks), ("tracker", tracker), ("depth", depth)):
            if value == "gt":
                raise ConfigError(f"preprocess.{key}: 'gt' needs a synthetic scene; a video has no ground truth")
    if masks == "sam" and not cfg.sam_checkpoint:
        raise ConfigError("preprocess.sam_checkpoint: required for masks from SAM prompts; or give mask images "
                          "with preprocess.object_mask_path (the weight-free default)")
    if masks == "files" and not cfg.object_mask_path:
        raise ConfigError("preprocess.object_mask_path: required when preprocess.masks is 'files'")
    if tracker == "cotracker" and not cfg.cotracker_checkpoint:
        raise ConfigError("preprocess.cotracker_checkpoint: required when preprocess.tracker is 'cotracker'")
    if depth == "file" and not cfg.depth_path:
        raise ConfigError("preprocess.depth_path: required when preprocess.depth is 'file'")
    if depth == "model" and not cfg.depth_model:
        raise ConfigError("preprocess.depth_model: required when preprocess.depth is 'model'")
    return {"masks": masks, "tracker": tracker, "depth": depth}


def intrinsics(cfg: PreprocessConfig, source_hw: tuple[int, int], size_hw: tuple[int, int],
               hmr_K: Optional[np.ndarray] = None) -> np.ndarray:
    """K [3, 3] float64 at the output size, from the first of: the configured (fx, fy, cx, cy) in source
    pixels; the HMR's K (source pixels; so the imported body projects where the HMR saw it); a centred
    principal point with horizontal field of view `fov_deg`."""
    (sh, sw), (h, w) = source_hw, size_hw
    if cfg.intrinsics is not None or hmr_K is not None:
        fx, fy, cx, cy = cfg.intrinsics or (hmr_K[0, 0], hmr_K[1, 1], hmr_K[0, 2], hmr_K[1, 2])
        sx, sy = w / sw, h / sh
        return np.array([[fx * sx, 0.0, cx * sx], [0.0, fy * sy, cy * sy], [0.0, 0.0, 1.0]])
    f = 0.5 * w / np.tan(np.deg2rad(cfg.fov_deg) / 2)
    return np.array([[f, 0.0, w / 2], [0.0, f, h / 2], [0.0, 0.0, 1.0]])


def _points(pts) -> np.ndarray:
    return np.asarray(pts, np.float64).reshape(-1, 2)


def first_masks(frames: np.ndarray, cfg: PreprocessConfig, side: SideInputs, method: str, sam):
    """Frame-0 (object, human-or-None) masks from the mask files or SAM prompts."""
    size = frames.shape[1:3]
    human = None
    if side.human_masks is not None:
        human = side.human_masks[0].astype(bool)  # may be empty: the person can enter later
    if method == "files":
        obj = masks_lib.check_first_mask(side.object_masks[0], size, f"object mask {cfg.object_mask_path}")
        return obj, human
    if not cfg.object_points and cfg.object_box is None:
        raise ConfigError("preprocess.object_points / preprocess.object_box: SAM needs a prompt on frame 0 "
                          "(points on the object, in output pixels, or a box around it)")
    obj = sam.predict(frames[0], _points(cfg.object_points), _points(cfg.object_negative_points), cfg.object_box)
    obj = masks_lib.check_first_mask(obj, size, "SAM object mask")
    if human is None and (cfg.human_points or cfg.human_box is not None):
        human = sam.predict(frames[0], _points(cfg.human_points), _points(cfg.object_points), cfg.human_box)
    return obj, human


def carry_masks(frames, mask0, given: Optional[np.ndarray], sam, tracks, vis, inside) -> np.ndarray:
    """Masks of every frame: given per-frame masks, else SAM prompted by tracks, else DIS flow."""
    T = len(frames)
    if given is not None and len(given) >= T:
        return given[:T].astype(bool)
    if sam is not None:
        return masks_lib.masks_with_sam(frames, sam, mask0, tracks, vis, inside)
    return masks_lib.carry_mask_with_flow(frames, mask0)


def video_to_bundle(frames: np.ndarray, fps: float, source_hw: tuple[int, int], cfg: PreprocessConfig,
                    side: SideInputs = SideInputs(), *, methods: Optional[dict] = None, sam=None,
                    tracker: Optional[Tracker] = None, depth_model=None,
                    joints_fn: Optional[Callable[[SmplxParams], np.ndarray]] = None) -> SceneBundle:
    """Builds and validates the scene bundle of a video.

    Args:
      frames: [T, H, W, 3] uint8 RGB at the output size; fps: frames per second; source_hw: size before resizing.
      cfg: the `preprocess` config section; side: masks/depth/HMR read from disk.
      methods: `resolve(cfg, "video")` (computed when None).
      sam: a `SamAdapter` when masks come from SAM; tracker: `track_points`-like (default: the weight-free
      tracker `methods["tracker"]` with cfg's settings); depth_model: a `MonocularDepthAdapter` when depth
      comes from a model;
      joints_fn: SMPL-X params -> joints [T, J, 3] (smplx order), to project hand keypoints from the HMR result.
    Raises:
      ConfigError / InputError naming what is missing or malformed; BundleError if the result is inconsistent.
    """
    methods = methods or resolve(cfg, "video")
    T, H, W, _ = frames.shape
    K = intrinsics(cfg, source_hw, (H, W), side.hmr_K)
    obj0, human0 = first_masks(frames, cfg, side, methods["masks"], sam)
    tracker = tracker or flow_tracker(cfg, methods["tracker"])

    # Object queries first, then (for SAM) a coarse context grid elsewhere; one tracker call for all.
    obj_q = grid_queries(obj0, cfg.grid_step_px, max_points=cfg.max_tracks, erode_px=1)
    ctx_q = np.zeros((0, 2), np.float32)
    if methods["masks"] == "sam":
        ctx_q = grid_queries(~obj0, cfg.grid_step_px * CONTEXT_GRID_FACTOR, allow_empty=True)
    queries = np.concatenate([obj_q, ctx_q])
    tracks, vis = tracker(frames, queries)
    vis = vis & _inside(tracks, H, W)
    n = len(obj_q)
    inside_obj = np.arange(len(queries)) < n
    use_sam = sam if methods["masks"] == "sam" else None
    object_masks = carry_masks(frames, obj0, side.object_masks, use_sam, tracks, vis, inside_obj)
    masks_lib.log_empty_frames(object_masks, "object")
    if side.human_masks is not None and len(side.human_masks) >= T:
        human_masks = side.human_masks[:T].astype(bool)
        masks_lib.log_empty_frames(human_masks, "human")
    elif human0 is not None and human0.any():
        inside_h = human0[queries[:, 1].astype(int), queries[:, 0].astype(int)]  # queries are pixel centres
        human_masks = carry_masks(frames, human0, side.human_masks, use_sam, tracks, vis, inside_h)
        masks_lib.log_empty_frames(human_masks, "human")
    else:
        log.warning("human: no human mask given (preprocess.human_mask_path or human_points/box); "
                    "human_masks are empty in every frame")
        human_masks = np.zeros((T, H, W), bool)

    if methods["depth"] == "file":
        depth = depth_lib.fit_depth(side.depth, (H, W), obj0, f"depth file {cfg.depth_path}")
    elif methods["depth"] == "model":
        depth = depth_model.predict(frames[0], obj0, cfg.depth_median_m)
    else:
        depth = depth_lib.constant_depth((H, W), cfg.depth_median_m)

    if side.smplx_init is not None and side.smplx_init.global_orient.shape[0] != T:
        raise InputError(f"preprocess.gvhmr_results: {side.smplx_init.global_orient.shape[0]} frames of HMR "
                         f"parameters for {T} video frames (check preprocess.frame_step / max_frames)")
    hand_kp = hand_conf = None
    if side.hand_keypoints is not None:
        hand_kp, hand_conf = hands_lib.rescale_hand_keypoints(*side.hand_keypoints, source_hw, (H, W), T,
                                                              cfg.frame_step, what=str(cfg.hand_keypoints_path))
    elif side.smplx_init is not None and joints_fn is not None:
        hand_kp, hand_conf = hands_lib.project_hand_joints(joints_fn(side.smplx_init), K, (H, W))

    bundle = SceneBundle(
        frames=frames, fps=float(fps), K=K, object_masks=object_masks, human_masks=human_masks,
        tracks=tracks[:, :n].astype(np.float32), visibility=vis[:, :n].astype(bool), depth=depth,
        prompt=cfg.prompt, smplx_init=side.smplx_init, hand_keypoints=hand_kp, hand_keypoint_conf=hand_conf,
    )
    validate_bundle(bundle)
    log.info("preprocess: %d frames %dx%d at %.2f fps, %d object tracks (%.0f%% visible), masks %s, "
             "tracker %s, depth %s", T, W, H, fps, n, 100 * vis[:, :n].mean(), methods["masks"],
             methods["tracker"], methods["depth"])
    return bundle


def subsample_smplx(params: SmplxParams, frame_step: int, num_frames: int, what: str) -> SmplxParams:
    """Per-frame SMPL-X parameters of the source video -> those of the kept frames (every `frame_step`-th,
    the first `num_frames`). Raises InputError when there are too few."""
    T = params.global_orient.shape[0]
    kept = -(-T // frame_step)
    if kept < num_frames:
        raise InputError(f"{what}: {T} frames of HMR parameters give {kept} after frame_step {frame_step}, "
                         f"for {num_frames} video frames")
    per_frame = {f.name: getattr(params, f.name)[::frame_step][:num_frames] for f in dataclasses.fields(params)
                 if isinstance(getattr(params, f.name), np.ndarray) and f.name != "betas"}
    return dataclasses.replace(params, **per_frame)


def _inside(tracks: np.ndarray, H: int, W: int) -> np.ndarray:
    x, y = tracks[..., 0], tracks[..., 1]
    return (x >= 0) & (x <= W) & (y >= 0) & (y <= H)


def flow_tracker(cfg: PreprocessConfig, method: str) -> Tracker:
    """The weight-free tracker `method` ("lk" | "dense") with the config's settings."""
    def track(frames, queries):
        if method == "dense":
            return track_points_dense(frames, queries, fb_threshold_px=cfg.fb_threshold_px)
        return track_points(frames, queries, window_px=cfg.lk_window_px, levels=cfg.lk_levels,
                            fb_threshold_px=cfg.fb_threshold_px, max_patch_error=cfg.lk_max_error)
    return track


def retrack_bundle(bundle: SceneBundle, cfg: PreprocessConfig, tracker: Tracker) -> SceneBundle:
    """A (synthetic) bundle with its tracks replaced by `tracker`'s, queried on a grid inside the frame-0
    object mask exactly as for a video; everything else, ground truth included, is kept."""
    queries = grid_queries(bundle.object_masks[0], cfg.grid_step_px, max_points=cfg.max_tracks, erode_px=1)
    tracks, vis = tracker(bundle.frames, queries)
    vis = vis & _inside(tracks, *bundle.image_size)
    out = dataclasses.replace(bundle, tracks=tracks.astype(np.float32), visibility=vis.astype(bool))
    validate_bundle(out)
    return out
