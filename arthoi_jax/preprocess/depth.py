"""Depth of frame 0 (metres along the camera z axis), from a file, a monocular model, or a stated constant.

Scale assumption, stated once: monocular video fixes geometry only up to one global scale. A metric depth map
(ground truth, a user's file, a metric model) is used as it is. A relative model's output (inverse depth up to
scale, as MiDaS/Depth Anything give) is inverted and scaled so its median over the frame-0 object mask equals
`median_m`; the affine shift such models may carry is ignored. With no depth source at all, the scene is taken
as a fronto-parallel plane at `median_m` (flat, but every later stage runs; logged as such).
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from arthoi_jax.errors import InputError, MissingDependencyError, ModelFileError

log = logging.getLogger("arthoi_jax")


def fit_depth(depth: np.ndarray, size_hw: tuple[int, int], object_mask: np.ndarray, what: str) -> np.ndarray:
    """A metric depth map resized (nearest, so no depth is invented across edges) to `size_hw`, checked finite,
    non-negative and > 0 on the object mask. Returns [H, W] float32 metres."""
    depth = np.asarray(depth, dtype=np.float32)
    if depth.ndim != 2:
        raise InputError(f"{what}: expected an [H, W] depth map, got shape {list(depth.shape)}")
    if depth.shape != tuple(size_hw):
        depth = cv2.resize(depth, (size_hw[1], size_hw[0]), interpolation=cv2.INTER_NEAREST)
    if not np.isfinite(depth).all() or (depth < 0).any():
        raise InputError(f"{what}: depth must be finite and >= 0 (0 = unknown), got min {np.nanmin(depth)}, "
                         f"{int((~np.isfinite(depth)).sum())} non-finite values")
    holes = object_mask & (depth <= 0)
    if holes.any():
        raise InputError(f"{what}: depth is 0 (unknown) on {int(holes.sum())} pixels of the frame-0 object mask; "
                         f"the object needs depth everywhere")
    return depth


def scale_relative(inverse_depth: np.ndarray, object_mask: np.ndarray, median_m: float) -> np.ndarray:
    """Relative inverse depth [H, W] (larger = nearer) -> depth [H, W] float32 metres with median `median_m`
    on the object mask. Non-positive inverse depth (sky, invalid) becomes 0 = unknown."""
    inv = np.asarray(inverse_depth, dtype=np.float64)
    depth = np.where(inv > 0, 1.0 / np.where(inv > 0, inv, 1.0), 0.0)
    on = depth[object_mask & (depth > 0)]
    if on.size == 0:
        raise InputError("depth model: no positive inverse depth on the frame-0 object mask")
    return (depth * (median_m / np.median(on))).astype(np.float32)


def constant_depth(size_hw: tuple[int, int], median_m: float) -> np.ndarray:
    log.warning("depth: no depth source configured; using a fronto-parallel plane at %.2f m "
                "(set preprocess.depth_path or preprocess.depth_model for real geometry)", median_m)
    return np.full(size_hw, median_m, np.float32)


class MonocularDepthAdapter:
    """A `transformers` depth-estimation model (Depth Anything, DPT, ...) loaded from a local folder only."""

    def __init__(self, model, processor, metric: bool, device: str = "cpu"):
        self.model, self.processor, self.metric, self.device = model.to(device).eval(), processor, metric, device

    @classmethod
    def from_folder(cls, folder: str | Path, device: str = "auto") -> "MonocularDepthAdapter":
        """Raises MissingDependencyError without `transformers`, ModelFileError for a missing/invalid folder."""
        try:
            from transformers import AutoImageProcessor, AutoModelForDepthEstimation
        except ImportError:
            raise MissingDependencyError("monocular depth needs the `transformers` package (pip install "
                                         "transformers) and a model folder; see third_party/README.md") from None
        from arthoi_jax.preprocess.sam import pick_device

        folder = Path(folder)
        if not (folder / "config.json").is_file():
            raise ModelFileError(f"{folder}: not a transformers model folder (no config.json); "
                                 f"see third_party/README.md")
        try:
            processor = AutoImageProcessor.from_pretrained(folder, local_files_only=True)
            model = AutoModelForDepthEstimation.from_pretrained(folder, local_files_only=True)
        except (OSError, ValueError) as e:
            raise ModelFileError(f"{folder}: cannot load the depth model ({type(e).__name__}: {e})") from None
        metric = getattr(model.config, "depth_estimation_type", "relative") == "metric"
        return cls(model, processor, metric, str(pick_device(device)))

    def predict(self, image: np.ndarray, object_mask: np.ndarray, median_m: float) -> np.ndarray:
        """image [H, W, 3] uint8 RGB -> depth [H, W] float32 metres (scaled as the module docstring says)."""
        import torch

        inputs = self.processor(images=image, return_tensors="pt").to(self.device)
        with torch.no_grad():
            pred = self.model(**inputs).predicted_depth  # [1, h, w]
        pred = torch.nn.functional.interpolate(pred[:, None], size=image.shape[:2], mode="bilinear",
                                               align_corners=False)[0, 0].cpu().numpy()
        depth = pred if self.metric else scale_relative(pred, object_mask, median_m)
        return fit_depth(depth, image.shape[:2], object_mask, "depth model")
