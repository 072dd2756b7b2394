"""Real-video preprocessing without checkpoints: human perception, body fit, camera motion and foot contact wired
into the bundle; the coarse geometry depth; GrabCut object masks from config prompts; text in."""

import json

import numpy as np
import pytest

from arthoi_jax import pipeline
from arthoi_jax.body.fit2d import LANDMARK_MAP, FitResult
from arthoi_jax.config import CameraMotionConfig, PreprocessConfig
from arthoi_jax.errors import InputError
from arthoi_jax.io.bundle import load_bundle
from arthoi_jax.preprocess import adapters, scene_depth
from arthoi_jax.preprocess.camera_motion import CameraMotion
from arthoi_jax.preprocess.mediapipe_human import HumanPerception
from arthoi_jax.preprocess.object_prompt import grabcut_object_mask
from arthoi_jax.preprocess.text_to_video import GeneratedVideo
from arthoi_jax.preprocess.video_to_bundle import (
    HumanSteps,
    SideInputs,
    video_to_bundle,
)
from tests.test_preprocess_bundle import iou, moving_square

NAMES = [m for m, _, _ in LANDMARK_MAP]
F = 100.0
K = np.array([[F, 0.0, 32.0], [0.0, F, 24.0], [0.0, 0.0, 1.0]])


def fake_perception(T, H, W):
    rng = np.random.default_rng(0)
    mask = np.zeros((T, H, W), bool)
    mask[:, 5:40, 45:60] = True
    lm = np.tile(rng.uniform(45, 60, (1, 33, 2)), (T, 1, 1)).astype(np.float32)
    hands = np.zeros((T, 2, 21, 2), np.float32)
    hand_conf = np.zeros((T, 2, 21), np.float32)
    hand_conf[:, 1] = 0.8
    return HumanPerception(mask, np.ones(T, bool), lm, np.ones((T, 33), np.float32), np.zeros((T, 33, 3), np.float32),
                           hands, hand_conf)


def standing_fit(T, z=3.0, cam_height=1.5):
    """A FitResult of a person standing at depth z on a floor `cam_height` below a level camera (y down)."""
    J = np.zeros((T, 21, 3))
    J[..., 2] = z
    J[:, :, 1] = 0.5  # mid-body
    for n in ("left_heel", "right_heel", "left_foot_index", "right_foot_index"):
        J[:, NAMES.index(n), 1] = cam_height
    for n in ("left_shoulder", "right_shoulder"):
        J[:, NAMES.index(n), 1] = cam_height - 1.4
    J[:, NAMES.index("left_wrist")] = [0.5, 0.5, z - 0.4]  # reaches towards the camera
    uv = J[..., :2] / J[..., 2:] * F + K[:2, 2]
    return FitResult(None, J, uv, np.zeros(T), np.ones(T, bool), 1.7, np.zeros(3))


def test_human_steps_fill_the_v2_bundle_fields():
    frames, masks = moving_square(T=5)
    T, H, W = masks.shape
    T_cw = np.tile(np.eye(4), (T, 1, 1))
    T_cw[:, 0, 3] = np.arange(T) * 0.01
    bg_tracks = np.tile(np.array([[5.0, 45.0], [60.0, 45.0]]), (T, 1, 1))
    seen = {}

    def camera(fr, human_masks, object_masks, K_, depth):
        seen["human_masks"] = human_masks
        motion = CameraMotion(T_cw, np.tile(np.eye(3), (T, 1, 1)), np.full(T, 30), np.zeros(T),
                              ("reference",) + ("rotation",) * (T - 1))
        return motion, bg_tracks, np.ones((T, 2), bool)

    def to_smplx(fit, T_cam_world):
        seen["to_smplx"] = T_cam_world

    steps = HumanSteps(perceive=lambda f: fake_perception(*f.shape[:3]), fit_body=lambda *a: standing_fit(T),
                       to_smplx=to_smplx, camera_motion=camera)
    cfg = PreprocessConfig(grid_step_px=4, depth="geometry")
    details = {}
    methods = {"masks": "files", "tracker": "dense", "depth": "geometry", "human": "mediapipe"}
    b = video_to_bundle(frames, 10.0, (H, W), cfg, SideInputs(object_masks=masks[:1]), methods=methods,
                        human=steps, details=details)
    assert b.body_landmarks.shape == (T, 33, 2) and b.body_landmark_conf.shape == (T, 33)
    assert b.foot_contact.shape == (T, 4) and b.foot_contact.all()  # the landmarks never move
    np.testing.assert_array_equal(b.human_masks, fake_perception(T, H, W).person_mask)
    np.testing.assert_array_equal(seen["human_masks"], b.human_masks)
    np.testing.assert_allclose(b.T_cam_world, T_cw)
    assert seen["to_smplx"] is T_cw  # the fit is moved into the world with the estimated extrinsics
    assert b.hand_keypoint_conf[:, 1].min() == pytest.approx(0.8) and b.hand_keypoint_conf[:, 0].max() == 0
    assert details["frames_with_body"] == T and details["camera_motion"]["max_rotation_deg"] == 0
    assert details["depth_placement"]["object_depth_m"] > 0


