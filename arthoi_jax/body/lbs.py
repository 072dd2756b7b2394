"""Linear blend skinning, the math of `smplx/lbs.py` in JAX (pure functions, one body; vmap for batches).

Conventions: axis-angle rotations in radians; rest-pose joints and vertices in the model frame (metres);
`parents[j] < j` for every non-root joint (checked when a model is built).
"""

from __future__ import annotations

import jax.numpy as jnp
import jaxlie
import numpy as np


def rodrigues(aa: jnp.ndarray) -> jnp.ndarray:
    """Axis-angle [..., 3] -> rotation matrices [..., 3, 3].

    Finite, exact gradients at zero angle: below 1e-6 rad² the series I + K + K²/2 is used, and the angle
    is computed on a safe argument in the other branch (a plain `where` would leak NaN gradients).
    """
    theta2 = jnp.sum(aa * aa, axis=-1)[..., None, None]
    small = theta2 < 1e-6
    safe = jnp.where(small, 1.0, theta2)
    theta = jnp.sqrt(safe)
    a = jnp.where(small, 1.0 - theta2 / 6.0, jnp.sin(theta) / theta)
    b = jnp.where(small, 0.5 - theta2 / 24.0, (1.0 - jnp.cos(theta)) / safe)
    x, y, z = aa[..., 0], aa[..., 1], aa[..., 2]
    zero = jnp.zeros_like(x)
    K = jnp.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=-1).reshape(aa.shape[:-1] + (3, 3))
    eye = jnp.eye(3, dtype=aa.dtype)
    return eye + a * K + b * (K @ K)


def rotation_to_axis_angle(R: jnp.ndarray) -> jnp.ndarray:
    """Rotation matrices [..., 3, 3] -> axis-angle [..., 3] (through jaxlie's SO3.log, stable at 0 and pi)."""
    return jaxlie.SO3.from_matrix(R).log()


def kinematic_levels(parents: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    """Joints grouped by depth in the tree (root first): each level depends only on earlier ones."""
    depth = [0] * len(parents)
    for j in range(1, len(parents)):
        depth[j] = depth[parents[j]] + 1
    return tuple(np.flatnonzero(np.array(depth) == d) for d in range(max(depth) + 1))


def rigid_transforms(rot: jnp.ndarray, joints: jnp.ndarray, parents: tuple[int, ...]):
    """Forward kinematics, as smplx's `batch_rigid_transform`.

    Args:
      rot: [J, 3, 3] local joint rotations.
      joints: [J, 3] rest-pose joint locations.
      parents: [J] parent indices, -1 at the root.
    Returns:
      posed_joints: [J, 3] joint locations after posing.
      rel: [J, 4, 4] transforms mapping rest-pose points to posed ones (the rest joint is subtracted).
    """
    levels = kinematic_levels(parents)
    par = np.asarray(parents)
    rel_joints = joints - jnp.where((par >= 0)[:, None], joints[np.maximum(par, 0)], 0.0)
    # World transforms are grown level by level in level order (a few batched ops per tree level, not per
    # joint), then gathered back into joint order.
    pos = np.empty(len(parents), int)
    pos[np.concatenate(levels)] = np.arange(len(parents))
    Rw, tw = rot[levels[0]], rel_joints[levels[0]]
    for lvl in levels[1:]:
        pR, pt = Rw[pos[par[lvl]]], tw[pos[par[lvl]]]
        # A broadcast product, not a dot: XLA's CPU simplifier mis-shapes this [n, 3, 3] dot under two vmaps
        # (scenes x frames, batch Stage II) and the grad (jax 0.10.2: 'hlo verifier ... Expected instruction').
        Rw = jnp.concatenate([Rw, jnp.sum(pR[..., :, :, None] * rot[lvl][..., None, :, :], axis=-2)])
        tw = jnp.concatenate([tw, jnp.einsum("nij,nj->ni", pR, rel_joints[lvl]) + pt])
    Rw, tw = Rw[pos], tw[pos]
    t_rel = tw - jnp.einsum("nij,nj->ni", Rw, joints)
    top = jnp.concatenate([Rw, t_rel[..., None]], axis=-1)
    bottom = jnp.broadcast_to(jnp.array([0.0, 0.0, 0.0, 1.0], Rw.dtype), (len(parents), 1, 4))
    return tw, jnp.concatenate([top, bottom], axis=-2)


def skin(v_posed: jnp.ndarray, weights: jnp.ndarray, rel: jnp.ndarray) -> jnp.ndarray:
    """Blends joint transforms: v_posed [V, 3], weights [V, J], rel [J, 4, 4] -> [V, 3]."""
    T = jnp.einsum("vj,jab->vab", weights, rel[:, :3, :])  # [V, 3, 4]
    return jnp.einsum("vab,vb->va", T[:, :, :3], v_posed) + T[:, :, 3]


def barycentric_points(vertices: jnp.ndarray, faces: jnp.ndarray, face_idx, bary) -> jnp.ndarray:
    """Points on a mesh: vertices [V, 3], faces [F, 3], face_idx [L], bary [L, 3] -> [L, 3]."""
    tri = vertices[faces[face_idx]]  # [L, 3, 3]
    return jnp.einsum("lfi,lf->li", tri, bary)
