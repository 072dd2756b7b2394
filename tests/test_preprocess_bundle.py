"""Video -> scene bundle: the pure assembly, masks carried through the video, depth and hands, and the
`preprocess` stage of run.py on a small generated video."""

import json

import cv2
import imageio.v3 as iio
import numpy as np
import pytest

from arthoi_jax import pipeline
from arthoi_jax.config import PreprocessConfig
from arthoi_jax.errors import ConfigError
from arthoi_jax.io.bundle import load_bundle
from arthoi_jax.preprocess.depth import scale_relative
from arthoi_jax.preprocess.hands import HAND_JOINT_INDEX, project_hand_joints, rescale_hand_keypoints
from arthoi_jax.preprocess.masks import carry_mask_with_flow, fill_small_holes, masks_with_sam
from arthoi_jax.preprocess.sam import SamAdapter, tiny_sam
from arthoi_jax.preprocess.video_to_bundle import SideInputs, intrinsics, resolve, video_to_bundle


def moving_square(T=6, H=48, W=64, step=2):
    """A textured square sliding right by `step` px per frame over a textured background; its true masks."""
    rng = np.random.default_rng(0)
    bg = cv2.GaussianBlur(rng.integers(0, 255, (H, W, 3), dtype=np.uint8), (0, 0), 1.0)
    tex = cv2.GaussianBlur(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8), (0, 0), 1.0)
    frames, masks = np.repeat(bg[None], T, 0), np.zeros((T, H, W), bool)
    for t in range(T):
        frames[t, 14:34, 10 + step * t:30 + step * t] = tex
        masks[t, 14:34, 10 + step * t:30 + step * t] = True
    return frames, masks


def iou(a, b):
    return (a & b).sum() / (a | b).sum()


def test_flow_carries_mask_with_the_object():
    frames, masks = moving_square()
    carried = carry_mask_with_flow(frames, masks[0])
    assert carried.shape == masks.shape and carried.dtype == bool
    # The leading edge follows the object exactly; behind it, the uncovered background inherits the object's
    # smooth flow, so the mask lags there (measured IoU 0.94 after one frame, 0.67 after five).
    assert [np.nonzero(m)[1].max() for m in carried] == [29 + 2 * t for t in range(6)]
    assert iou(carried[1], masks[1]) > 0.9 and min(iou(carried[t], masks[t]) for t in range(6)) > 0.6


def test_small_holes_filled_large_ones_and_border_gaps_kept():
    mask = np.ones((40, 40), bool)
    mask[5:7, 5:7] = False  # 4 px hole: flow failure, filled
    mask[15:30, 15:30] = False  # 225 px hole (19% of the mask): a real opening, kept
    mask[0:3, 30:40] = False  # touches the border: background, kept
    out = fill_small_holes(mask, max_fraction=0.05)
    assert out[5:7, 5:7].all() and not out[15:30, 15:30].any() and not out[0:3, 30:40].any()


def test_sam_carry_prompts_with_tracked_points(monkeypatch):
    """Positive prompts are tracks that started inside the frame-0 mask, negatives the others."""
    frames, masks = moving_square(T=3)
    sam = SamAdapter(tiny_sam(), device="cpu")
    prompts = []
    monkeypatch.setattr(sam, "predict", lambda img, pos, neg, box: prompts.append((pos, neg)) or masks[1])
    tracks = np.array([[[15.5, 20.5], [50.5, 40.5]], [[17.5, 20.5], [50.5, 40.5]], [[19.5, 20.5], [50.5, 40.5]]])
    vis = np.array([[True, True], [True, True], [False, True]])
    out = masks_with_sam(frames, sam, masks[0], tracks, vis, np.array([True, False]))
    assert len(prompts) == 1  # frame 2 has no visible positive track: left empty, not guessed
    np.testing.assert_array_equal(prompts[0][0], [[17.5, 20.5]])
    np.testing.assert_array_equal(prompts[0][1], [[50.5, 40.5]])
    assert out[1].sum() == masks[1].sum() and not out[2].any()


