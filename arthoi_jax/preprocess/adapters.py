"""Builds the model adapters the config asks for; each fails early with a clear error when its package or
checkpoint is missing (before any frame is processed)."""

from __future__ import annotations

from typing import Optional

from arthoi_jax.config import PreprocessConfig
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


def make_depth_model(cfg: PreprocessConfig, methods: dict) -> Optional[object]:
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
