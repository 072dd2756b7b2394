"""Triangle meshes built from axis-aligned boxes and rectangles, with a material index per face."""

from __future__ import annotations

import dataclasses

import numpy as np

# The 12 triangles of a box whose corners are indexed by bits (x, y, z) -> x + 2y + 4z.
_BOX_FACES = np.array([
    [0, 2, 6], [0, 6, 4],  # x = min
    [1, 5, 7], [1, 7, 3],  # x = max
    [0, 4, 5], [0, 5, 1],  # y = min
    [2, 3, 7], [2, 7, 6],  # y = max
    [0, 1, 3], [0, 3, 2],  # z = min
    [4, 6, 7], [4, 7, 5],  # z = max
])


@dataclasses.dataclass(frozen=True)
class Mesh:
    """A triangle soup with materials. vertices: [V, 3] metres; faces: [F, 3] int32; face_material: [F] int32."""

    vertices: np.ndarray
    faces: np.ndarray
    face_material: np.ndarray

    @property
    def num_faces(self) -> int:
        return len(self.faces)


def box(lo, hi, material: int) -> Mesh:
    """The closed axis-aligned box [lo, hi] (each [3], metres)."""
    lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
    if np.any(hi <= lo):
        raise ValueError(f"box: every hi must exceed lo, got lo={lo.tolist()}, hi={hi.tolist()}")
    bits = (np.arange(8)[:, None] >> np.arange(3)) & 1
    return Mesh(np.where(bits, hi, lo), _BOX_FACES.astype(np.int32), np.full(12, material, np.int32))


def rect(corner, edge_u, edge_v, material: int) -> Mesh:
    """The parallelogram corner + a*edge_u + b*edge_v, a, b in [0, 1] (two triangles)."""
    c, u, v = (np.asarray(a, np.float64) for a in (corner, edge_u, edge_v))
    verts = np.stack([c, c + u, c + u + v, c + v])
    return Mesh(verts, np.array([[0, 1, 2], [0, 2, 3]], np.int32), np.full(2, material, np.int32))


def merge(meshes) -> Mesh:
    """Concatenates meshes into one (face indices offset accordingly)."""
    meshes = list(meshes)
    offsets = np.cumsum([0] + [len(m.vertices) for m in meshes[:-1]])
    return Mesh(
        np.concatenate([m.vertices for m in meshes]),
        np.concatenate([m.faces + o for m, o in zip(meshes, offsets)]).astype(np.int32),
        np.concatenate([m.face_material for m in meshes]).astype(np.int32),
    )
