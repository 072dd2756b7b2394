"""Bad inputs and faults for real-video perception, camera motion and text-to-video: one test per case."""

import json
import sys
import types
from types import SimpleNamespace

import numpy as np
import pytest

from arthoi_jax.errors import InputError, MissingDependencyError, ModelFileError
from arthoi_jax.io.video import read_video
from arthoi_jax.preprocess import mediapipe_human, text_to_video
from arthoi_jax.preprocess.camera_motion import estimate_camera_motion, track_background
from arthoi_jax.preprocess.foot_contact import foot_contact_from_landmarks
from arthoi_jax.preprocess.mediapipe_human import _assign_hands, perceive_human

# --- human perception ------------------------------------------------------------------------------------------

def test_mediapipe_missing_package_names_the_pin(monkeypatch):
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # makes `import mediapipe` raise ImportError
    with pytest.raises(MissingDependencyError, match=r"pip install mediapipe==0\.10\.14"):
        perceive_human(np.zeros((1, 32, 32, 3), np.uint8))


def test_mediapipe_without_legacy_solutions_names_the_pin(monkeypatch):
    newer = types.ModuleType("mediapipe")
    newer.__version__ = "0.10.21"
    monkeypatch.setitem(sys.modules, "mediapipe", newer)
    with pytest.raises(MissingDependencyError, match=r"0\.10\.21 has no legacy 'solutions'.*mediapipe==0\.10\.14"):
        mediapipe_human.import_mediapipe()


@pytest.mark.parametrize("frames, what", [
    (np.zeros((2, 32, 32, 3), np.float32), "float32"),
    (np.zeros((32, 32, 3), np.uint8), r"\[32, 32, 3\]"),
    (np.zeros((0, 32, 32, 3), np.uint8), r"\[0, 32, 32, 3\]"),
    (np.zeros((2, 32, 32, 4), np.uint8), r"\[2, 32, 32, 4\]"),
])
def test_perception_rejects_malformed_frames(frames, what):
    with pytest.raises(InputError, match=rf"frames: expected \[T, H, W, 3\] uint8 RGB.*{what}"):
        perceive_human(frames)


def test_perception_rejects_unknown_mask_source():
    with pytest.raises(InputError, match="mask_source: expected 'pose' or 'selfie', got 'sam'"):
        perceive_human(np.zeros((1, 32, 32, 3), np.uint8), mask_source="sam")


def test_no_person_found_is_an_explicit_empty_result():
    frames = np.full((3, 96, 96, 3), 128, np.uint8)  # a grey wall: nobody there
    p = perceive_human(frames)
    assert not p.body_found.any() and not p.person_mask.any() and not p.hand_found.any()
    assert (p.body_conf == 0).all() and (p.body_landmarks == 0).all() and (p.hand_conf == 0).all()
    contact = foot_contact_from_landmarks(p.body_landmarks, p.body_conf, p.body_found, fps=10.0)
    assert contact.shape == (3, 4) and not contact.any()  # no body: no contact constraint, not a crash


def _hand_result(hands):
    """A MediaPipe Hands result with hands given as (mirrored label, score, wrist (x, y) normalized)."""
    return SimpleNamespace(
        multi_handedness=[SimpleNamespace(classification=[SimpleNamespace(label=lab, score=s)]) for lab, s, _ in hands],
        multi_hand_landmarks=[SimpleNamespace(landmark=[SimpleNamespace(x=w[0], y=w[1])] * 21) for _, _, w in hands])


def _empty_out(T=1):
    return {"body_found": np.zeros(T, bool), "body_landmarks": np.zeros((T, 33, 2), np.float32),
            "hand_keypoints": np.zeros((T, 2, 21, 2), np.float32), "hand_conf": np.zeros((T, 2, 21), np.float32)}


def test_hand_labels_are_unmirrored_without_a_body():
    out = _empty_out()
    _assign_hands(_hand_result([("Left", 0.9, (0.3, 0.5))]), 0, out, np.array([100.0, 100.0], np.float32))
    # MediaPipe's "Left" assumes a selfie mirror: on an ordinary video it is the person's right hand (slot 1)
    assert out["hand_conf"][0, 1, 0] == pytest.approx(0.9) and out["hand_conf"][0, 0].max() == 0
    np.testing.assert_allclose(out["hand_keypoints"][0, 1, 0], [30.0, 50.0])


def test_two_hands_with_the_same_label_keep_the_surer_one_without_a_body():
    out = _empty_out()
    _assign_hands(_hand_result([("Right", 0.7, (0.2, 0.5)), ("Right", 0.95, (0.8, 0.5))]), 0, out,
                  np.array([100.0, 100.0], np.float32))
    assert out["hand_conf"][0, 0, 0] == pytest.approx(0.95) and out["hand_conf"][0, 1].max() == 0
    np.testing.assert_allclose(out["hand_keypoints"][0, 0, 0], [80.0, 50.0])


