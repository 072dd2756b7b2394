"""Video and image reading: RGB order, resize at decode time, fps from the container, frame folders."""

import cv2
import imageio.v3 as iio
import numpy as np
import pytest

from arthoi_jax.errors import InputError
from arthoi_jax.io.video import output_size, read_masks, read_video


def write_mp4(path, frames, fps):
    iio.imwrite(path, frames, fps=fps, codec="libx264", macro_block_size=1, ffmpeg_log_level="error")


def colour_frames(T=4, H=32, W=48):
    """Left half pure red, right half pure blue (RGB), so a BGR mix-up swaps them."""
    f = np.zeros((T, H, W, 3), np.uint8)
    f[:, :, : W // 2, 0] = 255
    f[:, :, W // 2:, 2] = 255
    return f


def test_mp4_is_rgb_with_container_fps(tmp_path):
    write_mp4(tmp_path / "v.mp4", colour_frames(), fps=12.5)
    v = read_video(tmp_path / "v.mp4")
    assert v.frames.shape == (4, 32, 48, 3) and v.frames.dtype == np.uint8
    assert v.fps == pytest.approx(12.5, rel=1e-3)
    left, right = v.frames[:, 8:24, 4:20].mean(axis=(0, 1, 2)), v.frames[:, 8:24, 28:44].mean(axis=(0, 1, 2))
    assert left[0] > 200 and left[2] < 50, left  # red stays in channel 0
    assert right[2] > 200 and right[0] < 50, right


def test_resize_at_decode_keeps_aspect_and_subsamples(tmp_path):
    frames = colour_frames(T=7, H=40, W=80)
    write_mp4(tmp_path / "v.mp4", frames, fps=30)
    v = read_video(tmp_path / "v.mp4", width=40, frame_step=2, max_frames=3)
    assert v.frames.shape == (3, 20, 40, 3)
    assert v.fps == pytest.approx(15.0, rel=1e-3)
    assert v.source_size == (40, 80)
    assert output_size((40, 80), None, 10) == (10, 20)
    assert output_size((40, 80), 30, 12) == (12, 30)


def test_frame_folder_natural_order_and_fps(tmp_path):
    for i in (0, 2, 10):  # natural sort puts 10 last, lexicographic would not
        img = np.full((16, 24, 3), i * 20, np.uint8)
        cv2.imwrite(str(tmp_path / f"f{i}.png"), img)
    v = read_video(tmp_path, fps=24.0)
    assert v.frames[:, 0, 0, 0].tolist() == [0, 40, 200]
    assert v.fps == 24.0


def test_masks_folder_and_single_image(tmp_path):
    m = np.zeros((20, 30), np.uint8)
    m[5:10, 5:15] = 255
    cv2.imwrite(str(tmp_path / "m.png"), m)
    one = read_masks(tmp_path / "m.png", (10, 15), num_frames=5)
    assert one.shape == (1, 10, 15) and one.dtype == bool
    assert one[0].sum() == 2 * 5  # nearest neighbour samples even source rows 6, 8 and columns 6..14
    (tmp_path / "seq").mkdir()
    for i in range(3):
        cv2.imwrite(str(tmp_path / "seq" / f"{i}.png"), m)
    assert read_masks(tmp_path / "seq", (20, 30), num_frames=3).shape == (3, 20, 30)
    with pytest.raises(InputError, match="2 mask images .* for 3 frames"):
        read_masks(tmp_path / "seq", (20, 30), num_frames=3, frame_step=2)
