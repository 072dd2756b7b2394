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

    def low_texture(self) -> Material:
        """The near-uniform version: the mean colour with faint large-scale shading."""
        mean = tuple(float(x) for x in (np.add(self.color_a, self.color_b) / 2))
        return dataclasses.replace(self, kind="flat", color_a=mean, color_b=mean)


def shade_material(m: Material, p: np.ndarray, footprint: np.ndarray | None = None) -> np.ndarray:
    """Albedo of material m at points p [N, 3] (metres, part frame) -> [N, 3] RGB in [0, 1].

    footprint: [N] metres of surface one pixel spans at each point (None: unlimited detail). Detail finer than
    two pixels fades out (frequency clamping, as mip-mapping does), so moving textures do not alias or shimmer.
    """
    fp = np.zeros(len(p)) if footprint is None else np.asarray(footprint, np.float64)
    a, b = np.asarray(m.color_a), np.asarray(m.color_b)
    if m.kind == "flat":
        return np.clip(a * (0.98 + 0.04 * fbm(p / 0.5, m.seed, 2, fp / 0.5))[:, None], 0, 1)
    if m.kind == "noise":
        v = _stretch(fbm(p / m.scale_m, m.seed, 5, fp / m.scale_m), 2.5)
    elif m.kind == "wood":
        v = _wood(p, m.scale_m, m.seed, m.grain_axis, fp)
    elif m.kind == "planks":
        return _planks(p, a, b, m.scale_m, m.seed, fp)
    elif m.kind == "stripes":
        band = (np.floor(p[:, 0] / m.scale_m) % 2) * 0.35
        s = 0.4 * m.scale_m
        v = _stretch(0.35 * band + 0.65 * fbm(p / s, m.seed, 5, fp / s), 2.0)
    else:
        raise ValueError(f"unknown material kind {m.kind!r}")
    return a + (b - a) * v[:, None]


def fbm(p: np.ndarray, seed: int, octaves: int, footprint: np.ndarray | float = 0.0) -> np.ndarray:
    """Fractal value noise: octaves of `value_noise` at doubling frequency and halving amplitude, each faded
    to its mean where its lattice spacing is under two `footprint`s (same units as p). [N, 3] -> [N] in [0, 1]."""
    total, amp, norm = np.zeros(len(p)), 1.0, 0.0
    for o in range(octaves):
        total += amp * (0.5 + _fade(2.0 ** -o, footprint) * (value_noise(p * (2.0 ** o), seed * 131 + o) - 0.5))
        norm += amp
        amp *= 0.5
    return total / norm


def _fade(period, footprint):
    """Weight of a feature of size `period`: 1 when it spans >= 2 footprints, 0 below 1, linear between."""
    with np.errstate(divide="ignore"):
        return np.clip(np.divide(period, footprint, dtype=np.float64) - 1.0, 0.0, 1.0)


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


def _wood(p: np.ndarray, scale: float, seed: int, axis: int, fp: np.ndarray) -> np.ndarray:
    """Grain lines running along `axis`: bands across it, warped by noise, plus fine fibres."""
    stretch = np.full(3, 1.0)
    stretch[axis] = 0.12  # features elongated along the grain
    q = p / scale * stretch
    fq = fp / scale  # the footprint in units of q across the grain
    across = np.delete(p, axis, axis=1) / scale
    warp = fbm(q * 1.5, seed, 3, fq * 1.5)
    period = scale / np.hypot(4.0, 2.5)
    bands = 0.5 + 0.5 * _fade(period, fp) * np.sin(2 * np.pi * (4.0 * across[:, 0] + 2.5 * across[:, 1] + 3.0 * warp))
    fibres = fbm(q * 12.0, seed + 7, 3, fq * 12.0)
    knots = fbm(p / scale * 2.0, seed + 13, 4, fq * 2.0)
    return _stretch(0.4 * bands ** 2 + 0.3 * fibres + 0.3 * knots, 1.7)


def _planks(p: np.ndarray, a: np.ndarray, b: np.ndarray, width: float, seed: int, fp: np.ndarray) -> np.ndarray:
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
    v = _wood(shifted, 0.5 * width, seed + 2, 0, fp)
    color = a + (b - a) * (0.6 * v + 0.4 * tint)[:, None]
    seam = np.minimum(np.abs(p[:, 1] / width - np.round(p[:, 1] / width)) * width,
                      np.abs(xs / length - np.round(xs / length)) * length)
    # A 8 mm seam, widened to one footprint and lightened in proportion where pixels are larger.
    half = np.maximum(0.004, 0.5 * fp)
    dark = np.where(seam < half, 0.65 * 0.004 / half, 0.0)
    return color * (1.0 - dark)[:, None]