def test_two_hands_with_the_same_label_go_to_the_nearer_body_wrists():
    out = _empty_out()
    out["body_found"][0] = True
    out["body_landmarks"][0, mediapipe_human.LEFT_WRIST] = [82.0, 50.0]
    out["body_landmarks"][0, mediapipe_human.RIGHT_WRIST] = [21.0, 50.0]
    _assign_hands(_hand_result([("Right", 0.7, (0.2, 0.5)), ("Right", 0.95, (0.8, 0.5))]), 0, out,
                  np.array([100.0, 100.0], np.float32))
    np.testing.assert_allclose(out["hand_keypoints"][0, :, 0], [[80.0, 50.0], [20.0, 50.0]])
    np.testing.assert_allclose(out["hand_conf"][0, :, 0], [0.95, 0.7])


def test_unreadable_video_names_the_file(tmp_path):
    bad = tmp_path / "clip.mp4"
    bad.write_bytes(b"this is not an mp4" * 100)
    with pytest.raises(InputError, match=r"clip\.mp4: (cannot open as a video|no frame could be decoded)"):
        read_video(bad)


def test_foot_contact_rejects_a_zero_fps():
    with pytest.raises(InputError, match="fps must be > 0, got 0"):
        foot_contact_from_landmarks(np.zeros((4, 33, 2)), np.zeros((4, 33)), np.zeros(4, bool), fps=0)


def test_foot_contact_rejects_landmarks_of_the_wrong_shape():
    with pytest.raises(InputError, match=r"expected landmarks \[T, 33, 2\].*got \[4, 17, 2\]"):
        foot_contact_from_landmarks(np.zeros((4, 17, 2)), np.zeros((4, 17)), np.zeros(4, bool), fps=10)


# --- camera motion ---------------------------------------------------------------------------------------------

K = np.array([[300.0, 0, 160], [0, 300, 120], [0, 0, 1]])


def _static_tracks(T=4, n=60, seed=0):
    rng = np.random.default_rng(seed)
    uv = rng.uniform([10, 10], [310, 230], (n, 2))
    return np.repeat(uv[None], T, 0), np.ones((T, n), bool), rng.uniform(2, 6, n)


def test_too_few_background_tracks_names_the_frame_and_count():
    tracks, vis, depth = _static_tracks()
    vis[2, 12:] = False  # frame 2 keeps 12 tracks
    with pytest.raises(InputError, match=r"frame 2 shares only 12 visible background tracks with frame 0 "
                                         r"\(need at least 20\)"):
        estimate_camera_motion(tracks, vis, K, depth)


def test_no_background_depth_is_refused_with_the_count():
    tracks, vis, depth = _static_tracks()
    depth[5:] = 0.0
    with pytest.raises(InputError, match=r"5 background tracks have a known frame-0 depth.*need at least 20"):
        estimate_camera_motion(tracks, vis, K, depth)


def test_static_camera_gives_identity_poses():
    tracks, vis, depth = _static_tracks()
    cm = estimate_camera_motion(tracks, vis, K, depth)
    np.testing.assert_allclose(cm.T_cam_world, np.tile(np.eye(4), (4, 1, 1)), atol=1e-6)
    assert cm.method == ("reference", "rotation", "rotation", "rotation")


def test_camera_motion_rejects_mismatched_depth():
    tracks, vis, depth = _static_tracks()
    with pytest.raises(InputError, match=r"point_depth \[N=60\], got \[3, 3\] and \[59\]"):
        estimate_camera_motion(tracks, vis, K, depth[:59])


def test_camera_motion_rejects_a_visible_nan_track():
    tracks, vis, depth = _static_tracks()
    tracks[3, 7] = np.nan
    with pytest.raises(InputError, match=r"visible track 7 at frame 3 is not finite \(\[nan, nan\]\)"):
        estimate_camera_motion(tracks, vis, K, depth)
    vis[3, 7] = False  # the same track marked invisible is simply not used
    assert estimate_camera_motion(tracks, vis, K, depth).num_inliers[3] == 59


def test_camera_motion_rejects_an_unknown_model():
    tracks, vis, depth = _static_tracks()
    with pytest.raises(InputError, match="model must be 'auto' or 'rotation', got 'homography'"):
        estimate_camera_motion(tracks, vis, K, depth, model="homography")


def test_masks_covering_the_whole_frame_leave_nothing_to_track():
    frames = np.zeros((3, 40, 40, 3), np.uint8)
    full = np.ones((3, 40, 40), bool)
    with pytest.raises(InputError, match="leave no background in frame 0"):
        track_background(frames, full, np.zeros_like(full))


