"""Bad inputs to preprocessing, one case per test: each builds the input and asserts the exact behaviour."""

import logging

import cv2
import imageio.v3 as iio
import numpy as np
import pytest
import torch

from arthoi_jax.config import PreprocessConfig
from arthoi_jax.errors import InputError, ModelFileError
from arthoi_jax.io.preprocess_inputs import read_depth, read_hand_keypoints
from arthoi_jax.io.video import read_video
from arthoi_jax.preprocess.depth import fit_depth
from arthoi_jax.preprocess.hands import rescale_hand_keypoints
from arthoi_jax.preprocess.lk_tracker import grid_queries, track_points
from arthoi_jax.preprocess.masks import check_first_mask
from arthoi_jax.preprocess.sam import SamAdapter, tiny_sam
from arthoi_jax.preprocess.video_to_bundle import SideInputs, video_to_bundle


def frames(T=3, H=24, W=32):
    return np.random.default_rng(0).integers(0, 255, (T, H, W, 3), dtype=np.uint8)


def test_video_grey_frames_replicated_to_rgb_and_logged(tmp_path, caplog):
    for i in range(2):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.full((8, 10), 40 + i, np.uint8))
    with caplog.at_level(logging.INFO, logger="arthoi_jax"):
        v = read_video(tmp_path, fps=5.0)
    assert v.frames.shape == (2, 8, 10, 3) and np.all(v.frames[1] == 41)
    assert "grey frames replicated to RGB" in caplog.text


def test_video_rgba_frames_composited_over_black_and_logged(tmp_path, caplog):
    bgra = np.zeros((8, 10, 4), np.uint8)
    bgra[..., 2] = 200  # red in OpenCV's BGRA order
    bgra[..., 3] = 255
    bgra[:, 5:, 3] = 0  # right half transparent
    for i in range(2):
        cv2.imwrite(str(tmp_path / f"{i}.png"), bgra)
    with caplog.at_level(logging.INFO, logger="arthoi_jax"):
        v = read_video(tmp_path, fps=5.0)
    assert v.frames[0, 0, 0].tolist() == [200, 0, 0] and v.frames[0, 0, 9].tolist() == [0, 0, 0]
    assert "RGBA frames composited over black" in caplog.text


def test_video_bgr_png_read_as_rgb(tmp_path):
    bgr = np.zeros((8, 10, 3), np.uint8)
    bgr[..., 0] = 255  # blue, as OpenCV stores it
    for i in range(2):
        cv2.imwrite(str(tmp_path / f"{i}.png"), bgr)
    assert read_video(tmp_path, fps=5.0).frames[0, 0, 0].tolist() == [0, 0, 255]


def test_video_16bit_frames_scaled_to_8bit(tmp_path):
    for i in range(2):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.full((8, 10, 3), 65535, np.uint16))
    assert read_video(tmp_path, fps=5.0).frames.max() == 255


def test_video_shorter_than_two_frames_rejected(tmp_path):
    iio.imwrite(tmp_path / "one.mp4", frames(T=1), fps=10, codec="libx264", macro_block_size=1)
    with pytest.raises(InputError, match=r"one\.mp4: 1 frame\(s\) decoded; need at least 2 frames"):
        read_video(tmp_path / "one.mp4")


def test_video_unreadable_file_rejected(tmp_path):
    (tmp_path / "fake.mp4").write_text("not a video")
    with pytest.raises(InputError, match=r"fake\.mp4: cannot open as a video|fake\.mp4: no frame could be decoded"):
        read_video(tmp_path / "fake.mp4")


def test_video_missing_path_rejected(tmp_path):
    with pytest.raises(InputError, match=r"nothere\.mp4: video not found"):
        read_video(tmp_path / "nothere.mp4")


def test_frame_folder_without_fps_rejected(tmp_path):
    for i in range(2):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.zeros((8, 10, 3), np.uint8))
    with pytest.raises(InputError, match="has no frame rate; set preprocess.fps"):
        read_video(tmp_path)


