"""Procedural solid textures, evaluated at 3D points in a part's own frame so that they move with the part.

Every pattern is a deterministic function of the point and an integer seed (an integer hash on a lattice, no
random state), so a seed reproduces a scene bit for bit. Features span ~1 cm to ~20 cm: at the default image
size (1 px ~ 1 cm at 2.5 m) that gives a tracker corners at every scale.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np

Kind = Literal["noise", "wood", "planks", "stripes", "flat"]


@dataclasses.dataclass(frozen=True)
class Material:
    """A surface's look.

    kind: noise (mottled paint, metal), wood (grain along `grain_axis`), planks (a floor of wooden boards in the
      x-y plane), stripes (wallpaper: vertical bands along x), flat (near-uniform: the low-texture variant).
    color_a, color_b: RGB in [0, 1], the two ends of the pattern.
    scale_m: size of the pattern's largest feature, metres.
    """

    kind: Kind
    color_a: tuple[float, float, float]
    color_b: tuple[float, float, float]
    scale_m: float
    seed: int
    grain_axis: int = 2

    def low_texture(self) -> "Material":
        """The near-uniform version: the mean colour with faint large-scale shading."""
        mean = tuple(float(x) for x in (np.add(self.color_a, self.color_b) / 2))
        return dataclasses.replace(self, kind="flat", color_a=mean, color_b=mean)


def shade_material(m: Material, p: np.ndarray) -> np.ndarray:
    """Albedo of material m at points p [N, 3] (metres, part frame) -> [N, 3] RGB in [0, 1]."""
    a, b = np.asarray(m.color_a), np.asarray(m.color_b)
    if m.kind == "flat":
        return np.clip(a * (0.98 + 0.04 * fbm(p / 0.5, m.seed, 2))[:, None], 0, 1)
    if m.kind == "noise":
        v = _stretch(fbm(p / m.scale_m, m.seed, 5), 2.5)
    elif m.kind == "wood":
        v = _wood(p, m.scale_m, m.seed, m.grain_axis)
    elif m.kind == "planks":
        return _planks(p, a, b, m.scale_m, m.seed)
    elif m.kind == "stripes":
        band = (np.floor(p[:, 0] / m.scale_m) % 2) * 0.35
        v = _stretch(0.35 * band + 0.65 * fbm(p / (0.4 * m.scale_m), m.seed, 5), 2.0)
    else:
        raise ValueError(f"unknown material kind {m.kind!r}")
    return a + (b - a) * v[:, None]


def fbm(p: np.ndarray, seed: int, octaves: int) -> np.ndarray:
    """Fractal value noise: octaves of `value_noise` at doubling frequency, halving amplitude. [N, 3] -> [N] in [0, 1]."""
    total, amp, norm = np.zeros(len(p)), 1.0, 0.0
    for o in range(octaves):
        total += amp * value_noise(p * (2.0 ** o), seed * 131 + o)
        norm += amp
        amp *= 0.5
    return total / norm


def value_noise(p: np.ndarray, seed: int) -> np.ndarray:
    """Smooth noise with unit lattice spacing: random values at integer points, smoothstep-interpolated. -> [N] in [0, 1]."""
    cell = np.floor(p)
    f = p - cell
    u = f * f * (3 - 2 * f)
    cell = cell.astype(np.int64)
    out = np.zeros(len(p))
    for corner in range(8):
        d = (corner >> np.arange(3)) & 1
        w = np.prod(np.where(d, u, 1 - u), axis=1)
        out += w * hash01(cell + d, seed)
    return out


def hash01(ijk: np.ndarray, seed: int) -> np.ndarray:
    """A well-mixed hash of integer lattice points [N, 3] (and the seed) -> [N] floats in [0, 1)."""
    with np.errstate(over="ignore"):
        h = ijk.astype(np.uint64) * np.array([0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9], np.uint64)
        x = h[:, 0] ^ h[:, 1] ^ h[:, 2] ^ np.uint64((seed * 0x27D4EB2F165667C5) & 0xFFFFFFFFFFFFFFFF)
        x ^= x >> np.uint64(33)
        x *= np.uint64(0xFF51AFD7ED558CCD)
        x ^= x >> np.uint64(33)
        x *= np.uint64(0xC4CEB9FE1A85EC53)
        x ^= x >> np.uint64(33)
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def _stretch(v: np.ndarray, gain: float) -> np.ndarray:
    """fbm clusters around 0.5: spread it for contrast."""
    return np.clip(0.5 + (v - 0.5) * gain, 0.0, 1.0)


def _wood(p: np.ndarray, scale: float, seed: int, axis: int) -> np.ndarray:
    """Grain lines running along `axis`: bands across it, warped by noise, plus fine fibres."""
    stretch = np.full(3, 1.0)
    stretch[axis] = 0.12  # features elongated along the grain
    q = p / scale * stretch
    across = np.delete(p, axis, axis=1) / scale
    warp = fbm(q * 1.5, seed, 3)
    bands = 0.5 + 0.5 * np.sin(2 * np.pi * (4.0 * across[:, 0] + 2.5 * across[:, 1] + 3.0 * warp))
    fibres = fbm(q * 12.0, seed + 7, 3)
    knots = fbm(p / scale * 2.0, seed + 13, 4)
    return _stretch(0.45 * bands ** 2 + 0.35 * fibres + 0.2 * knots, 1.6)


def _planks(p: np.ndarray, a: np.ndarray, b: np.ndarray, width: float, seed: int) -> np.ndarray:
    """Boards of `width` across y and 6 widths long along x, staggered, each with its own tint, dark seams."""
    length = 6.0 * width
    row = np.floor(p[:, 1] / width).astype(np.int64)
    zeros = np.zeros_like(row)
    offset = hash01(np.stack([row, zeros, zeros], 1), seed) * length
    xs = p[:, 0] + offset
    col = np.floor(xs / length).astype(np.int64)
    tint = hash01(np.stack([row, col, zeros], 1), seed + 1)
    # Each board gets its own stretch of grain by shifting the point with its id.
    shifted = p + np.stack([tint * 17.0, tint * 5.0, tint * 11.0], 1)
    v = _wood(shifted, 0.5 * width, seed + 2, 0)
    color = a + (b - a) * (0.6 * v + 0.4 * tint)[:, None]
    seam = np.minimum(np.abs(p[:, 1] / width - np.round(p[:, 1] / width)) * width,
                      np.abs(xs / length - np.round(xs / length)) * length)
    return np.where((seam < 0.004)[:, None], 0.35 * color, color)
