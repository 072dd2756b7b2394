"""A z-buffer triangle rasterizer in numpy, independent of the Gaussian rasterizer the optimizer uses.

Conventions are the bundle's (arthoi_jax.io.bundle): OpenCV camera, pixel (row i, column j) is sampled at its
centre (j + 0.5, i + 0.5). Triangles are two-sided and clipped against the plane z = near, so meshes may extend
behind the camera (a floor under it). Barycentric weights are perspective-correct: they interpolate any attribute
that is affine on the 3D triangle (a part-frame point, for texture) exactly.

Work is vectorized over (triangle, pixel) pairs taken from each triangle's bounding box, in chunks of bounded size;
ties in depth go to the lowest face index, so the output is deterministic.
"""

from __future__ import annotations

import dataclasses

import numpy as np

_CHUNK_PAIRS = 1 << 21  # (triangle, pixel) candidates handled at once; bounds memory to ~100 MB.
_INSIDE_EPS = -1e-9  # barycentric slack so pixels on a shared edge are never dropped by rounding.


@dataclasses.dataclass(frozen=True)
class Fragments:
    """What each pixel sees. face: [H, W] int64 face index, -1 where no surface; bary: [H, W, 3] float64
    perspective-correct weights of that face's vertices; depth: [H, W] float64 camera z in metres, 0 where none."""

    face: np.ndarray
    bary: np.ndarray
    depth: np.ndarray


@dataclasses.dataclass(frozen=True)
class _Triangles:
    """Near-clipped triangles in the image: xy [F', 3, 2] pixels, z [F', 3] metres, source face [F'], and
    weights [F', 3, 3] expressing each clipped vertex in the source face's vertices."""

    xy: np.ndarray
    z: np.ndarray
    source: np.ndarray
    weights: np.ndarray