def test_video_to_bundle_from_mask_file_and_depth():
    frames, masks = moving_square()
    cfg = PreprocessConfig(object_mask_path="m.png", depth_path="d.npy", grid_step_px=4, prompt="a box slides")
    depth = np.full((24, 32), 1.5, np.float32)  # half resolution: resized to the frames
    b = video_to_bundle(frames, 12.0, (96, 128), cfg, SideInputs(object_masks=masks[:1], depth=depth),
                        methods=resolve(cfg, "video"))
    assert b.tracks.shape[:2] == (6, 16)  # grid rows and columns 18, 22, 26, 30 inside the eroded square
    assert b.visibility[-1].mean() > 0.9
    t = np.arange(6)[:, None]
    # Dense flow lags ~0.05 px per frame on this 20 px square (its boundary is smoothed into the background).
    np.testing.assert_allclose(np.median(b.tracks[:, :, 0] - b.tracks[0, :, 0], axis=1), 2.0 * t[:, 0], atol=0.35)
    assert min(iou(b.object_masks[i], masks[i]) for i in range(6)) > 0.6
    assert b.depth.shape == (48, 64) and np.all(b.depth == 1.5)
    assert b.fps == 12.0 and b.prompt == "a box slides" and not b.human_masks.any()


def test_intrinsics_rescaled_from_source_pixels():
    cfg = PreprocessConfig(intrinsics=(800.0, 820.0, 512.0, 300.0))
    K = intrinsics(cfg, (600, 1024), (300, 256))
    np.testing.assert_allclose(K, [[200.0, 0, 128.0], [0, 410.0, 150.0], [0, 0, 1]])
    K = intrinsics(PreprocessConfig(fov_deg=90.0), (10, 10), (48, 64))
    np.testing.assert_allclose(K, [[32.0, 0, 32.0], [0, 32.0, 24.0], [0, 0, 1]])


def test_resolve_auto_choices_and_missing_keys():
    assert resolve(PreprocessConfig(), "synthetic") == {"masks": "gt", "tracker": "gt", "depth": "gt", "human": "none"}
    assert resolve(PreprocessConfig(object_mask_path="m", depth_path="d"), "video") == {
        "masks": "files", "tracker": "dense", "depth": "file", "human": "mediapipe"}
    assert resolve(PreprocessConfig(object_box=(0, 0, 9, 9)), "video") == {
        "masks": "grabcut", "tracker": "dense", "depth": "geometry", "human": "mediapipe"}
    assert resolve(PreprocessConfig(object_box=(0, 0, 9, 9), sam_checkpoint="s", human="none"), "video") == {
        "masks": "sam", "tracker": "dense", "depth": "constant", "human": "none"}
    assert resolve(PreprocessConfig(object_mask_path="m", cotracker_checkpoint="c"), "video")["tracker"] == "cotracker"
    with pytest.raises(ConfigError, match="preprocess.sam_checkpoint: required"):
        resolve(PreprocessConfig(masks="sam", object_box=(0, 0, 9, 9)), "video")
    with pytest.raises(ConfigError, match="a video needs the object marked on frame 0"):
        resolve(PreprocessConfig(), "video")
    with pytest.raises(ConfigError, match="preprocess.tracker: 'gt' needs a synthetic scene"):
        resolve(PreprocessConfig(object_mask_path="m", tracker="gt"), "video")


def test_relative_depth_scaled_to_median():
    inv = np.array([[1.0, 2.0], [4.0, 0.0]])
    d = scale_relative(inv, np.array([[True, True], [False, False]]), median_m=3.0)
    np.testing.assert_allclose(d, [[4.0, 2.0], [1.0, 0.0]])  # depth 1, 0.5, 0.25 scaled by 3 / 0.75


def test_hand_keypoints_projected_and_rescaled():
    K = np.array([[100.0, 0, 32], [0, 100.0, 24], [0, 0, 1]])
    joints = np.zeros((2, 127, 3))
    joints[..., 2] = 2.0
    joints[0, HAND_JOINT_INDEX[0, 0]] = [0.2, -0.1, 2.0]  # left wrist of frame 0
    joints[1, HAND_JOINT_INDEX[1, 4]] = [0.0, 0.0, -1.0]  # right thumb tip behind the camera
    kp, conf = project_hand_joints(joints, K, (48, 64))
    assert kp.shape == (2, 2, 21, 2) and conf.shape == (2, 2, 21)
    np.testing.assert_allclose(kp[0, 0, 0], [42.0, 19.0])
    assert conf[1, 1, 4] == 0 and conf[0, 0, 0] == 1
    src = np.tile(np.array([100.0, 50.0]), (4, 2, 21, 1))
    out, c = rescale_hand_keypoints(src, np.ones((4, 2, 21)), (200, 400), (48, 64), num_frames=2, frame_step=2)
    assert out.shape == (2, 2, 21, 2)
    np.testing.assert_allclose(out[0, 0, 0], [16.0, 12.0])