# --- text to video ---------------------------------------------------------------------------------------------

def test_diffusers_missing_package_names_the_pin(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "diffusers", None)
    with pytest.raises(MissingDependencyError, match=r"pip install diffusers==0\.42\.1 transformers=="):
        text_to_video.load_video_pipeline(tmp_path)


def test_transformers_missing_for_a_text_encoder_names_the_pin(monkeypatch, tmp_path):
    (tmp_path / "text_encoder").mkdir()
    (tmp_path / "model_index.json").write_text(json.dumps(
        {"_class_name": "TextToVideoSDPipeline", "text_encoder": ["transformers", "CLIPTextModel"]}))
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(MissingDependencyError, match=r"'text_encoder' is a transformers CLIPTextModel.*"
                                                     r"pip install transformers=="):
        text_to_video.read_model_index(tmp_path)


def test_t2v_checkpoint_folder_missing(tmp_path):
    with pytest.raises(ModelFileError, match=r"nowhere: text-to-video checkpoint folder not found"):
        text_to_video.read_model_index(tmp_path / "nowhere")


def test_t2v_folder_without_model_index(tmp_path):
    with pytest.raises(ModelFileError, match=r"not a diffusers checkpoint folder \(no model_index\.json\)"):
        text_to_video.read_model_index(tmp_path)


def test_t2v_truncated_model_index(tmp_path):
    (tmp_path / "model_index.json").write_text('{"_class_name": "TextToVideoSDPipe')
    with pytest.raises(ModelFileError, match=r"model_index\.json: unreadable \(JSONDecodeError.*truncated"):
        text_to_video.read_model_index(tmp_path)


def test_t2v_component_folder_missing(tmp_path):
    (tmp_path / "model_index.json").write_text(json.dumps(
        {"_class_name": "TextToVideoSDPipeline", "unet": ["diffusers", "UNet3DConditionModel"]}))
    with pytest.raises(ModelFileError, match="component folder 'unet' listed in model_index.json is missing"):
        text_to_video.read_model_index(tmp_path)


@pytest.fixture(scope="module")
def tiny_t2v(tmp_path_factory):
    pytest.importorskip("diffusers")
    pytest.importorskip("transformers")
    from tests.test_text_to_video import save_tiny_pipeline
    return save_tiny_pipeline(tmp_path_factory.mktemp("corpus_t2v") / "tiny")


def test_t2v_truncated_weights_file(tiny_t2v, tmp_path):
    import shutil
    broken = shutil.copytree(tiny_t2v, tmp_path / "broken")
    weights = broken / "unet" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:200])
    with pytest.raises(ModelFileError, match=r"broken: cannot load the TextToVideoSDPipeline checkpoint.*corrupt"):
        text_to_video.load_video_pipeline(broken, device="cpu")


def test_t2v_image_pipeline_refuses_non_video_checkpoint(tmp_path):
    pytest.importorskip("diffusers")
    from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel

    unet = UNet2DModel(sample_size=8, in_channels=3, out_channels=3, block_out_channels=(8, 8), norm_num_groups=4,
                       layers_per_block=1, down_block_types=("DownBlock2D",) * 2, up_block_types=("UpBlock2D",) * 2)
    DDPMPipeline(unet=unet, scheduler=DDPMScheduler()).save_pretrained(tmp_path / "ddpm")
    with pytest.raises(ModelFileError, match="DDPMPipeline is not a video pipeline"):
        text_to_video.load_video_pipeline(tmp_path / "ddpm", device="cpu")


@pytest.fixture(scope="module")
def tiny_pipe(tiny_t2v):
    return text_to_video.load_video_pipeline(tiny_t2v, device="cpu")


def test_t2v_image_given_to_a_text_only_pipeline(tiny_pipe):
    with pytest.raises(InputError, match="TextToVideoSDPipeline is a text-to-video pipeline and takes no image"):
        text_to_video.generate_video(tiny_pipe, "a door", num_frames=2, height=16, width=16, fps=8,
                                     image=np.zeros((16, 16, 3), np.uint8))


def test_t2v_size_not_a_multiple_of_the_vae_factor(tiny_pipe):
    with pytest.raises(InputError, match=r"needs multiples of 2 px, got 17x16"):
        text_to_video.generate_video(tiny_pipe, "a door", num_frames=2, height=16, width=17, fps=8)


def test_t2v_empty_prompt(tiny_pipe):
    with pytest.raises(InputError, match="prompt: expected a non-empty text, got '  '"):
        text_to_video.generate_video(tiny_pipe, "  ", num_frames=2, height=16, width=16, fps=8)