def test_geometry_depth_ground_plane_body_and_object():
    T, H, W = scene_depth.TOUCH_FRAMES, 48, 64
    fit = standing_fit(T)
    obj = np.zeros((T, H, W), bool)
    wx, wy = np.floor(fit.joints2d[0, NAMES.index("left_wrist")]).astype(int)
    obj[:, wy - 3:wy + 3, wx - 3:wx + 3] = True
    human0 = np.zeros((H, W), bool)
    human0[0:5, 0:5] = True
    depth, info = scene_depth.geometry_depth(fit, K, obj, human0, far_factor=4.0)
    v = 40  # a ground row: z = f * cam_height / (v + 0.5 - cy)
    assert depth[v, 1] == pytest.approx(F * 1.5 / (v + 0.5 - 24.0), rel=1e-4)
    assert depth[2, 60] == pytest.approx(12.0)  # above the horizon: far = 4 x body depth
    assert info["object_depth_from"].startswith("wrist contact") and depth[wy, wx] == pytest.approx(2.6)
    assert depth[1, 1] == pytest.approx(3.0)  # the human at its pelvis depth


def test_relative_depth_aligned_to_the_fitted_body():
    fit = standing_fit(1, z=2.0)
    rel = np.full((8, 8), 5.0, np.float32)
    rel[:4] = 10.0
    human0 = np.zeros((8, 8), bool)
    human0[:4, :4] = True
    depth, scale = scene_depth.align_to_body(rel, human0, fit)
    assert scale == pytest.approx(0.2) and depth[0, 0] == pytest.approx(2.0) and depth[7, 7] == pytest.approx(1.0)


def test_grabcut_mask_from_a_box_and_from_points():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 80, (64, 80, 3), dtype=np.uint8)
    img[..., 2] += 100  # bluish clutter
    truth = np.zeros((64, 80), bool)
    truth[20:44, 25:60] = True
    img[truth] = rng.integers(150, 255, (truth.sum(), 3)) * [1, 0.3, 0.1]
    assert iou(grabcut_object_mask(img, box=(20, 15, 65, 50)), truth) > 0.9
    assert iou(grabcut_object_mask(img, points=[[40, 30], [50, 38]], negative_points=[[5, 5]]), truth) > 0.9


def test_camera_motion_auto_falls_back_to_static_and_on_raises(caplog):
    frames, masks = moving_square(T=3)
    everywhere = np.ones_like(masks)
    auto = adapters.make_camera_motion(CameraMotionConfig(), {"depth": "geometry"})
    assert auto(frames, everywhere, masks, K, np.full(masks.shape[1:], 2.0)) is None
    assert "static camera assumed" in caplog.text
    on = adapters.make_camera_motion(CameraMotionConfig(enabled="on"), {"depth": "geometry"})
    with pytest.raises(InputError, match="leave no background in frame 0"):
        on(frames, everywhere, masks, K, np.full(masks.shape[1:], 2.0))
    assert adapters.make_camera_motion(CameraMotionConfig(enabled="off"), {"depth": "file"}) is None


def test_text_in_generates_then_preprocesses(tmp_path, monkeypatch):
    frames, masks = moving_square(T=4)
    calls = {}

    def fake_t2v(checkpoint, prompt, **kw):
        calls.update(kw, checkpoint=checkpoint, prompt=prompt)
        return GeneratedVideo(frames, kw["fps"], prompt, "FakePipeline", kw["seed"])

    monkeypatch.setattr("arthoi_jax.preprocess.text_to_video.text_to_video", fake_t2v)
    (tmp_path / "c.yaml").write_text(
        "scene: {name: t, source: video}\n"
        "preprocess: {prompt: a square slides, object_box: [8, 12, 32, 36], object_points: [[20, 24], [14, 18], [26, 30]],\n"
        "             human: none, grid_step_px: 4}\n"
        "text_to_video: {checkpoint: some/folder, num_frames: 4, height: 48, width: 64, fps: 6.0}\n"
        "camera_motion: {enabled: 'off'}\n")
    run_dir = pipeline.run(tmp_path / "c.yaml", stage="preprocess", out=tmp_path / "out")
    b = load_bundle(run_dir / "preprocess" / "bundle")
    assert calls["checkpoint"] == "some/folder" and calls["prompt"] == "a square slides" and calls["num_frames"] == 4
    assert b.frames.shape == (4, 48, 64, 3) and b.fps == pytest.approx(6.0) and b.prompt == "a square slides"
    assert iou(b.object_masks[0], masks[0]) > 0.8 and (run_dir / "preprocess" / "generated.mp4").is_file()
    assert json.loads((run_dir / "preprocess" / "summary.json").read_text())["masks"] == "grabcut"