def test_frame_folder_with_mixed_sizes_rejected(tmp_path):
    cv2.imwrite(str(tmp_path / "0.png"), np.zeros((8, 10, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "1.png"), np.zeros((9, 10, 3), np.uint8))
    with pytest.raises(InputError, match=r"1\.png: frame size 10x9 differs from the first frame's 10x8"):
        read_video(tmp_path, fps=5.0)


def test_track_query_outside_image_rejected():
    with pytest.raises(InputError, match=r"queries: point 1 at \(x, y\) = \[32\.5, 3\.0\] lies outside the 32x24"):
        track_points(frames(), np.array([[3.5, 3.5], [32.5, 3.0]]))


def test_track_nan_query_rejected():
    with pytest.raises(InputError, match="queries: point 0 at"):
        track_points(frames(), np.array([[np.nan, 3.5]]))


def test_track_single_frame_rejected():
    with pytest.raises(InputError, match="need at least 2 frames to track, got T=1"):
        track_points(frames(T=1), np.array([[3.5, 3.5]]))


def test_grid_queries_empty_mask_rejected():
    with pytest.raises(InputError, match=r"no grid point with step 6 px falls inside the mask \(0 pixels\)"):
        grid_queries(np.zeros((24, 32), bool), 6)


def test_empty_frame0_object_mask_rejected():
    with pytest.raises(InputError, match="object mask m.png: the frame-0 mask is empty"):
        check_first_mask(np.zeros((24, 32), bool), (24, 32), "object mask m.png")


def test_mask_of_wrong_size_rejected():
    with pytest.raises(InputError, match=r"mask of shape \[12, 16\] for frames of size \[24, 32\]"):
        check_first_mask(np.ones((12, 16), bool), (24, 32), "object mask")


def test_sam_empty_prompt_rejected():
    sam = SamAdapter(tiny_sam(), device="cpu")
    with pytest.raises(InputError, match="SAM prompt is empty: give at least one positive point or a box"):
        sam.predict(frames()[0], np.zeros((0, 2)), None, None)


def test_sam_prompt_outside_image_rejected():
    sam = SamAdapter(tiny_sam(), device="cpu")
    with pytest.raises(InputError, match=r"negative_xy: point 0 at \(x, y\) = \[-1\.0, 2\.0\]"):
        sam.predict(frames()[0], [[3.5, 3.5]], [[-1.0, 2.0]])


def test_sam_checkpoint_missing_rejected(tmp_path):
    with pytest.raises(ModelFileError, match=r"sam_vit_h\.pth: SAM checkpoint not found; see third_party/README\.md"):
        SamAdapter.from_checkpoint(tmp_path / "sam_vit_h.pth", "vit_h")


def test_sam_checkpoint_truncated_rejected(tmp_path):
    torch.save(tiny_sam().state_dict(), tmp_path / "full.pth")
    data = (tmp_path / "full.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match=r"cut\.pth: not a readable SAM checkpoint .* truncated"):
        SamAdapter.from_checkpoint(tmp_path / "cut.pth", "vit_b")


def test_sam_checkpoint_not_a_state_dict_rejected(tmp_path):
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(ModelFileError, match=r"list\.pth: expected a SAM state dict, got list"):
        SamAdapter.from_checkpoint(tmp_path / "list.pth", "vit_b")


def test_sam_prompts_missing_in_config_rejected():
    from arthoi_jax.errors import ConfigError

    cfg = PreprocessConfig(sam_checkpoint="x.pth")
    with pytest.raises(ConfigError, match="SAM needs a prompt on frame 0"):
        video_to_bundle(frames(), 10.0, (24, 32), cfg, sam=object())


def test_depth_unknown_on_object_rejected():
    mask = np.zeros((24, 32), bool)
    mask[5:10, 5:10] = True
    depth = np.ones((24, 32), np.float32)
    depth[6, 6] = 0
    with pytest.raises(InputError, match=r"depth is 0 \(unknown\) on 1 pixels of the frame-0 object mask"):
        fit_depth(depth, (24, 32), mask, "depth file d.npy")


def test_depth_nan_rejected():
    depth = np.ones((24, 32), np.float32)
    depth[0, 0] = np.nan
    with pytest.raises(InputError, match="depth must be finite and >= 0 .* 1 non-finite values"):
        fit_depth(depth, (24, 32), np.zeros((24, 32), bool), "depth")


def test_depth_png_8bit_rejected(tmp_path):
    cv2.imwrite(str(tmp_path / "d.png"), np.zeros((4, 4), np.uint8))
    with pytest.raises(InputError, match=r"d\.png: expected a single-channel 16-bit image in millimetres, got uint8"):
        read_depth(tmp_path / "d.png")


def test_hand_file_missing_key_rejected(tmp_path):
    np.savez(tmp_path / "h.npz", keypoints=np.zeros((2, 2, 21, 2)))
    with pytest.raises(InputError, match=r"h\.npz: missing confidence"):
        read_hand_keypoints(tmp_path / "h.npz")


def test_hand_file_wrong_shape_rejected():
    with pytest.raises(InputError, match=r"keypoints must be \[T, 2, 21, 2\] .* got \[3, 21, 2\]"):
        rescale_hand_keypoints(np.zeros((3, 21, 2)), np.zeros((3, 21)), (10, 10), (10, 10), 3)


def test_hand_file_too_few_frames_rejected():
    with pytest.raises(InputError, match=r"2 frames of keypoints \(after frame_step 1\) for 3 video frames"):
        rescale_hand_keypoints(np.zeros((2, 2, 21, 2)), np.zeros((2, 2, 21)), (10, 10), (10, 10), 3)


def test_object_leaving_view_gives_empty_masks_logged_not_filled(caplog):
    """The object slides out of the image: its later masks are empty (and logged), never guessed."""
    f = np.zeros((4, 24, 32, 3), np.uint8)
    tex = np.random.default_rng(1).integers(0, 255, (10, 10, 3), dtype=np.uint8)
    for t, x in enumerate((4, 12, 40, 40)):
        if x < 32:
            f[t, 7:17, x:x + 10] = tex
    mask0 = np.zeros((24, 32), bool)
    mask0[7:17, 4:14] = True
    given = np.stack([mask0, np.roll(mask0, 8, axis=1), np.zeros_like(mask0), np.zeros_like(mask0)])
    cfg = PreprocessConfig(object_mask_path="m", grid_step_px=2)
    with caplog.at_level(logging.WARNING, logger="arthoi_jax"):
        b = video_to_bundle(f, 10.0, (24, 32), cfg, SideInputs(object_masks=given))
    assert b.object_masks[0].any() and not b.object_masks[2:].any()
    assert "object: mask empty in 2 of 4 frames (2, 3); kept empty" in caplog.text


def test_depth_model_without_transformers_names_the_package(monkeypatch, tmp_path):
    import builtins

    from arthoi_jax.errors import MissingDependencyError
    from arthoi_jax.preprocess.depth import MonocularDepthAdapter

    real_import = builtins.__import__

    def no_transformers(name, *args, **kw):
        if name.startswith("transformers"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_transformers)
    with pytest.raises(MissingDependencyError, match=r"monocular depth needs the `transformers` package"):
        MonocularDepthAdapter.from_folder(tmp_path)
