"""Reading the optional side inputs of preprocessing: a frame-0 depth map and a hand-keypoint file."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from arthoi_jax.errors import InputError


def read_depth(path: str | Path) -> np.ndarray:
    """Depth map -> [H, W] float32 metres (0 = unknown).

    .npy: metres; .npz: key `depth`, metres; .png/.tif 16-bit: millimetres (the common depth-camera format).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: depth file not found")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            depth = np.load(path, allow_pickle=False)
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                if "depth" not in z.files:
                    raise InputError(f"{path}: no array named 'depth' (found {', '.join(z.files)})")
                depth = z["depth"]
        elif suffix in (".png", ".tif", ".tiff"):
            raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if raw is None or raw.dtype != np.uint16 or raw.ndim != 2:
                got = "unreadable" if raw is None else f"{raw.dtype} {list(raw.shape)}"
                raise InputError(f"{path}: expected a single-channel 16-bit image in millimetres, got {got}")
            depth = raw.astype(np.float32) / 1000.0
        else:
            raise InputError(f"{path}: unknown depth format {suffix!r}; use .npy/.npz (metres) or 16-bit .png (mm)")
    except (ValueError, OSError) as e:
        raise InputError(f"{path}: unreadable depth file ({e})") from None
    if depth.ndim != 2 or not np.issubdtype(depth.dtype, np.number):
        raise InputError(f"{path}: expected an [H, W] numeric depth map, got {depth.dtype} {list(depth.shape)}")
    return depth.astype(np.float32)


def read_hand_keypoints(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Hand keypoints file -> (keypoints [T, 2, 21, 2], confidence [T, 2, 21]) in source-video pixels.

    .npz with arrays `keypoints` and `confidence`, or .json {"keypoints": [...], "confidence": [...]}.
    Shapes are checked by `arthoi_jax.preprocess.hands.rescale_hand_keypoints`.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: hand keypoint file not found")
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(path.read_text())
            if not isinstance(data, dict):
                raise InputError(f"{path}: expected a JSON object with 'keypoints' and 'confidence'")
        else:
            with np.load(path, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
    except (ValueError, OSError) as e:
        raise InputError(f"{path}: unreadable hand keypoint file ({e})") from None
    missing = [k for k in ("keypoints", "confidence") if k not in data]
    if missing:
        raise InputError(f"{path}: missing {', '.join(missing)} (expected keypoints [T, 2, 21, 2] and "
                         f"confidence [T, 2, 21])")
    return np.asarray(data["keypoints"], np.float64), np.asarray(data["confidence"], np.float64)


def read_side_inputs(cfg, methods: dict, num_frames: int, size_hw: tuple[int, int], num_expression: int = 10):
    """Everything `video_to_bundle` needs from disk besides the frames, per the `preprocess` config section
    `cfg` and the resolved `methods` (see `arthoi_jax.preprocess.video_to_bundle.resolve`); GVHMR's in-camera
    parameters become `smplx_init` (with `num_expression` zero expression coefficients) and its K `hmr_K`."""
    from arthoi_jax.io.gvhmr import read_gvhmr
    from arthoi_jax.io.video import read_masks
    from arthoi_jax.preprocess.video_to_bundle import SideInputs, subsample_smplx

    def masks(path):
        return None if path is None else read_masks(path, size_hw, num_frames, cfg.frame_step)

    files = methods["masks"] == "files"
    smplx_init = hmr_K = None
    if cfg.gvhmr_results:
        hmr = read_gvhmr(cfg.gvhmr_results, num_expression=num_expression)
        smplx_init = subsample_smplx(hmr.incam, cfg.frame_step, num_frames, cfg.gvhmr_results)
        hmr_K = hmr.K[0]
    return SideInputs(
        object_masks=masks(cfg.object_mask_path) if files else None,
        human_masks=masks(cfg.human_mask_path),
        depth=read_depth(cfg.depth_path) if methods["depth"] == "file" else None,
        hand_keypoints=read_hand_keypoints(cfg.hand_keypoints_path) if cfg.hand_keypoints_path else None,
        smplx_init=smplx_init,
        hmr_K=hmr_K,
    )
