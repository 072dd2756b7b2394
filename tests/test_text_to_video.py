"""The text-to-video adapter on a tiny, randomly initialized diffusers pipeline saved to a local folder.

The pipeline is diffusers' TextToVideoSDPipeline (UNet3D + VAE + CLIP text encoder) with a few channels, so the
checks are of wiring: the folder loads offline, the prompt and seed reach the model, and the frames come back at
the requested count, size and frame rate. The image-to-video path is checked with a recording stand-in.
"""

import json

import numpy as np
import pytest

from arthoi_jax.errors import InputError
from arthoi_jax.preprocess.text_to_video import (
    generate_video,
    load_video_pipeline,
    text_to_video,
)

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers", reason="text-to-video needs diffusers (requirements.txt)")
transformers = pytest.importorskip("transformers", reason="the tiny pipeline's text encoder needs transformers")


def save_tiny_pipeline(folder):
    """A TextToVideoSDPipeline with random weights, written with save_pretrained to `folder`."""
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        TextToVideoSDPipeline,
        UNet3DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    torch.manual_seed(0)
    chars = list(bytes_to_unicode().values())  # a byte-level vocabulary without merges: one token per character
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": len(chars) + i for i, c in enumerate(chars)})
    vocab.update({"<|startoftext|>": len(vocab), "<|endoftext|>": len(vocab) + 1})
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=16)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_attention_heads=2, num_hidden_layers=1,
        max_position_embeddings=16, projection_dim=16, bos_token_id=vocab["<|startoftext|>"],
        eos_token_id=vocab["<|endoftext|>"], pad_token_id=vocab["<|endoftext|>"]))
    unet = UNet3DConditionModel(
        block_out_channels=(8, 16), norm_num_groups=4, down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"),
        up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"), cross_attention_dim=16, attention_head_dim=4,
        layers_per_block=1, sample_size=8, in_channels=4, out_channels=4)
    vae = AutoencoderKL(block_out_channels=(8, 8), norm_num_groups=4, latent_channels=4, sample_size=16,
                        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2)
    scheduler = DDIMScheduler(beta_schedule="scaled_linear", clip_sample=False)
    TextToVideoSDPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                          scheduler=scheduler).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def one_thread():
    """The tiny model is faster on one thread than fighting other test workers for two."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return save_tiny_pipeline(tmp_path_factory.mktemp("t2v") / "tiny_t2v")


@pytest.fixture(scope="module")
def pipe(tiny_dir, one_thread):
    return load_video_pipeline(tiny_dir, device="cpu")


ARGS = {"num_frames": 5, "height": 32, "width": 48, "fps": 8.0, "num_inference_steps": 2}


def test_loads_offline_and_makes_the_requested_video(tiny_dir, one_thread):
    assert json.loads((tiny_dir / "model_index.json").read_text())["_class_name"] == "TextToVideoSDPipeline"
    video = text_to_video(tiny_dir, "a man opens a door", device="cpu", **ARGS)
    assert video.frames.shape == (5, 32, 48, 3) and video.frames.dtype == np.uint8
    assert video.fps == 8.0 and video.pipeline == "TextToVideoSDPipeline" and video.prompt == "a man opens a door"
    assert video.frames.std() > 1.0  # random weights still make varied pixels, not a blank video


def test_prompt_and_seed_reach_the_model(pipe):
    a = generate_video(pipe, "a man opens a door", seed=3, **ARGS).frames
    b = generate_video(pipe, "a man opens a door", seed=3, **ARGS).frames
    c = generate_video(pipe, "a woman closes a drawer", seed=3, **ARGS).frames
    d = generate_video(pipe, "a man opens a door", seed=4, **ARGS).frames
    np.testing.assert_array_equal(a, b)
    assert np.abs(a.astype(int) - c).max() > 0
    assert np.abs(a.astype(int) - d).max() > 0


def test_other_frame_counts_and_sizes(pipe):
    v = generate_video(pipe, "a door", num_frames=3, height=16, width=24, fps=24.0, num_inference_steps=1)
    assert v.frames.shape == (3, 16, 24, 3) and v.fps == 24.0


class RecordingImageToVideo:
    """Stands in for an image-to-video pipeline (SVD's call signature: no prompt, fps as conditioning) and records
    what the adapter passes; returns frames whose values encode the frame index."""

    vae_scale_factor = 8

    def __call__(self, image, num_frames, height, width, fps, num_inference_steps, generator, output_type):
        self.kwargs = {"image": image, "num_frames": num_frames, "height": height, "width": width, "fps": fps,
                           "num_inference_steps": num_inference_steps, "generator": generator, "output_type": output_type}
        ramp = np.arange(num_frames, dtype=np.float32)[:, None, None, None] / (num_frames - 1)
        return type("Out", (), {"frames": np.broadcast_to(ramp, (1, num_frames, height, width, 3)).copy()})()


def test_image_to_video_wiring():
    pipe = RecordingImageToVideo()
    first = np.zeros((20, 30, 3), np.uint8)
    first[:, :, 0] = 200
    v = generate_video(pipe, "", image=first, num_frames=4, height=16, width=24, fps=7.0, num_inference_steps=3)
    k = pipe.kwargs
    assert k["image"].size == (30, 20) and k["image"].getpixel((0, 0)) == (200, 0, 0)  # PIL RGB, as given
    assert (k["num_frames"], k["height"], k["width"], k["fps"], k["output_type"]) == (4, 16, 24, 7, "np")
    assert v.frames.shape == (4, 16, 24, 3) and v.fps == 7.0
    np.testing.assert_array_equal(v.frames[:, 0, 0, 0], [0, 85, 170, 255])  # [0, 1] floats -> uint8, rounded


def test_image_to_video_without_an_image_is_refused():
    with pytest.raises(InputError, match="RecordingImageToVideo is an image-to-video pipeline; give the first frame"):
        generate_video(RecordingImageToVideo(), "a door", num_frames=4, height=16, width=24, fps=7.0)
