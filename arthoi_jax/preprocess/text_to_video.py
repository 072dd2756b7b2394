"""Text (or an image) in, a video out: an adapter over a `diffusers` text-to-video / image-to-video pipeline.

The checkpoint is a local diffusers folder (`model_index.json` + one sub-folder per component, as written by
`save_pretrained` or downloaded from a model hub by the user); nothing is fetched at run time. Any diffusers video
pipeline whose `__call__` takes `num_frames` works (e.g. Wan2.1-T2V, CogVideoX, LTX-Video, ModelScope
text-to-video; Stable Video Diffusion and I2VGen-XL from an image). Arguments the pipeline does not take are not
passed (the image-to-video ones take no prompt, SVD takes `fps` as conditioning).

Frame rate: diffusion pipelines return frames without a rate; the caller states the model's native rate (`fps`),
which is stored with the video. Frames come back as [T, H, W, 3] uint8 RGB at exactly the requested size and count,
or an InputError says what the pipeline produced instead (several models need sizes that are multiples of 8 or 16
and frame counts of the form 4k + 1).
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import logging
from pathlib import Path

import numpy as np

from arthoi_jax.errors import InputError, MissingDependencyError, ModelFileError

log = logging.getLogger("arthoi_jax")

DIFFUSERS_PIN = "diffusers==0.42.1"
TRANSFORMERS_PIN = "transformers==5.24.0"


@dataclasses.dataclass(frozen=True)
class GeneratedVideo:
    frames: np.ndarray  # [T, H, W, 3] uint8 RGB
    fps: float
    prompt: str
    pipeline: str  # the diffusers pipeline class that made it
    seed: int


def import_diffusers():
    """The `diffusers` module, or MissingDependencyError saying what to install."""
    try:
        import diffusers
    except ImportError as e:
        raise MissingDependencyError(
            f"text-to-video needs the 'diffusers' package ({e}); install it with "
            f"`pip install {DIFFUSERS_PIN} {TRANSFORMERS_PIN}`") from None
    return diffusers


def read_model_index(checkpoint_dir: str | Path) -> dict:
    """Checks a diffusers checkpoint folder's layout and returns its `model_index.json`.

    Raises:
      ModelFileError: the folder or `model_index.json` is missing or unreadable, or a component folder it lists
        is missing. MissingDependencyError: a component needs `transformers` and it is not installed.
    """
    path = Path(checkpoint_dir)
    index_path = path / "model_index.json"
    if not path.is_dir():
        raise ModelFileError(f"{path}: text-to-video checkpoint folder not found (expected a diffusers folder with "
                             f"model_index.json, as written by save_pretrained); see third_party/README.md")
    if not index_path.is_file():
        raise ModelFileError(f"{path}: not a diffusers checkpoint folder (no model_index.json)")
    try:
        index = json.loads(index_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFileError(f"{index_path}: unreadable ({type(e).__name__}: {e}); the download may be truncated") from None
    if not isinstance(index, dict) or not isinstance(index.get("_class_name"), str):
        raise ModelFileError(f"{index_path}: expected a JSON object with a '_class_name' (the pipeline class)")
    for name, spec in index.items():
        if name.startswith("_") or not isinstance(spec, list) or len(spec) != 2 or spec[0] is None:
            continue
        if not (path / name).is_dir():
            raise ModelFileError(f"{path}: component folder '{name}' listed in model_index.json is missing")
        if spec[0] == "transformers":
            try:
                import transformers  # noqa: F401
            except ImportError as e:
                raise MissingDependencyError(
                    f"{path}: component '{name}' is a transformers {spec[1]} but 'transformers' is not installed "
                    f"({e}); install it with `pip install {TRANSFORMERS_PIN}`") from None
    return index


def load_video_pipeline(checkpoint_dir: str | Path, *, device: str = "auto", dtype: str = "float32"):
    """Loads a diffusers video pipeline from a local folder, offline.

    Args:
      checkpoint_dir: diffusers checkpoint folder. device: "auto" (CUDA when available), "cpu", "cuda", ...
      dtype: "float32", "float16" or "bfloat16".
    Raises:
      MissingDependencyError, ModelFileError (missing/corrupt files, or not a video pipeline).
    """
    diffusers = import_diffusers()
    import torch

    index = read_model_index(checkpoint_dir)
    if dtype not in ("float32", "float16", "bfloat16"):
        raise InputError(f"dtype: expected 'float32', 'float16' or 'bfloat16', got {dtype!r}")
    try:
        pipe = diffusers.DiffusionPipeline.from_pretrained(str(checkpoint_dir), local_files_only=True,
                                                           dtype=getattr(torch, dtype))
    except ImportError as e:
        raise MissingDependencyError(f"{checkpoint_dir}: loading the {index['_class_name']} needs a package that is "
                                     f"not installed ({e})") from None
    except Exception as e:  # noqa: BLE001 - diffusers/safetensors/json raise many types for a broken folder
        raise ModelFileError(f"{checkpoint_dir}: cannot load the {index['_class_name']} checkpoint "
                             f"({type(e).__name__}: {e}); the download may be incomplete or corrupt") from None
    if "num_frames" not in inspect.signature(pipe.__call__).parameters:
        raise ModelFileError(f"{checkpoint_dir}: {type(pipe).__name__} is not a video pipeline (its __call__ takes "
                             f"no num_frames); use a text-to-video or image-to-video checkpoint")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return pipe.to(device)


def generate_video(pipe, prompt: str, *, num_frames: int, height: int, width: int, fps: float,
                   num_inference_steps: int = 25, guidance_scale: float = 7.5, seed: int = 0,
                   image: np.ndarray | None = None) -> GeneratedVideo:
    """Runs a loaded video pipeline.

    Args:
      pipe: from `load_video_pipeline`. prompt: the text ("" allowed only for image-to-video).
      num_frames, height, width: the video to make (pixels). fps: the model's native frame rate, recorded.
      num_inference_steps, guidance_scale: sampler settings (passed when the pipeline takes them).
      seed: seeds the pipeline's torch generator (same seed + inputs -> same video).
      image: [H0, W0, 3] uint8 RGB first frame for image-to-video pipelines.
    Returns:
      GeneratedVideo with frames [num_frames, height, width, 3] uint8.
    Raises:
      InputError: bad arguments, an image given to a text-only pipeline (or missing for an image one), or the
        pipeline returned another frame count or size than requested.
    """
    import torch
    from PIL import Image

    params = inspect.signature(pipe.__call__).parameters
    name = type(pipe).__name__
    if not isinstance(prompt, str) or (not prompt.strip() and image is None):
        raise InputError(f"prompt: expected a non-empty text, got {prompt!r}")
    for key, value in (("num_frames", num_frames), ("height", height), ("width", width)):
        if not isinstance(value, (int, np.integer)) or value < (2 if key == "num_frames" else 8):
            raise InputError(f"{key}: expected an integer >= {2 if key == 'num_frames' else 8}, got {value!r}")
    multiple = int(getattr(pipe, "vae_scale_factor", getattr(pipe, "vae_scale_factor_spatial", 1)) or 1)
    if height % multiple or width % multiple:
        raise InputError(f"height, width: {name} needs multiples of {multiple} px, got {width}x{height}")
    if not (np.isfinite(fps) and fps > 0):
        raise InputError(f"fps: expected a number > 0, got {fps!r}")
    kwargs = {"prompt": prompt, "num_frames": int(num_frames), "height": int(height), "width": int(width),
              "num_inference_steps": int(num_inference_steps), "guidance_scale": float(guidance_scale),
              "fps": round(float(fps)), "output_type": "np",
              "generator": torch.Generator(device="cpu").manual_seed(int(seed))}
    if image is not None:
        if "image" not in params:
            raise InputError(f"image: {name} is a text-to-video pipeline and takes no image")
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise InputError(f"image: expected [H, W, 3] uint8 RGB, got {list(image.shape)} {image.dtype}")
        kwargs["image"] = Image.fromarray(image)
    elif "image" in params and params["image"].default is inspect.Parameter.empty:
        raise InputError(f"image: {name} is an image-to-video pipeline; give the first frame as `image`")
    kwargs = {k: v for k, v in kwargs.items() if k in params}
    with torch.inference_mode():
        out = pipe(**kwargs)
    frames = _to_uint8(out.frames, name)
    if frames.shape != (num_frames, height, width, 3):
        raise InputError(f"{name} produced frames of shape {list(frames.shape)} for num_frames={num_frames}, "
                         f"{width}x{height}; this model needs another frame count or size (see its model card)")
    log.info("text-to-video: %s made %d frames at %dx%d from %r", name, num_frames, width, height, prompt)
    return GeneratedVideo(frames, float(fps), prompt, name, int(seed))


def _to_uint8(frames, name: str) -> np.ndarray:
    """Pipeline output (numpy [B, T, H, W, 3] or [T, H, W, 3] in [0, 1], or lists of PIL images) -> the first
    video as [T, H, W, 3] uint8."""
    if isinstance(frames, (list, tuple)):
        first = frames[0]
        frames = np.stack([np.asarray(f) for f in first]) if isinstance(first, (list, tuple)) else np.asarray(first)
    frames = np.asarray(frames)
    if frames.ndim == 5:
        frames = frames[0]
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise InputError(f"{name} returned frames of shape {list(frames.shape)}; expected [T, H, W, 3]")
    if frames.dtype == np.uint8:
        return frames
    return (np.clip(frames, 0.0, 1.0) * 255.0).round().astype(np.uint8)


def text_to_video(checkpoint_dir: str | Path, prompt: str, *, device: str = "auto", dtype: str = "float32",
                  **kwargs) -> GeneratedVideo:
    """`load_video_pipeline` then `generate_video(pipe, prompt, **kwargs)`."""
    return generate_video(load_video_pipeline(checkpoint_dir, device=device, dtype=dtype), prompt, **kwargs)
