"""Reading input videos, frame folders and per-frame mask images as RGB uint8 arrays.

Policy, applied the same way to every input:
  * Channel order: OpenCV decodes BGR; every array returned here is RGB.
  * Grey frames are replicated to three channels; RGBA frames are composited over black (alpha multiplies the
    colour) and the alpha dropped; 16-bit frames are scaled to 8 bits. Each conversion is logged once per input.
  * Frames are resized at decode time (INTER_AREA when shrinking, INTER_LINEAR when enlarging), so a long
    high-resolution video never sits in memory at its full size; the memory a request needs is checked first.
  * fps comes from the container; a folder of frames has none, so the caller must supply it.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from arthoi_jax.errors import InputError

log = logging.getLogger("arthoi_jax")

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
# Refuse requests whose decoded frames would exceed this many bytes (uint8 RGB at the output size).
MAX_DECODED_BYTES = 8 * 2**30


@dataclasses.dataclass(frozen=True)
class Video:
    frames: np.ndarray  # [T, H, W, 3] uint8 RGB at the output size
    fps: float  # frames per second after `frame_step`
    source_size: tuple[int, int]  # (height, width) of the source before resizing


def output_size(src_hw: tuple[int, int], width: Optional[int], height: Optional[int]) -> tuple[int, int]:
    """(height, width) after resizing: both given -> as given; one given -> aspect ratio kept; none -> source."""
    h, w = src_hw
    if width and height:
        return int(height), int(width)
    if width:
        return max(1, round(h * width / w)), int(width)
    if height:
        return int(height), max(1, round(w * height / h))
    return h, w


def read_video(path: str | Path, *, width: Optional[int] = None, height: Optional[int] = None,
               max_frames: int = 0, frame_step: int = 1, fps: Optional[float] = None) -> Video:
    """Reads an mp4 (or any container OpenCV's FFmpeg backend decodes) or a folder of image frames.

    Args:
      path: a video file, or a folder whose images sort (naturally: 2 before 10) into frame order.
      width, height: output size (see `output_size`).
      max_frames: keep at most this many frames after subsampling (0: all).
      frame_step: keep every k-th frame; the returned fps is divided by k.
      fps: frame rate of a folder of frames (required there); for a video file it overrides the container's.
    Raises:
      InputError: the path is missing or undecodable, it yields fewer than 2 frames, the frame sizes differ,
        a folder has no fps, or the decoded frames would not fit in memory.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: video not found (expected an mp4 file or a folder of image frames)")
    if path.is_dir():
        files = sorted((p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=_natural_key)
        if not files:
            raise InputError(f"{path}: folder holds no image frames (looked for {', '.join(IMAGE_SUFFIXES)})")
        if fps is None:
            raise InputError(f"{path}: a folder of frames has no frame rate; set preprocess.fps")
        files = files[::frame_step][: max_frames or None]
        first = read_image(files[0])
        dst = output_size(first.shape[:2], width, height)
        _check_memory(path, len(files), dst)
        frames, notes = [], set()
        for f in files:
            img = read_image(f, notes=notes)
            if img.shape[:2] != first.shape[:2]:
                raise InputError(f"{f}: frame size {img.shape[1]}x{img.shape[0]} differs from the first frame's "
                                 f"{first.shape[1]}x{first.shape[0]}")
            frames.append(_resize(img, dst))
        src_hw, out_fps = first.shape[:2], float(fps)
    else:
        frames, src_hw, out_fps = _decode(path, width, height, max_frames, frame_step, fps)
    if len(frames) < 2:
        raise InputError(f"{path}: {len(frames)} frame(s) decoded; need at least 2 frames")
    return Video(np.stack(frames), out_fps, tuple(int(s) for s in src_hw))


def _decode(path: Path, width, height, max_frames: int, frame_step: int, fps: Optional[float]):
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise InputError(f"{path}: cannot open as a video (not a video file, or a codec OpenCV lacks)")
        container_fps = cap.get(cv2.CAP_PROP_FPS)
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        src_hw = (int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)))
        if fps is None:
            if not (container_fps and np.isfinite(container_fps) and container_fps > 0):
                raise InputError(f"{path}: the container states no frame rate; set preprocess.fps")
            fps = container_fps
        dst = output_size(src_hw, width, height) if min(src_hw) > 0 else None
        if dst is not None and count > 0:
            kept = -(-count // frame_step)
            _check_memory(path, min(kept, max_frames) if max_frames else kept, dst)
        frames, notes, index = [], set(), 0
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            if index % frame_step == 0:
                rgb = _to_rgb(bgr, notes, path, channels_are_bgr=True)
                if dst is None:
                    src_hw = rgb.shape[:2]
                    dst = output_size(src_hw, width, height)
                frames.append(_resize(rgb, dst))
                if max_frames and len(frames) >= max_frames:
                    break
            index += 1
    finally:
        cap.release()
    if index == 0 and not frames:
        raise InputError(f"{path}: no frame could be decoded (corrupt or empty video)")
    return frames, src_hw, float(fps) / frame_step


def read_image(path: str | Path, notes: Optional[set] = None) -> np.ndarray:
    """One image file -> [H, W, 3] uint8 RGB (grey, RGBA and 16-bit handled as the module docstring says)."""
    path = Path(path)
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise InputError(f"{path}: cannot read as an image (missing, or not {', '.join(IMAGE_SUFFIXES)})")
    return _to_rgb(raw, notes if notes is not None else set(), path, channels_are_bgr=True)


def read_mask(path: str | Path, size_hw: tuple[int, int]) -> np.ndarray:
    """A mask image -> [H, W] bool at `size_hw` (nearest-neighbour resize). Non-zero pixels are inside;
    for an RGBA image the alpha channel is the mask."""
    path = Path(path)
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise InputError(f"{path}: cannot read as a mask image")
    if raw.ndim == 3:
        raw = raw[..., 3] if raw.shape[2] == 4 else raw.max(axis=2)
    mask = (raw > 0).astype(np.uint8)
    if mask.shape != tuple(size_hw):
        mask = cv2.resize(mask, (size_hw[1], size_hw[0]), interpolation=cv2.INTER_NEAREST)
    return mask.astype(bool)


def read_masks(path: str | Path, size_hw: tuple[int, int], num_frames: int, frame_step: int = 1) -> np.ndarray:
    """One mask image (frame 0 only) -> [1, H, W]; a folder of per-frame mask images -> [T, H, W] bool.

    The folder is subsampled with `frame_step` like the video, and must then hold at least `num_frames` images.
    """
    path = Path(path)
    if not path.is_dir():
        return read_mask(path, size_hw)[None]
    files = sorted((p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=_natural_key)
    files = files[::frame_step]
    if len(files) < num_frames:
        raise InputError(f"{path}: {len(files)} mask images (after frame_step {frame_step}) for {num_frames} frames")
    return np.stack([read_mask(f, size_hw) for f in files[:num_frames]])


def _to_rgb(img: np.ndarray, notes: set, path: Path, *, channels_are_bgr: bool) -> np.ndarray:
    if img.dtype == np.uint16:
        _note(notes, "16bit", f"{path}: 16-bit frames scaled to 8 bits")
        img = (img.astype(np.float32) / 257.0).round().astype(np.uint8)
    elif img.dtype != np.uint8:
        raise InputError(f"{path}: unsupported pixel type {img.dtype}; expected 8- or 16-bit images")
    if img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 1):
        _note(notes, "grey", f"{path}: grey frames replicated to RGB")
        return np.repeat(img.reshape(img.shape[0], img.shape[1], 1), 3, axis=2)
    if img.ndim != 3 or img.shape[2] not in (3, 4):
        raise InputError(f"{path}: expected grey, RGB or RGBA pixels, got an array of shape {list(img.shape)}")
    if img.shape[2] == 4:
        _note(notes, "rgba", f"{path}: RGBA frames composited over black, alpha dropped")
        alpha = img[..., 3:4].astype(np.float32) / 255.0
        img = (img[..., :3].astype(np.float32) * alpha).round().astype(np.uint8)
    return np.ascontiguousarray(img[..., ::-1] if channels_are_bgr else img)


def _note(notes: set, key: str, message: str) -> None:
    if key not in notes:
        notes.add(key)
        log.info(message)


def _resize(img: np.ndarray, dst_hw: tuple[int, int]) -> np.ndarray:
    if img.shape[:2] == tuple(dst_hw):
        return img
    shrink = dst_hw[0] * dst_hw[1] < img.shape[0] * img.shape[1]
    return cv2.resize(img, (dst_hw[1], dst_hw[0]), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def _check_memory(path: Path, num_frames: int, dst_hw: tuple[int, int]) -> None:
    need = num_frames * dst_hw[0] * dst_hw[1] * 3
    if need > MAX_DECODED_BYTES:
        raise InputError(f"{path}: {num_frames} frames at {dst_hw[1]}x{dst_hw[0]} need {need / 2**30:.1f} GiB "
                         f"(limit {MAX_DECODED_BYTES / 2**30:.0f} GiB); lower preprocess.width/height or max_frames, "
                         f"or raise frame_step")


def _natural_key(p: Path):
    return [int(s) if s.isdigit() else s.lower() for s in re.split(r"(\d+)", p.name)]
