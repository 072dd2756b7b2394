"""Pictures a person looks at: mp4 videos and PNG contact sheets."""

from __future__ import annotations

import io
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from arthoi_jax.io.outputs import write_atomic


def write_video(path: Path, frames: np.ndarray, fps: float) -> None:
    """frames: [T, H, W, 3] uint8 -> H.264 mp4 (sizes padded to even numbers, as the codec needs)."""
    frames = np.asarray(frames)
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
    if pad_h or pad_w:
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    data = iio.imwrite("<bytes>", frames, extension=".mp4", fps=float(fps), codec="libx264",
                       macro_block_size=1, ffmpeg_log_level="error")
    write_atomic(Path(path), data)


def write_png(path: Path, image: np.ndarray) -> None:
    """image: [H, W, 3] or [H, W] uint8 -> PNG."""
    write_atomic(Path(path), iio.imwrite("<bytes>", np.asarray(image), extension=".png"))


def contact_sheet(frames: np.ndarray, columns: int = 6, max_frames: int = 24) -> np.ndarray:
    """[T, H, W, 3] uint8 -> one image of up to `max_frames` evenly spaced frames in a grid."""
    T, H, W, _ = frames.shape
    idx = np.linspace(0, T - 1, min(T, max_frames)).round().astype(int)
    rows = -(-len(idx) // columns)
    sheet = np.full((rows * H, min(columns, len(idx)) * W, 3), 255, np.uint8)
    for k, t in enumerate(idx):
        r, c = divmod(k, columns)
        sheet[r * H:(r + 1) * H, c * W:(c + 1) * W] = frames[t]
    return sheet


def write_figure(path: Path, fig) -> None:
    """Saves a matplotlib figure as PNG (atomically) and closes it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    write_atomic(Path(path), buf.getvalue())
