"""Size buckets: scenes of different Gaussian, track and binding-pair counts padded to a few shared sizes so that
one compiled program serves them all. Padding changes nothing: padded Gaussians are invalid (culled by the
rasterizer, zero weight for every part), padded tracks belong to no moving part (zero weight in the masked mean of
L_tr), padded pairs are invalid (masked out of L_a); every Stage I loss is a masked mean, so its value and
gradient are those of the unpadded scene.

Not padded (part of the bucket key instead): the render size (static image shape), the number of moving parts
(L_s is a plain mean over parts) and the Stage I / render configs (static arguments; an ablation is its own
bucket). Frame counts need no padding: frames are fed one at a time, a scene past its last frame sits out.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math

import numpy as np

from arthoi_jax.config import RenderConfig, Stage1Config
from arthoi_jax.errors import InputError
from arthoi_jax.stage1 import PAD, Stage1Scene

# Values of padded Gaussians, as arthoi_jax.object_gaussians.pad_gaussians writes them.
_GAUSSIAN_FILL = {"means": 0.0, "quats": 0.0, "log_scales": -10.0, "opacity_logits": -20.0, "colors": 0.0}


def bucket_size(n: int, buckets: tuple[int, ...] = ()) -> int:
    """The padded size of a count n >= 0: the smallest of `buckets` >= n; without buckets (or past the largest),
    PAD * 2^k (256, 512, 1024, ...)."""
    fits = [b for b in sorted(buckets) if b >= n]
    if fits:
        return fits[0]
    return PAD * 2 ** max(0, math.ceil(math.log2(max(n, 1) / PAD)))


@dataclasses.dataclass(frozen=True)
class BucketKey:
    """What scenes must share to run in one program (hashable; also names the checkpoint folder)."""

    stage1: Stage1Config
    render: RenderConfig
    render_hw: tuple[int, int]
    num_parts: int
    num_gaussians: int  # padded
    num_tracks: int  # padded
    num_pairs: int  # padded

    def label(self) -> str:
        """e.g. 64x48_P1_G512_M512_E256_cfg3f2a1c (cfg: a digest of the Stage I and render configs)."""
        h, w = self.render_hw
        cfg = hashlib.sha1(repr((self.stage1, self.render)).encode()).hexdigest()[:6]
        return f"{w}x{h}_P{self.num_parts}_G{self.num_gaussians}_M{self.num_tracks}_E{self.num_pairs}_cfg{cfg}"


def _pad_rows(x, n: int, fill) -> np.ndarray:
    x = np.asarray(x)
    if x.shape[0] > n:
        raise InputError(f"padding: {x.shape[0]} rows do not fit in a bucket of {n}")
    out = np.full((n,) + x.shape[1:], fill, x.dtype)
    out[: x.shape[0]] = x
    return out


def pad_scene(scene: Stage1Scene, num_gaussians: int, num_tracks: int, num_pairs: int) -> Stage1Scene:
    """Pads a Stage1Scene (arthoi_jax.stage1.build_scene) to [num_gaussians] Gaussians, [num_tracks] tracks and
    [num_pairs] binding pairs; the result holds numpy arrays. Raises InputError when a count does not fit."""
    g = scene.gaussians
    G = num_gaussians
    gaussians = g.replace(**{k: _pad_rows(getattr(g, k), G, v) for k, v in _GAUSSIAN_FILL.items()})
    gaussians.quats[np.asarray(g.quats).shape[0]:, 0] = 1.0
    weights = _pad_rows(scene.weights, G, 0.0)
    weights[np.asarray(scene.weights).shape[0]:, 0] = 1.0  # static, as stage1.build_scene pads
    return scene.replace(
        gaussians=gaussians, valid=_pad_rows(scene.valid, G, False), weights=weights,
        part_of=_pad_rows(scene.part_of, G, 0), track_points=_pad_rows(scene.track_points, num_tracks, 0.0),
        track_part=_pad_rows(scene.track_part, num_tracks, 0), pairs=_pad_rows(scene.pairs, num_pairs, 0),
        pair_valid=_pad_rows(scene.pair_valid, num_pairs, False),
        **{k: np.asarray(getattr(scene, k)) for k in ("binding_radius", "K", "K_render", "joint_type", "joint_axis",
                                                       "joint_pivot")})