@pytest.fixture()
def example_video(tmp_path):
    frames, masks = moving_square(T=5)
    iio.imwrite(tmp_path / "v.mp4", frames, fps=10, codec="libx264", macro_block_size=1, ffmpeg_log_level="error")
    cv2.imwrite(str(tmp_path / "mask0.png"), masks[0].astype(np.uint8) * 255)
    np.save(tmp_path / "depth0.npy", np.full((48, 64), 2.0, np.float32))
    return tmp_path


def test_run_preprocess_stage_writes_valid_bundle(example_video):
    d = example_video
    (d / "cfg.yaml").write_text(
        f"scene: {{name: t, source: video, video: {d / 'v.mp4'}}}\n"
        f"preprocess: {{object_mask_path: {d / 'mask0.png'}, depth_path: {d / 'depth0.npy'}, grid_step_px: 4}}\n")
    run_dir = pipeline.run(d / "cfg.yaml", stage="preprocess", out=d / "out")
    b = load_bundle(run_dir / "preprocess" / "bundle")
    assert b.frames.shape == (5, 48, 64, 3) and b.fps == pytest.approx(10.0)
    assert b.tracks.shape[1] > 0 and b.visibility[-1].mean() > 0.8
    assert (run_dir / "preprocess" / "preview.png").is_file() and (run_dir / "preprocess" / "preview.mp4").is_file()
    summary = json.loads((run_dir / "preprocess" / "summary.json").read_text())
    assert summary["masks"] == "files" and summary["tracker"] == "dense" and summary["depth"] == "file"
    assert summary["tracks"] == b.tracks.shape[1] and summary["empty_object_mask_frames"] == []


def test_gvhmr_import_sets_smplx_init_intrinsics_and_hands(tmp_path):
    """GVHMR's in-camera parameters (subsampled with frame_step) initialise the human; its K (source pixels)
    becomes the bundle's K; hand keypoints are projected from the SMPL-X joints of the license-free body."""
    import torch

    from arthoi_jax.config import BodyConfig
    from arthoi_jax.io.body_model_file import license_free_model_file
    from arthoi_jax.io.preprocess_inputs import read_side_inputs
    from arthoi_jax.preprocess.adapters import make_joints_fn

    T_src = 10
    params = {"body_pose": torch.zeros(T_src, 63), "betas": torch.zeros(T_src, 10),
              "global_orient": torch.tensor([[np.pi, 0.0, 0.0]]).repeat(T_src, 1),  # y down: upright in OpenCV
              "transl": torch.tensor([[0.0, 0.0, 4.0]]).repeat(T_src, 1)}
    K_src = torch.tensor([[200.0, 0, 64], [0, 200.0, 48], [0, 0, 1]])
    torch.save({"smpl_params_incam": params, "smpl_params_global": params, "K_fullimg": K_src.repeat(T_src, 1, 1)},
               tmp_path / "hmr4d_results.pt")
    frames, masks = moving_square(T=5)
    cv2.imwrite(str(tmp_path / "m.png"), masks[0].astype(np.uint8) * 255)
    cfg = PreprocessConfig(object_mask_path=str(tmp_path / "m.png"), gvhmr_results=str(tmp_path / "hmr4d_results.pt"),
                           frame_step=2)
    side = read_side_inputs(cfg, resolve(cfg, "video"), 5, (48, 64))
    body = BodyConfig(model_path=str(license_free_model_file(tmp_path)))
    b = video_to_bundle(frames, 10.0, (96, 128), cfg, side, joints_fn=make_joints_fn(body))
    np.testing.assert_allclose(b.K, [[100.0, 0, 32], [0, 100.0, 24], [0, 0, 1]])
    assert b.smplx_init.global_orient.shape == (5, 3) and b.smplx_init.body_pose.shape == (5, 21, 3)
    assert b.hand_keypoints.shape == (5, 2, 21, 2) and b.hand_keypoint_conf.shape == (5, 2, 21)
    assert b.hand_keypoint_conf.all()  # a T-posed body 4 m in front of the camera: every hand joint in view
    left_x, right_x = b.hand_keypoints[0, 0, 0, 0], b.hand_keypoints[0, 1, 0, 0]
    assert left_x > 32 > right_x  # rotated by pi about x, the body faces the camera: its left hand is on the right


