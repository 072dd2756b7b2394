"""Assembles a scene bundle from decoded frames and side inputs. Pure except for the adapters it is handed
(SAM, a tracker, a depth model, an SMPL-X joint function), which the pipeline builds from the config.

Order: camera -> human perception (MediaPipe: person masks, body landmarks, hands) -> frame-0 masks (files, SAM
prompts, or GrabCut seeded by the prompts) -> tracks of grid queries inside the object mask (plus a coarse grid
elsewhere, used only to give SAM negative prompts) -> masks of every frame -> body fit to the landmarks (when no
GVHMR result is given) -> depth of frame 0 -> camera motion from the background -> foot contact -> human
initialisation in the world frame (GVHMR parameters or the fit, hand keypoints) -> validated `SceneBundle`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

import numpy as np

from arthoi_jax.config import PreprocessConfig
from arthoi_jax.errors import ConfigError, InputError
from arthoi_jax.io.bundle import SceneBundle, SmplxParams, validate_bundle
from arthoi_jax.preprocess import depth as depth_lib
from arthoi_jax.preprocess import hands as hands_lib
from arthoi_jax.preprocess import masks as masks_lib
from arthoi_jax.preprocess import scene_depth
from arthoi_jax.preprocess.foot_contact import foot_contact_from_landmarks
from arthoi_jax.preprocess.lk_tracker import (
    grid_queries,
    track_points,
    track_points_dense,
)
from arthoi_jax.preprocess.object_prompt import grabcut_object_mask

log = logging.getLogger("arthoi_jax")

# (frames [T, H, W, 3] uint8, queries [N, 2]) -> (tracks [T, N, 2], visibility [T, N])
Tracker = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
# Context grid for SAM's negative prompts is this many times coarser than the object grid.
CONTEXT_GRID_FACTOR = 4


@dataclasses.dataclass(frozen=True)
class SideInputs:
    """What the pipeline read from disk besides the frames (all optional)."""

    object_masks: np.ndarray | None = None  # [1 or T, H, W] bool at the output size
    human_masks: np.ndarray | None = None
    depth: np.ndarray | None = None  # [h, w] metres, any size (resized to the frames)
    smplx_init: SmplxParams | None = None  # camera-0 frame, OpenCV axes, one entry per output frame
    hmr_K: np.ndarray | None = None  # [3, 3] the HMR's intrinsics of frame 0, source-video pixels
    hand_keypoints: tuple[np.ndarray, np.ndarray] | None = None  # source-video pixels, see hands.py


def resolve(cfg: PreprocessConfig, source: str) -> dict[str, str]:
    """The concrete mask, tracker, depth and human-perception methods that 'auto' stands for, for scene source
    `source`."""
    synthetic = source in ("synthetic", "bundle")
    human = cfg.human
    if human == "auto":
        human = "none" if synthetic else "files" if cfg.human_mask_path else "mediapipe"
    if human == "files" and not cfg.human_mask_path:
        raise ConfigError("preprocess.human_mask_path: required when preprocess.human is 'files'")
    masks = cfg.masks
    if masks == "auto":
        masks = ("gt" if synthetic else "files" if cfg.object_mask_path else "sam" if cfg.sam_checkpoint
                 else "grabcut")
    tracker = cfg.tracker
    if tracker == "auto":
        tracker = "gt" if synthetic else ("cotracker" if cfg.cotracker_checkpoint else "dense")
    depth = cfg.depth
    if depth == "auto":
        body = human == "mediapipe" or cfg.gvhmr_results
        depth = ("gt" if synthetic else "file" if cfg.depth_path else "model" if cfg.depth_model
                 else "geometry" if body else "constant")
    if not synthetic:
        for key, value in (("masks", masks), ("tracker", tracker), ("depth", depth)):
            if value == "gt":
                raise ConfigError(f"preprocess.{key}: 'gt' needs a synthetic scene; a video has no ground truth")
    if masks == "sam" and not cfg.sam_checkpoint:
        raise ConfigError("preprocess.sam_checkpoint: required for masks from SAM prompts; or give mask images "
                          "with preprocess.object_mask_path (the weight-free default)")
    if masks == "files" and not cfg.object_mask_path:
        raise ConfigError("preprocess.object_mask_path: required when preprocess.masks is 'files'")
    if masks == "grabcut" and not cfg.object_points and cfg.object_box is None:
        raise ConfigError("preprocess.object_box / preprocess.object_points: a video needs the object marked on "
                          "frame 0: a box or points (GrabCut, no weights), a mask image (object_mask_path), or "
                          "prompts plus preprocess.sam_checkpoint for SAM")
    if tracker == "cotracker" and not cfg.cotracker_checkpoint:
        raise ConfigError("preprocess.cotracker_checkpoint: required when preprocess.tracker is 'cotracker'")
    if depth == "file" and not cfg.depth_path:
        raise ConfigError("preprocess.depth_path: required when preprocess.depth is 'file'")
    if depth == "model" and not cfg.depth_model:
        raise ConfigError("preprocess.depth_model: required when preprocess.depth is 'model'")
    return {"masks": masks, "tracker": tracker, "depth": depth, "human": human}


def intrinsics(cfg: PreprocessConfig, source_hw: tuple[int, int], size_hw: tuple[int, int],
               hmr_K: np.ndarray | None = None) -> np.ndarray:
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
    if method == "grabcut":
        obj = grabcut_object_mask(frames[0], cfg.object_box, _points(cfg.object_points),
                                  _points(cfg.object_negative_points))
        return masks_lib.check_first_mask(obj, size, "GrabCut object mask"), human
    if not cfg.object_points and cfg.object_box is None:
        raise ConfigError("preprocess.object_points / preprocess.object_box: SAM needs a prompt on frame 0 "
                          "(points on the object, in output pixels, or a box around it)")
    obj = sam.predict(frames[0], _points(cfg.object_points), _points(cfg.object_negative_points), cfg.object_box)
    obj = masks_lib.check_first_mask(obj, size, "SAM object mask")
    if human is None and (cfg.human_points or cfg.human_box is not None):
        human = sam.predict(frames[0], _points(cfg.human_points), _points(cfg.object_points), cfg.human_box)
    return obj, human


def carry_masks(frames, mask0, given: np.ndarray | None, sam, tracks, vis, inside) -> np.ndarray:
    """Masks of every frame: given per-frame masks, else SAM prompted by tracks, else DIS flow."""
    T = len(frames)
    if given is not None and len(given) >= T:
        return given[:T].astype(bool)
    if sam is not None:
        return masks_lib.masks_with_sam(frames, sam, mask0, tracks, vis, inside)
    return masks_lib.carry_mask_with_flow(frames, mask0)


@dataclasses.dataclass(frozen=True)
class HumanSteps:
    """The human and camera steps of preprocessing, as functions the pipeline builds from the config (each None:
    step skipped). See arthoi_jax/preprocess/adapters.py for the real ones."""

    perceive: Callable | None = None  # frames -> mediapipe_human.HumanPerception
    fit_body: Callable | None = None  # (landmarks, conf, K, (H, W)) -> fit2d.FitResult
    to_smplx: Callable | None = None  # (FitResult, T_cam_world | None) -> SmplxParams (world frame)
    # (frames, human_masks, object_masks, K, depth0) -> (CameraMotion, background tracks, visibility) or None
    camera_motion: Callable | None = None
    foot_contact_max_speed: float = 0.15
    foot_contact_min_conf: float = 0.5


def video_to_bundle(frames: np.ndarray, fps: float, source_hw: tuple[int, int], cfg: PreprocessConfig,
                    side: SideInputs = SideInputs(), *, methods: dict | None = None, sam=None,
                    tracker: Tracker | None = None, depth_model=None,
                    joints_fn: Callable[[SmplxParams], np.ndarray] | None = None,
                    human: HumanSteps = HumanSteps(), details: dict | None = None) -> SceneBundle:
    """Builds and validates the scene bundle of a video.

    Args:
      frames: [T, H, W, 3] uint8 RGB at the output size; fps: frames per second; source_hw: size before resizing.
      cfg: the `preprocess` config section; side: masks/depth/HMR read from disk.
      methods: `resolve(cfg, "video")` (computed when None).
      sam: a `SamAdapter` when masks come from SAM; tracker: `track_points`-like (default: the weight-free
      tracker `methods["tracker"]` with cfg's settings); depth_model: a `MonocularDepthAdapter` when depth
      comes from a model;
      joints_fn: SMPL-X params -> joints [T, J, 3] (smplx order), to project hand keypoints from the HMR result.
      human: perception, body fit, camera motion and foot-contact steps (`HumanSteps`).
      details: when given, filled with the measured numbers (frames with a body, reprojection error, camera
      motion, how the depth was made) for the preprocess summary.
    Raises:
      ConfigError / InputError naming what is missing or malformed; BundleError if the result is inconsistent.
    """
    methods = methods or resolve(cfg, "video")
    details = {} if details is None else details
    T, H, W, _ = frames.shape
    K = intrinsics(cfg, source_hw, (H, W), side.hmr_K)
    perception = human.perceive(frames) if human.perceive is not None else None
    if perception is not None and side.human_masks is None:
        side = dataclasses.replace(side, human_masks=perception.person_mask)
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

    fit = None
    if perception is not None:
        details["frames_with_body"] = int(perception.body_found.sum())
        if side.smplx_init is None and human.fit_body is not None and perception.body_found.any():
            fit = human.fit_body(perception.body_landmarks, perception.body_conf, K, (H, W))
            details["reprojection_error_px"] = {"mean": fit.mean_reprojection_px,
                                                "per_frame": [None if np.isnan(e) else float(e)
                                                              for e in fit.reprojection_px]}
            details["body_height_m"] = fit.height_m
            log.info("body fit: %d frames, mean reprojection error %.2f px", int(fit.body_found.sum()),
                     fit.mean_reprojection_px)

    depth = _depth(frames, cfg, side, methods["depth"], depth_model, obj0, object_masks, human_masks, K, fit,
                   details)

    T_cam_world = background = None
    if human.camera_motion is not None:
        estimated = human.camera_motion(frames, human_masks, object_masks, K, depth)
        if estimated is not None:
            motion, bg_tracks, bg_vis = estimated
            T_cam_world, background = motion.T_cam_world, (bg_tracks, bg_vis)
            details["camera_motion"] = {
                "max_rotation_deg": float(motion.rotation_deg.max()),
                "max_translation_m": float(motion.translation_m.max()),
                "rotation_deg": motion.rotation_deg.round(3).tolist(),
                "min_inliers": int(motion.num_inliers[1:].min()) if T > 1 else 0,
                "methods": sorted(set(motion.method[1:]))}
            log.info("camera motion: up to %.2f deg and %.3f m from frame 0 (%s)", motion.rotation_deg.max(),
                     motion.translation_m.max(), ", ".join(sorted(set(motion.method[1:]))) or "one frame")

    foot_contact = body_lm = body_conf = None
    if perception is not None:
        body_lm, body_conf = perception.body_landmarks.astype(np.float32), perception.body_conf.astype(np.float32)
        foot_contact = foot_contact_from_landmarks(
            body_lm, body_conf, perception.body_found, fps, max_speed=human.foot_contact_max_speed,
            min_conf=human.foot_contact_min_conf, background_tracks=None if background is None else background[0],
            background_visibility=None if background is None else background[1])

    smplx_init = side.smplx_init
    if smplx_init is not None and smplx_init.global_orient.shape[0] != T:
        raise InputError(f"preprocess.gvhmr_results: {smplx_init.global_orient.shape[0]} frames of HMR "
                         f"parameters for {T} video frames (check preprocess.frame_step / max_frames)")
    if smplx_init is None and fit is not None:
        smplx_init = human.to_smplx(fit, T_cam_world)
    hand_kp = hand_conf = None
    if side.hand_keypoints is not None:
        hand_kp, hand_conf = hands_lib.rescale_hand_keypoints(*side.hand_keypoints, source_hw, (H, W), T,
                                                              cfg.frame_step, what=str(cfg.hand_keypoints_path))
    elif perception is not None and perception.hand_found.any():
        hand_kp, hand_conf = perception.hand_keypoints.astype(np.float32), perception.hand_conf.astype(np.float32)
    elif side.smplx_init is not None and joints_fn is not None:
        hand_kp, hand_conf = hands_lib.project_hand_joints(joints_fn(side.smplx_init), K, (H, W))

    bundle = SceneBundle(
        frames=frames, fps=float(fps), K=K, object_masks=object_masks, human_masks=human_masks,
        tracks=tracks[:, :n].astype(np.float32), visibility=vis[:, :n].astype(bool), depth=depth,
        prompt=cfg.prompt, smplx_init=smplx_init, hand_keypoints=hand_kp, hand_keypoint_conf=hand_conf,
        foot_contact=foot_contact, T_cam_world=T_cam_world, body_landmarks=body_lm, body_landmark_conf=body_conf,
    )
    validate_bundle(bundle)
    log.info("preprocess: %d frames %dx%d at %.2f fps, %d object tracks (%.0f%% visible), masks %s, "
             "tracker %s, depth %s, human %s", T, W, H, fps, n, 100 * vis[:, :n].mean(), methods["masks"],
             methods["tracker"], methods["depth"], methods.get("human", "none"))
    return bundle


def _depth(frames, cfg, side, method, depth_model, obj0, object_masks, human_masks, K, fit, details):
    """[H, W] metric depth of frame 0 by `method` (see `PreprocessConfig.depth`); notes how in `details`."""
    H, W = frames.shape[1:3]
    if method == "file":
        return depth_lib.fit_depth(side.depth, (H, W), obj0, f"depth file {cfg.depth_path}")
    if method == "model":
        depth = depth_model.predict(frames[0], obj0, cfg.depth_median_m)
        if depth_model.metric:
            return depth
        depth, scale = scene_depth.align_to_body(depth, human_masks[0], fit)
        details["depth_placement"] = {"model_scaled_to": "body" if fit is not None and scale != 1.0 else "depth_median_m"}
        return depth
    if method == "geometry":
        if fit is not None and fit.body_found.any():
            depth, details["depth_placement"] = scene_depth.geometry_depth(fit, K, object_masks, human_masks[0])
            return depth
        log.warning("depth: 'geometry' needs a fitted body and none was found; using a constant depth")
    return depth_lib.constant_depth((H, W), cfg.depth_median_m)


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
                            fb_threshold_px=cfg.fb_threshold_px, max_patch_error=cfg.lk_max_error,
                            warp=cfg.lk_warp, fb_max_scale=cfg.fb_max_scale)
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
