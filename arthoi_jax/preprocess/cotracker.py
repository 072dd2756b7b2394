"""CoTracker3 (offline) point tracking from a local checkpoint, without torch.hub.

The `cotracker` package is not on the package index, so it is optional: `CoTrackerAdapter.from_checkpoint`
raises MissingDependencyError naming what to install when it is absent (third_party/README.md).

Coordinates: CoTracker's predictor takes (t, x, y) queries with pixel centres at integers and rescales them
with align_corners=True geometry; ours have centres at +0.5. Frames are shrunk to the model's working
resolution (384x512 for CoTracker3) before they become float tensors, which bounds memory (co-tracker #38);
queries and tracks are converted between the two resolutions here and nowhere else.
Short videos: the offline model works on windows of `window_len` frames and returned empty tracks for shorter
clips in earlier releases (co-tracker #40, #45), so a short video is padded with copies of its last frame and
the padding is cropped from the result.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from arthoi_jax.errors import MissingDependencyError, ModelFileError
from arthoi_jax.preprocess.lk_tracker import check_frames, check_points
from arthoi_jax.preprocess.sam import load_checkpoint, pick_device

INSTALL_HINT = ("install the `cotracker` package from a clone of the facebookresearch/co-tracker repository "
                "(`pip install -e .` in it; it is not on the package index) and put the CoTracker3 offline "
                "checkpoint `scaled_offline.pth` where preprocess.cotracker_checkpoint points; "
                "see third_party/README.md")


def _import_predictor():
    try:
        from cotracker.predictor import CoTrackerPredictor
    except ImportError as e:
        raise MissingDependencyError(f"CoTracker is not installed ({e}); {INSTALL_HINT}") from None
    return CoTrackerPredictor


class CoTrackerAdapter:
    """Wraps a CoTracker predictor: a module called as `predictor(video [1, T, 3, h, w] float 0..255,
    queries=[1, N, 3] (t, x, y)) -> (tracks [1, T, N, 2], visibility [1, T, N] bool)`, with `interp_shape`
    (h, w) its working resolution and `model.window_len` its window."""

    def __init__(self, predictor: torch.nn.Module, device: str = "auto"):
        self.device = pick_device(device)
        self.predictor = predictor.to(self.device).eval()

    @classmethod
    def from_checkpoint(cls, path, window_len: int = 60, device: str = "auto") -> "CoTrackerAdapter":
        """CoTracker3 offline predictor with the weights in `path` (e.g. `scaled_offline.pth`).

        Raises:
          MissingDependencyError: the `cotracker` package is not installed.
          ModelFileError: the checkpoint is missing, unreadable, or not CoTracker3-offline weights.
        """
        predictor_cls = _import_predictor()
        state = load_checkpoint(path, "CoTracker3")
        predictor = predictor_cls(checkpoint=None, offline=True, v2=False, window_len=window_len)
        try:
            predictor.model.load_state_dict(state)
        except RuntimeError as e:
            raise ModelFileError(f"{path}: weights do not fit the CoTracker3 offline model with window_len "
                                 f"{window_len} ({str(e).splitlines()[0]})") from None
        return cls(predictor, device)

    @torch.no_grad()
    def track(self, frames: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Tracks frame-0 points. frames: [T, H, W, 3] uint8 RGB (T >= 2); queries: [N, 2] (x, y) pixels.

        Returns tracks [T, N, 2] float32 (x, y) pixels and visibility [T, N] bool, in our pixel convention.
        Raises InputError for malformed frames or a query outside the image.
        """
        check_frames(frames)
        T, H, W, _ = frames.shape
        q = check_points(queries, H, W, "queries")
        h, w = (int(s) for s in self.predictor.interp_shape)
        small = np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in frames])
        window = int(getattr(self.predictor.model, "window_len", T))
        if T < window:
            small = np.concatenate([small, np.repeat(small[-1:], window - T, axis=0)])
        video = torch.from_numpy(small).permute(0, 3, 1, 2)[None].float().to(self.device)
        sx, sy = w / W, h / H
        xy = np.stack([q[:, 0] * sx, q[:, 1] * sy], axis=1) - 0.5
        qt = torch.from_numpy(np.concatenate([np.zeros((len(q), 1)), xy], axis=1)).float()[None].to(self.device)
        tracks, vis = self.predictor(video, queries=qt)
        tracks = tracks[0, :T].cpu().numpy().astype(np.float64) + 0.5
        tracks = tracks / [sx, sy]
        return tracks.astype(np.float32), vis[0, :T].cpu().numpy().astype(bool)
