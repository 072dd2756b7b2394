"""Builds the model adapters the config asks for; each fails early with a clear error when its package or
checkpoint is missing (before any frame is processed)."""

from __future__ import annotations

from arthoi_jax.config import PreprocessConfig
from arthoi_jax.errors import ConfigError
from arthoi_jax.preprocess.video_to_bundle import Tracker, flow_tracker


def make_sam(cfg: PreprocessConfig, methods: dict):
    """A SamAdapter when masks come from SAM, else None."""
    if methods["masks"] != "sam":
        return None
    from arthoi_jax.preprocess.sam import SamAdapter

    return SamAdapter.from_checkpoint(cfg.sam_checkpoint, cfg.sam_model_type, cfg.device)


def make_tracker(cfg: PreprocessConfig, methods: dict) -> Tracker:
    """The configured tracker as a `(frames, queries) -> (tracks, visibility)` function."""
    if methods["tracker"] == "cotracker":
        from arthoi_jax.preprocess.cotracker import CoTrackerAdapter

        return CoTrackerAdapter.from_checkpoint(cfg.cotracker_checkpoint, device=cfg.device).track
    return flow_tracker(cfg, methods["tracker"])


def make_depth_model(cfg: PreprocessConfig, methods: dict) -> object | None:
    """A MonocularDepthAdapter when depth comes from a model, else None."""
    if methods["depth"] != "model":
        return None
    from arthoi_jax.preprocess.depth import MonocularDepthAdapter

    return MonocularDepthAdapter.from_folder(cfg.depth_model, cfg.device)


def make_joints_fn(body_cfg):
    """SMPL-X params -> joints [T, J, 3] with the `smplx` package, from `body.model_path` or, when that is
    unset, the license-free SMPL-X-format body (generated on first use)."""
    from arthoi_jax.io.body_model_file import license_free_model_file
    from arthoi_jax.preprocess.hands import smplx_joints

    path = body_cfg.model_path or license_free_model_file()
    return lambda params: smplx_joints(params, path)


def make_human_steps(config, methods: dict):
    """`HumanSteps` from the full config: MediaPipe perception (when `methods["human"]` is mediapipe), the body
    fit (human.init), camera motion (camera_motion section) and the foot-contact thresholds."""
    from arthoi_jax.preprocess.video_to_bundle import HumanSteps

    h, pre = config.human, config.preprocess
    perceive = fit_body = to_smplx = None
    if methods["human"] == "mediapipe":
        from arthoi_jax.errors import MissingDependencyError
        from arthoi_jax.preprocess.mediapipe_human import (
            import_mediapipe,
            perceive_human,
        )

        try:
            import_mediapipe()  # fail before any frame is processed
        except MissingDependencyError as e:
            raise MissingDependencyError(f"{e}; or set preprocess.human: none (no person masks, body or "
                                         f"hands) or give preprocess.human_mask_path") from None

        def perceive(frames):
            return perceive_human(frames, mask_source=h.mask_source, model_complexity=h.model_complexity,
                                  min_detection_confidence=h.min_detection_confidence,
                                  mask_threshold=h.mask_threshold, detect_hands=h.detect_hands)
    init = h.init
    if init == "auto":
        init = "gvhmr" if pre.gvhmr_results else "fit2d" if perceive is not None else "none"
    if init == "gvhmr" and not pre.gvhmr_results:
        raise ConfigError("human.init: 'gvhmr' needs preprocess.gvhmr_results")
    if init == "fit2d":
        if perceive is None:
            raise ConfigError("human.init: 'fit2d' fits the body to MediaPipe's landmarks; it needs "
                              "preprocess.human 'mediapipe' (or 'auto' without human_mask_path)")
        from arthoi_jax.body import fit2d
        from arthoi_jax.io.body_model_file import load_body_model

        model = load_body_model(config.body)
        settings = fit2d.settings_from_config(h)

        def fit_body(landmarks, conf, K, hw):
            return fit2d.fit_body_to_landmarks(model, landmarks, conf, K, hw, settings)

        def to_smplx(fit, T_cam_world):
            return fit2d.to_smplx_params(fit, T_cam_world, num_expression=model.num_expression,
                                         flat_hand_mean=model.flat_hand_mean, gender=model.gender)
    return HumanSteps(perceive=perceive, fit_body=fit_body, to_smplx=to_smplx,
                      camera_motion=make_camera_motion(config.camera_motion, methods),
                      foot_contact_max_speed=h.foot_contact_max_speed, foot_contact_min_conf=h.foot_contact_min_conf)


def make_camera_motion(cm, methods: dict):
    """The camera-motion step, or None when the `camera_motion` section turns it off. With enabled 'auto', a
    clip whose background cannot be tracked is logged and left with a static camera; with 'on' that is an error."""
    if cm.enabled == "off":
        return None
    import logging

    from arthoi_jax.errors import InputError
    from arthoi_jax.preprocess.camera_motion import camera_motion_from_video

    model = cm.model
    if model == "auto":
        model = "full" if methods["depth"] in ("file", "model") else "rotation"

    def estimate(frames, human_masks, object_masks, K, depth0):
        try:
            return camera_motion_from_video(frames, human_masks, object_masks, K, depth0, step_px=cm.step_px,
                                            margin_px=cm.margin_px, model="auto" if model == "full" else model,
                                            ransac_px=cm.ransac_px, min_points=cm.min_points)
        except InputError as e:
            if cm.enabled == "on":
                raise
            logging.getLogger("arthoi_jax").warning("camera motion: not estimated (%s); static camera assumed", e)
            return None
    return estimate
