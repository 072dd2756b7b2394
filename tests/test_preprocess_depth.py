"""Monocular depth adapter on a tiny randomly initialised Depth Anything built from `transformers` classes and
loaded back from a local folder (the real loading path); the relative-depth scaling is in test_preprocess_bundle."""

import numpy as np
import pytest

transformers = pytest.importorskip("transformers", reason="monocular depth is optional; needs transformers")

from arthoi_jax.errors import ModelFileError  # noqa: E402
from arthoi_jax.preprocess.depth import MonocularDepthAdapter  # noqa: E402


def tiny_depth_anything(folder, kind):
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config, DPTImageProcessor

    backbone = Dinov2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                            image_size=56, patch_size=14, out_features=["stage1", "stage2"],
                            reshape_hidden_states=False)
    cfg = DepthAnythingConfig(backbone_config=backbone, reassemble_hidden_size=32, neck_hidden_sizes=[16, 32],
                              fusion_hidden_size=16, head_hidden_size=8, patch_size=14, reassemble_factors=[4, 2],
                              depth_estimation_type=kind, max_depth=10)
    DepthAnythingForDepthEstimation(cfg).save_pretrained(folder)
    DPTImageProcessor(size={"height": 56, "width": 56}, keep_aspect_ratio=False, do_pad=False).save_pretrained(folder)


def test_metric_model_from_folder_gives_positive_metres(tmp_path):
    tiny_depth_anything(tmp_path, "metric")
    adapter = MonocularDepthAdapter.from_folder(tmp_path, device="cpu")
    assert adapter.metric
    image = np.random.default_rng(0).integers(0, 255, (40, 60, 3), dtype=np.uint8)
    mask = np.zeros((40, 60), bool)
    mask[10:20, 10:30] = True
    depth = adapter.predict(image, mask, median_m=2.0)
    assert depth.shape == (40, 60) and depth.dtype == np.float32
    assert np.all(depth[mask] > 0) and depth.max() <= 10.0  # metric head: sigmoid x max_depth


def test_folder_without_config_rejected(tmp_path):
    with pytest.raises(ModelFileError, match="not a transformers model folder"):
        MonocularDepthAdapter.from_folder(tmp_path, device="cpu")
