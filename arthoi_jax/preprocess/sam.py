"""Segment Anything (SAM v1, `segment_anything` package) behind one call: image + prompts -> boolean mask.

Coordinates: our points are continuous pixels (pixel centres at +0.5) in the original image. SAM resizes the
image so its long side is `img_size` (1024 for the released models) and its prompt encoder adds 0.5 to every
point ("shift to center of pixel"), i.e. it expects integer-centred coordinates in the resized image. So a point
(x, y) is given to SAM as (x * sx - 0.5, y * sy - 0.5), with (sx, sy) the resize factors; box corners likewise.
SamPredictor's own `apply_coords` is bypassed because it scales integer-centred coordinates as if continuous.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import zipfile
from functools import partial
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from segment_anything import SamPredictor, sam_model_registry
from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

from arthoi_jax.errors import InputError, ModelFileError
from arthoi_jax.preprocess.lk_tracker import check_points

log = logging.getLogger("arthoi_jax")

MODEL_TYPES = ("vit_h", "vit_l", "vit_b")
# Width of the image encoder's patch embedding, which tells the model type of a checkpoint.
_EMBED_DIM_TO_TYPE = {1280: "vit_h", 1024: "vit_l", 768: "vit_b"}


def pick_device(device: str = "auto") -> torch.device:
    """'auto' -> CUDA when available, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def load_checkpoint(path: str | Path, what: str) -> dict:
    """torch.load of a local checkpoint (weights only) with a ModelFileError naming the file on any failure."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: {what} checkpoint not found; see third_party/README.md for where to get it")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as e:
        raise ModelFileError(f"{path}: not a readable {what} checkpoint ({type(e).__name__}: {e}); "
                             f"the download may be truncated") from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict):
        raise ModelFileError(f"{path}: expected a {what} state dict, got {type(state).__name__}")
    return state


class SamAdapter:
    """SAM with a one-image embedding cache: repeated prompts on the same image encode it once."""

    def __init__(self, model: Sam, device: str | torch.device = "auto"):
        self.model = model.to(pick_device(device) if isinstance(device, str) else device).eval()
        self.predictor = SamPredictor(self.model)
        self._image_key: Optional[bytes] = None

    @classmethod
    def from_checkpoint(cls, path: str | Path, model_type: str = "vit_h", device: str = "auto") -> "SamAdapter":
        """Builds SAM of `model_type` ("vit_h" | "vit_l" | "vit_b") and loads the official checkpoint at `path`.

        Raises:
          ModelFileError: the file is missing, unreadable, or holds another model type's weights.
        """
        if model_type not in MODEL_TYPES:
            raise ModelFileError(f"sam model type {model_type!r} is not one of {MODEL_TYPES}")
        state = load_checkpoint(path, "SAM")
        model = sam_model_registry[model_type]()
        try:
            model.load_state_dict(state)
        except RuntimeError as e:
            width = state.get("image_encoder.patch_embed.proj.weight")
            actual = _EMBED_DIM_TO_TYPE.get(int(width.shape[0])) if isinstance(width, torch.Tensor) else None
            hint = f"; the file holds {actual} weights: set preprocess.sam_model_type: {actual}" if actual else ""
            raise ModelFileError(f"{path}: weights do not fit SAM {model_type}{hint} "
                                 f"({str(e).splitlines()[0]})") from None
        return cls(model, device)

    def predict(self, image: np.ndarray, positive_xy: np.ndarray, negative_xy: Optional[np.ndarray] = None,
                box_xyxy: Optional[np.ndarray] = None) -> np.ndarray:
        """Mask of the region the prompts select.

        Args:
          image: [H, W, 3] uint8 RGB.
          positive_xy: [K, 2] (x, y) pixels on the region; negative_xy: [L, 2] pixels off it (may be empty).
          box_xyxy: [4] (x0, y0, x1, y1) pixels around the region, or None.
        Returns:
          [H, W] bool. With a single positive point and nothing else, SAM's three candidate masks are scored
          and the best kept (SAM's advice for ambiguous prompts); otherwise one mask is predicted.
        Raises:
          InputError: bad image, no prompt at all, or a prompt outside the image.
        """
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise InputError(f"image: expected [H, W, 3] uint8 RGB, got {list(image.shape)} {image.dtype}")
        H, W = image.shape[:2]
        pos = check_points(np.zeros((0, 2)) if positive_xy is None else positive_xy, H, W, "positive_xy")
        neg = check_points(np.zeros((0, 2)) if negative_xy is None else negative_xy, H, W, "negative_xy")
        box = None if box_xyxy is None else self._check_box(box_xyxy, H, W)
        if len(pos) == 0 and box is None:
            raise InputError("SAM prompt is empty: give at least one positive point or a box "
                             f"(got {len(neg)} negative points only)")
        self._set_image(image)
        sx, sy = self._scale()
        dev = self.model.device
        coords = labels = box_t = None
        if len(pos) + len(neg):
            xy = np.concatenate([pos, neg]) * [sx, sy] - 0.5
            coords = torch.as_tensor(xy, dtype=torch.float32, device=dev)[None]
            labels = torch.as_tensor([1] * len(pos) + [0] * len(neg), dtype=torch.int, device=dev)[None]
        if box is not None:
            box_t = torch.as_tensor(box * [sx, sy, sx, sy] - 0.5, dtype=torch.float32, device=dev)[None]
        multimask = len(pos) == 1 and len(neg) == 0 and box is None
        masks, scores, _ = self.predictor.predict_torch(coords, labels, box_t, multimask_output=multimask)
        mask = masks[0, int(torch.argmax(scores[0]))].cpu().numpy().astype(bool)
        if not mask.any():
            log.warning("SAM returned an empty mask for %d positive / %d negative points%s", len(pos), len(neg),
                        " and a box" if box is not None else "")
        return mask

    def _set_image(self, image: np.ndarray) -> None:
        key = hashlib.blake2b(image.tobytes(), digest_size=16, person=str(image.shape).encode()[:16]).digest()
        if key != self._image_key:
            self.predictor.set_image(image, image_format="RGB")
            self._image_key = key

    def _scale(self) -> tuple[float, float]:
        (h, w), (nh, nw) = self.predictor.original_size, self.predictor.input_size
        return nw / w, nh / h

    @staticmethod
    def _check_box(box, H: int, W: int) -> np.ndarray:
        box = np.asarray(box, dtype=np.float64).reshape(-1)
        if box.shape != (4,):
            raise InputError(f"box_xyxy: expected 4 numbers (x0, y0, x1, y1), got {box.tolist()}")
        check_points(box.reshape(2, 2), H, W, "box_xyxy")
        if not (box[0] < box[2] and box[1] < box[3]):
            raise InputError(f"box_xyxy: expected x0 < x1 and y0 < y1, got {box.tolist()}")
        return box


def tiny_sam(img_size: int = 64, embed_dim: int = 32, depth: int = 1, seed: int = 0) -> Sam:
    """A randomly initialised SAM with the released architecture at toy size, for tests and smoke runs.

    Its masks carry no meaning; shapes, prompt handling and coordinates go through the real code paths.
    """
    torch.manual_seed(seed)
    patch = 16
    prompt_dim = 32
    model = Sam(
        image_encoder=ImageEncoderViT(
            img_size=img_size, patch_size=patch, embed_dim=embed_dim, depth=depth, num_heads=2, mlp_ratio=2,
            out_chans=prompt_dim, qkv_bias=True, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            use_rel_pos=True, window_size=0, global_attn_indexes=tuple(range(depth)),
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=prompt_dim, image_embedding_size=(img_size // patch, img_size // patch),
            input_image_size=(img_size, img_size), mask_in_chans=4,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=1, embedding_dim=prompt_dim, mlp_dim=64, num_heads=2),
            transformer_dim=prompt_dim, iou_head_depth=2, iou_head_hidden_dim=32,
        ),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
    )
    return model.eval()
