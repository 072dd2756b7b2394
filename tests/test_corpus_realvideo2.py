"""Bad inputs of real-video preprocessing without checkpoints (prompts, body fit, text in, perception choices):
each case builds its input and asserts the named error and what its message says."""

import numpy as np
import pytest

from arthoi_jax import pipeline
from arthoi_jax.body.fit2d import fit_body_to_landmarks
from arthoi_jax.config import (
    BodyConfig,
    Config,
    HumanConfig,
    PreprocessConfig,
    load_config,
)
from arthoi_jax.errors import ConfigError, InputError
from arthoi_jax.io.body_model_file import load_body_model
from arthoi_jax.preprocess import adapters
from arthoi_jax.preprocess.object_prompt import grabcut_object_mask
from arthoi_jax.preprocess.video_to_bundle import resolve

IMG = np.random.default_rng(0).integers(0, 255, (32, 48, 3), dtype=np.uint8)
K = np.array([[50.0, 0, 24], [0, 50.0, 16], [0, 0, 1]])


def test_video_without_any_object_prompt_rejected():
    with pytest.raises(ConfigError, match=r"object_box / preprocess.object_points: a video needs the object marked"):
        resolve(PreprocessConfig(), "video")


def test_grabcut_box_outside_the_frame_rejected():
    with pytest.raises(ConfigError, match=r"object_box: \[60, 40, 90, 50\] leaves no area inside the 48x32 frame"):
        grabcut_object_mask(IMG, box=(60, 40, 90, 50))


def test_grabcut_point_outside_the_frame_rejected():
    with pytest.raises(ConfigError, match=r"object_points: point \[100.0, 5.0\] is outside the 48x32 frame"):
        grabcut_object_mask(IMG, points=[[100, 5]])


def test_grabcut_without_box_or_points_rejected():
    with pytest.raises(ConfigError, match="needs a box or points on the object in frame 0"):
        grabcut_object_mask(IMG)


def test_body_fit_without_a_visible_torso_rejected():
    lm, conf = np.zeros((3, 33, 2)), np.zeros((3, 33))
    conf[:, 0] = 1.0  # only the nose
    with pytest.raises(InputError, match="no frame shows both shoulders and both hips"):
        fit_body_to_landmarks(load_body_model(BodyConfig()), lm, conf, K, (32, 48))


def test_body_fit_rejects_landmarks_of_the_wrong_shape():
    with pytest.raises(InputError, match=r"expected landmarks \[T, 33, 2\], conf \[T, 33\], K \[3, 3\]; got \[3, 17, 2\]"):
        fit_body_to_landmarks(None, np.zeros((3, 17, 2)), np.zeros((3, 17)), K, (32, 48))


def test_human_files_without_a_mask_path_rejected():
    with pytest.raises(ConfigError, match="preprocess.human_mask_path: required when preprocess.human is 'files'"):
        resolve(PreprocessConfig(human="files", object_box=(0, 0, 9, 9)), "video")


def test_fit2d_init_without_mediapipe_perception_rejected():
    cfg = Config(preprocess=PreprocessConfig(human="none"), human=HumanConfig(init="fit2d"))
    with pytest.raises(ConfigError, match="human.init: 'fit2d' fits the body to MediaPipe's landmarks"):
        adapters.make_human_steps(cfg, {"human": "none", "depth": "constant"})


def test_gvhmr_init_without_results_rejected():
    cfg = Config(preprocess=PreprocessConfig(human="none"), human=HumanConfig(init="gvhmr"))
    with pytest.raises(ConfigError, match="human.init: 'gvhmr' needs preprocess.gvhmr_results"):
        adapters.make_human_steps(cfg, {"human": "none", "depth": "constant"})


def test_text_in_without_video_or_checkpoint_rejected(tmp_path):
    (tmp_path / "c.yaml").write_text("scene: {source: video}\npreprocess: {prompt: a man opens a door}\n")
    with pytest.raises(ConfigError, match="scene.video: required .* set preprocess.prompt and text_to_video.checkpoint"):
        pipeline.run(tmp_path / "c.yaml", stage="preprocess", out=tmp_path / "out")


def test_unknown_camera_motion_model_rejected():
    with pytest.raises(ConfigError, match=r"camera_motion.model: 'homography' is not allowed; allowed values: "
                                          r"'auto', 'rotation', 'full'"):
        load_config(None, ["camera_motion.model=homography"])


def test_missing_mediapipe_names_the_package_and_the_way_out(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_mediapipe(name, *args, **kwargs):
        if name == "mediapipe":
            raise ImportError("No module named 'mediapipe'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_mediapipe)
    from arthoi_jax.errors import MissingDependencyError

    with pytest.raises(MissingDependencyError, match=r"mediapipe==0.10.14.*or set preprocess.human: none"):
        adapters.make_human_steps(Config(), {"human": "mediapipe", "depth": "geometry"})
