"""Human Gaussians: canonical Gaussians on the body surface, carried by the posed mesh (paper Sec. 3.2, App.).

Each Gaussian sits at fixed barycentric coordinates of one mesh face. Posing moves it with the face: its mean is
the barycentric interpolation of the posed face's vertices and its orientation is the face frame
(e1 along the first edge, n the face normal, e2 = n x e1), so everything is differentiable with respect to the
body parameters through the vertices. Scales are given in that frame (two in-plane, one along the normal).
"""

from __future__ import annotations

import jax.numpy as jnp
import jaxlie
import numpy as np
from flax import struct

from arthoi_jax.body.model import BodyModel, BodyParams, forward
from arthoi_jax.render.types import Gaussians

SKIN_RGB = (0.80, 0.62, 0.52)


@struct.dataclass
class HumanGaussianTemplate:
    """N Gaussians bound to mesh faces."""

    face_idx: jnp.ndarray  # [N] int32 face each Gaussian lives on
    bary: jnp.ndarray  # [N, 3] barycentric coordinates on that face
    log_scales: jnp.ndarray  # [N, 3] log metres along (e1, e2, normal) of the face frame
    opacity_logits: jnp.ndarray  # [N] pre-sigmoid
    colors: jnp.ndarray  # [N, 3] RGB in [0, 1]


def sample_surface_gaussians(
    vertices: np.ndarray,
    faces: np.ndarray,
    num: int,
    *,
    seed: int = 0,
    color=SKIN_RGB,
    opacity: float = 0.95,
    flatness: float = 0.1,
) -> HumanGaussianTemplate:
    """Samples `num` Gaussians uniformly by area on a mesh (deterministic for a seed).

    vertices: [V, 3] metres (the canonical body); faces: [F, 3]. Each Gaussian gets in-plane scale
    sqrt(area / (pi num)) so the disks tile the surface, `flatness` times that along the normal.
    """
    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces, np.int64)
    area = 0.5 * np.linalg.norm(np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]), axis=1)
    rng = np.random.default_rng(seed)
    face_idx = rng.choice(len(f), size=num, p=area / area.sum())
    r1, r2 = np.sqrt(rng.random(num)), rng.random(num)
    bary = np.stack([1 - r1, r1 * (1 - r2), r1 * r2], axis=1)
    s = np.sqrt(area.sum() / (np.pi * num))
    log_scales = np.log(np.array([s, s, flatness * s]))
    return HumanGaussianTemplate(
        face_idx=jnp.asarray(face_idx, jnp.int32),
        bary=jnp.asarray(bary, jnp.float32),
        log_scales=jnp.asarray(np.tile(log_scales, (num, 1)), jnp.float32),
        opacity_logits=jnp.full((num,), np.log(opacity / (1 - opacity)), jnp.float32),
        colors=jnp.asarray(np.tile(np.asarray(color, np.float32), (num, 1))),
    )


def face_frames(vertices: jnp.ndarray, faces: jnp.ndarray, face_idx: jnp.ndarray) -> jnp.ndarray:
    """[N, 3, 3] rotation whose columns are (e1, e2, n) of each listed face. vertices [V, 3]; faces [F, 3]."""
    tri = vertices[faces[face_idx]]
    a, b = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    e1 = a / jnp.sqrt(jnp.sum(a * a, -1, keepdims=True) + 1e-20)
    n = jnp.cross(a, b)
    n = n / jnp.sqrt(jnp.sum(n * n, -1, keepdims=True) + 1e-20)
    e2 = jnp.cross(n, e1)
    return jnp.stack([e1, e2, n], axis=-1)


def pose_gaussians(template: HumanGaussianTemplate, vertices: jnp.ndarray, faces: jnp.ndarray) -> Gaussians:
    """Gaussians on a posed mesh: vertices [V, 3] metres (world frame), faces [F, 3] -> Gaussians (N)."""
    tri = vertices[faces[template.face_idx]]
    means = jnp.einsum("nfi,nf->ni", tri, template.bary)
    quats = jaxlie.SO3.from_matrix(face_frames(vertices, faces, template.face_idx)).wxyz
    return Gaussians(means=means, quats=quats, log_scales=template.log_scales,
                     opacity_logits=template.opacity_logits, colors=template.colors)  # fmt: skip


def human_gaussians(model: BodyModel, template: HumanGaussianTemplate, params: BodyParams) -> Gaussians:
    """The template posed by one frame's SMPL-X parameters (differentiable w.r.t. every parameter)."""
    return pose_gaussians(template, forward(model, params).vertices, model.faces)