def rasterize(vertices: np.ndarray, faces: np.ndarray, K: np.ndarray, height: int, width: int,
              near: float = 0.01) -> Fragments:
    """Z-buffer rasterization at pixel centres.

    Args:
      vertices: [V, 3] metres, camera frame (OpenCV axes).
      faces: [F, 3] vertex indices.
      K: [3, 3] intrinsics, pixels.
      near: metres; surfaces closer than this are clipped away.
    """
    tris = _prepare(vertices, faces, K, near)
    zbuf = np.full(height * width, np.inf)
    face = np.full(height * width, -1, np.int64)
    bary = np.zeros((height * width, 3))
    for tri, pix in _pixel_pairs(tris, height, width):
        xy = np.stack([pix % width + 0.5, pix // width + 0.5], -1)
        inside, lam, z = _hit(tris, tri, xy)
        tri, pix, lam, z = tri[inside], pix[inside], lam[inside], z[inside]
        order = np.lexsort((z, pix))  # per pixel, nearest first; stable, so lower faces win ties
        pix_sorted = pix[order]
        first = order[np.r_[True, pix_sorted[1:] != pix_sorted[:-1]]]
        win = first[z[first] < zbuf[pix[first]]]
        p = pix[win]
        zbuf[p] = z[win]
        face[p] = tris.source[tri[win]]
        bary[p] = np.einsum("nk,nkj->nj", _perspective(lam[win], tris.z[tri[win]], z[win]), tris.weights[tri[win]])
    hit = face >= 0
    depth = np.where(hit, zbuf, 0.0)
    return Fragments(face.reshape(height, width), bary.reshape(height, width, 3), depth.reshape(height, width))


def nearest_depth(vertices: np.ndarray, faces: np.ndarray, K: np.ndarray, points_xy: np.ndarray, height: int,
                  width: int, near: float = 0.01) -> np.ndarray:
    """Ray casting: camera z of the nearest surface through each image point.

    Args:
      vertices, faces, K, near: as for `rasterize`.
      points_xy: [M, 2] pixels (x, y), anywhere; points outside the image get inf.
    Returns:
      [M] metres, inf where the ray meets no surface.
    """
    points_xy = np.asarray(points_xy, np.float64)
    out = np.full(len(points_xy), np.inf)
    col, row = np.floor(points_xy[:, 0]), np.floor(points_xy[:, 1])
    ok = np.isfinite(points_xy).all(1) & (col >= 0) & (col < width) & (row >= 0) & (row < height)
    if not ok.any():
        return out
    q_index = np.nonzero(ok)[0]
    q_pix = (row[ok] * width + col[ok]).astype(np.int64)
    order = np.argsort(q_pix, kind="stable")
    q_index, q_pix = q_index[order], q_pix[order]
    count = np.bincount(q_pix, minlength=height * width)
    start = np.concatenate([[0], np.cumsum(count)[:-1]])
    tris = _prepare(vertices, faces, K, near)
    for tri, pix in _pixel_pairs(tris, height, width):
        n = count[pix]
        tri, pix, n = tri[n > 0], pix[n > 0], n[n > 0]
        if not len(tri):
            continue
        k = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
        q = q_index[np.repeat(start[pix], n) + k]
        tri = np.repeat(tri, n)
        inside, _, z = _hit(tris, tri, points_xy[q])
        np.minimum.at(out, q[inside], z[inside])
    return out


def _prepare(vertices, faces, K, near) -> _Triangles:
    """Clips the triangles against z = near and projects them."""
    v = np.asarray(vertices, np.float64)
    tri = v[np.asarray(faces)]  # [F, 3, 3]
    source = np.arange(len(tri))
    inside = tri[..., 2] >= near
    n_in = inside.sum(1)
    eye = np.eye(3)
    parts_p, parts_w, parts_s = [tri[n_in == 3]], [np.broadcast_to(eye, ((n_in == 3).sum(), 3, 3))], [source[n_in == 3]]

    def cut(p, w, a, b):  # the point on edge a-b at z = near, and its weights
        s = ((near - p[:, a, 2]) / (p[:, b, 2] - p[:, a, 2]))[:, None]
        return p[:, a] + s * (p[:, b] - p[:, a]), w[:, a] + s * (w[:, b] - w[:, a])

    for n_keep in (1, 2):
        sel = np.nonzero(n_in == n_keep)[0]
        if not len(sel):
            continue
        # Roll each triangle so that the vertices kept come first: A (, B) inside, the rest outside.
        lead = np.argmax(inside[sel], 1) if n_keep == 1 else (np.argmin(inside[sel], 1) + 1) % 3
        order = (lead[:, None] + np.arange(3)) % 3
        p = np.take_along_axis(tri[sel], order[..., None], 1)
        w = eye[order]
        if n_keep == 1:
            ab, wab = cut(p, w, 0, 1)
            ac, wac = cut(p, w, 0, 2)
            parts_p.append(np.stack([p[:, 0], ab, ac], 1))
            parts_w.append(np.stack([w[:, 0], wab, wac], 1))
            parts_s.append(sel)
        else:
            bc, wbc = cut(p, w, 1, 2)
            ac, wac = cut(p, w, 0, 2)
            parts_p += [np.stack([p[:, 0], p[:, 1], bc], 1), np.stack([p[:, 0], bc, ac], 1)]
            parts_w += [np.stack([w[:, 0], w[:, 1], wbc], 1), np.stack([w[:, 0], wbc, wac], 1)]
            parts_s += [sel, sel]
    p = np.concatenate(parts_p)
    z = p[..., 2]
    xy = p[..., :2] / z[..., None] * np.array([K[0, 0], K[1, 1]]) + np.array([K[0, 2], K[1, 2]])
    return _Triangles(xy, z, np.concatenate(parts_s), np.concatenate(parts_w))


def _pixel_pairs(tris: _Triangles, height: int, width: int):
    """Yields chunks of (triangle index, flat pixel index) for every pixel centre in each triangle's box."""
    lo, hi = tris.xy.min(1), tris.xy.max(1)
    # Pixel j's centre j + 0.5 lies in [lo, hi] for j in [ceil(lo - 0.5), floor(hi - 0.5)].
    c0 = np.clip(np.ceil(lo[:, 0] - 0.5), 0, width).astype(np.int64)
    c1 = np.clip(np.floor(hi[:, 0] - 0.5), -1, width - 1).astype(np.int64)
    r0 = np.clip(np.ceil(lo[:, 1] - 0.5), 0, height).astype(np.int64)
    r1 = np.clip(np.floor(hi[:, 1] - 0.5), -1, height - 1).astype(np.int64)
    nx, ny = np.maximum(c1 - c0 + 1, 0), np.maximum(r1 - r0 + 1, 0)
    e1, e2 = tris.xy[:, 1] - tris.xy[:, 0], tris.xy[:, 2] - tris.xy[:, 0]
    area = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    count = np.where(np.abs(area) > 1e-12, nx * ny, 0)
    ids = np.nonzero(count)[0]
    chunk_of = np.cumsum(count[ids]) // _CHUNK_PAIRS
    for c in np.unique(chunk_of):
        sel = ids[chunk_of == c]
        n = count[sel]
        k = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
        tri = np.repeat(sel, n)
        col = c0[tri] + k % nx[tri]
        row = r0[tri] + k // nx[tri]
        yield tri, row * width + col


def _hit(tris: _Triangles, tri: np.ndarray, xy: np.ndarray):
    """Screen-space barycentrics of points xy [n, 2] in triangles tri [n]: (inside [n], lambda [n, 3], z [n])."""
    p = tris.xy[tri]
    e1, e2, d = p[:, 1] - p[:, 0], p[:, 2] - p[:, 0], xy - p[:, 0]
    area = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    l1 = (d[:, 0] * e2[:, 1] - d[:, 1] * e2[:, 0]) / area
    l2 = (e1[:, 0] * d[:, 1] - e1[:, 1] * d[:, 0]) / area
    lam = np.stack([1 - l1 - l2, l1, l2], -1)
    inside = lam.min(1) >= _INSIDE_EPS
    with np.errstate(divide="ignore"):  # only outside points can reach 1 / 0
        z = 1.0 / np.einsum("nk,nk->n", lam, 1.0 / tris.z[tri])
    return inside, lam, z


def _perspective(lam: np.ndarray, z_vertices: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Screen-space barycentrics [n, 3] -> weights that interpolate 3D-affine attributes exactly."""
    return lam / z_vertices * z[:, None]
