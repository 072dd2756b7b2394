"""SAM adapter on a tiny randomly initialised SAM (the released architecture at toy size): shapes, dtypes,
prompt handling, the pixel convention at the boundary, the embedding cache, checkpoints."""

import numpy as np
import pytest
import torch

from arthoi_jax.errors import InputError, ModelFileError
from arthoi_jax.preprocess.sam import SamAdapter, tiny_sam


@pytest.fixture(scope="module")
def adapter():
    return SamAdapter(tiny_sam(img_size=64), device="cpu")


def image(H=48, W=64, seed=0):
    return np.random.default_rng(seed).integers(0, 255, (H, W, 3), dtype=np.uint8)


def spy_prompts(adapter, monkeypatch):
    """Records what reaches SAM's prompt encoder (points, labels, boxes) on each call."""
    seen = []
    encoder = adapter.model.prompt_encoder
    original = encoder.forward

    def forward(points, boxes, masks):
        seen.append((None if points is None else (points[0].clone(), points[1].clone()),
                     None if boxes is None else boxes.clone()))
        return original(points, boxes, masks)

    monkeypatch.setattr(encoder, "forward", forward)
    return seen


def test_mask_shape_dtype_at_original_size(adapter):
    mask = adapter.predict(image(), np.array([[10.5, 20.5]]), np.zeros((0, 2)), None)
    assert mask.shape == (48, 64) and mask.dtype == bool


def test_points_reach_sam_in_its_integer_centre_convention(adapter, monkeypatch):
    """48x64 image -> SAM input 48x64 scaled to long side 64: factor 1. Our pixel centre (10.5, 20.5) is SAM's
    pixel (10, 20); after SAM adds 0.5 it is our coordinate again."""
    seen = spy_prompts(adapter, monkeypatch)
    adapter.predict(image(), np.array([[10.5, 20.5], [3.0, 4.0]]), np.array([[60.5, 40.5]]), None)
    (coords, labels), box = seen[-1]
    np.testing.assert_allclose(coords[0].numpy(), [[10.0, 20.0], [2.5, 3.5], [60.0, 40.0]], atol=1e-6)
    assert labels[0].tolist() == [1, 1, 0] and box is None


def test_coordinates_scale_with_the_resize(adapter, monkeypatch):
    """A 32x32 image is enlarged x2 to SAM's 64: continuous (x, y) -> (2x, 2y) in SAM's frame, minus 0.5."""
    seen = spy_prompts(adapter, monkeypatch)
    adapter.predict(image(32, 32), np.array([[8.0, 16.0]]), None, np.array([4.0, 6.0, 20.0, 30.0]))
    (coords, _), box = seen[-1]
    np.testing.assert_allclose(coords[0].numpy(), [[15.5, 31.5]], atol=1e-5)
    np.testing.assert_allclose(box.numpy(), [[7.5, 11.5, 39.5, 59.5]], atol=1e-5)


def test_single_point_picks_best_of_three_else_one_mask(adapter, monkeypatch):
    calls = []
    original = adapter.predictor.predict_torch

    def predict_torch(*args, multimask_output, **kw):
        calls.append(multimask_output)
        return original(*args, multimask_output=multimask_output, **kw)

    monkeypatch.setattr(adapter.predictor, "predict_torch", predict_torch)
    img = image()
    adapter.predict(img, [[10.5, 20.5]])
    adapter.predict(img, [[10.5, 20.5]], [[30.5, 30.5]])
    adapter.predict(img, np.zeros((0, 2)), None, [2, 2, 30, 30])
    assert calls == [True, False, False]


def test_image_encoded_once_per_image(adapter, monkeypatch):
    count = []
    original = adapter.model.image_encoder.forward
    monkeypatch.setattr(adapter.model.image_encoder, "forward", lambda x: count.append(1) or original(x))
    a, b = image(seed=1), image(seed=2)
    adapter.predict(a, [[5.5, 5.5]])
    adapter.predict(a, [[15.5, 25.5]])
    adapter.predict(b, [[5.5, 5.5]])
    assert len(count) == 2


def test_empty_prompt_and_outside_points_rejected(adapter):
    with pytest.raises(InputError, match="prompt is empty"):
        adapter.predict(image(), np.zeros((0, 2)), [[3.5, 3.5]])
    with pytest.raises(InputError, match=r"positive_xy: point 1 at .*\[64.5, 10.0\].*outside the 64x48"):
        adapter.predict(image(), [[1.5, 1.5], [64.5, 10.0]])
    with pytest.raises(InputError, match="x0 < x1"):
        adapter.predict(image(), [[1.5, 1.5]], None, [30, 5, 10, 20])


def test_checkpoint_round_trip_and_wrong_type(tmp_path, monkeypatch):
    """from_checkpoint loads a state dict into the registry's model; the registry is swapped for the tiny
    builder so no 2.5 GB ViT-H is built. A ViT-B-sized file under vit_h is named as such."""
    import arthoi_jax.preprocess.sam as sam_mod

    model = tiny_sam(seed=3)
    path = tmp_path / "tiny.pth"
    torch.save(model.state_dict(), path)
    monkeypatch.setitem(sam_mod.sam_model_registry, "vit_b", lambda: tiny_sam(seed=4))
    loaded = SamAdapter.from_checkpoint(path, "vit_b", device="cpu")
    for k, v in model.state_dict().items():
        torch.testing.assert_close(loaded.model.state_dict()[k], v)
    monkeypatch.setitem(sam_mod.sam_model_registry, "vit_h", lambda: tiny_sam(seed=4))
    state = model.state_dict()
    state["image_encoder.patch_embed.proj.weight"] = torch.zeros(768, 3, 16, 16)  # ViT-B's patch embedding
    torch.save(state, tmp_path / "vitb.pth")
    with pytest.raises(ModelFileError, match="do not fit SAM vit_h; the file holds vit_b weights: set "
                                             "preprocess.sam_model_type: vit_b"):
        SamAdapter.from_checkpoint(tmp_path / "vitb.pth", "vit_h", device="cpu")