def test_synthetic_scene_retracked_when_tracker_is_not_gt(tmp_path):
    """source synthetic + preprocess.tracker dense: generate, then preprocess replaces the GT tracks with the
    tracker's (grid inside the object mask) and keeps the ground truth; with tracker gt it writes no bundle."""
    (tmp_path / "cfg.yaml").write_text(
        "scene: {name: s, source: synthetic}\n"
        "synthetic: {object: door, width: 96, height: 72, num_frames: 5, num_tracks: 50}\n"
        "preprocess: {tracker: dense, grid_step_px: 4}\n")
    run_dir = pipeline.run(tmp_path / "cfg.yaml", stage="generate", out=tmp_path / "out")
    pipeline.run(tmp_path / "cfg.yaml", stage="preprocess", out=run_dir)
    generated = load_bundle(run_dir / "generate" / "bundle")
    b = load_bundle(run_dir / "preprocess" / "bundle")
    assert b.tracks.shape[1] != generated.tracks.shape[1] and b.tracks.shape[0] == 5
    np.testing.assert_array_equal(b.gt.tracks, generated.gt.tracks)
    x, y = b.tracks[0, :, 0].astype(int), b.tracks[0, :, 1].astype(int)
    assert b.object_masks[0][y, x].all()
    pipeline.run(tmp_path / "cfg.yaml", stage="preprocess", out=run_dir, overrides=["preprocess.tracker=gt"],
                 overwrite=True)
    assert not (run_dir / "preprocess" / "bundle").exists()


def test_sam_masks_exported_into_a_saved_bundle(tmp_path):
    """masks: sam with the real adapter code path (tiny random SAM): frame 0 from the configured box and points,
    later frames from tracked-point prompts; the bundle validates, saves and loads back bit-exact."""
    from arthoi_jax.io.bundle import save_bundle

    frames, _ = moving_square(T=3)
    sam = SamAdapter(tiny_sam(seed=0), device="cpu")
    calls = []
    predict = sam.predict
    sam.predict = lambda *a: calls.append(a[1:]) or predict(*a)
    cfg = PreprocessConfig(masks="sam", sam_checkpoint="unused.pth", object_box=(8.0, 12.0, 34.0, 36.0),
                           object_points=((20.5, 24.5),), human_points=((50.5, 10.5),), grid_step_px=4)
    b = video_to_bundle(frames, 10.0, (48, 64), cfg, sam=sam)
    assert b.object_masks.shape == (3, 48, 64) and b.object_masks.dtype == bool and b.object_masks[0].any()
    np.testing.assert_array_equal(calls[0][0], [[20.5, 24.5]])  # frame 0: the configured prompts
    assert calls[0][2] == (8.0, 12.0, 34.0, 36.0)
    np.testing.assert_array_equal(calls[1][0], [[50.5, 10.5]])  # then the human's, the object point negative
    np.testing.assert_array_equal(calls[1][1], [[20.5, 24.5]])
    assert len(calls) >= 3  # plus one call per later frame with a visible tracked prompt
    loaded = load_bundle(save_bundle(b, tmp_path / "b"))
    np.testing.assert_array_equal(loaded.object_masks, b.object_masks)
    np.testing.assert_array_equal(loaded.human_masks, b.human_masks)


def test_hand_keypoint_files_json_and_npz_read_alike(tmp_path):
    from arthoi_jax.io.preprocess_inputs import read_hand_keypoints

    kp = np.random.default_rng(0).uniform(0, 50, (3, 2, 21, 2))
    conf = np.random.default_rng(1).uniform(0, 1, (3, 2, 21))
    (tmp_path / "h.json").write_text(json.dumps({"keypoints": kp.tolist(), "confidence": conf.tolist()}))
    np.savez(tmp_path / "h.npz", keypoints=kp, confidence=conf)
    for name in ("h.json", "h.npz"):
        k, c = read_hand_keypoints(tmp_path / name)
        np.testing.assert_allclose(k, kp)
        np.testing.assert_allclose(c, conf)
