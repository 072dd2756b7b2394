"""Inverse kinematics through the SMPL-X skeleton in JAX: chosen joints follow targets, the rest holds.

All frames are solved together (Adam on the axis-angles of the chosen joints, with a pull towards the base pose
and a temporal smoothness term); the pelvis (global orientation, translation) is left as given, so a hand can
follow a handle while the feet, given as effectors held at their planted positions, stay planted. Optionally
(`Clearance`) chosen body vertices are kept a margin outside a set of posed boxes (an object's solids), so that
a hand holding a handle does not pass through it.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from arthoi_jax.body import joint_names as jn
from arthoi_jax.body import lbs
from arthoi_jax.body.model import BodyModel, BodyParams, full_pose, joints_and_vertices, rest_joints
from arthoi_jax.geometry.boxes import box_frames, box_sdf

SPINE = ("spine1", "spine2", "spine3")


LEGS = tuple(f"{s}_{j}" for s in ("left", "right") for j in ("hip", "knee", "ankle"))
FEET = ("left_ankle", "right_ankle", "left_foot", "right_foot")


def arm_chain(side: str) -> tuple[str, ...]:
    """Joints the IK may turn for the `side` ("left" | "right") hand: the spine, then collar to wrist."""
    return SPINE + tuple(f"{side}_{j}" for j in ("collar", "shoulder", "elbow", "wrist"))


def arm_vertices(model: BodyModel, side: str) -> np.ndarray:
    """Indices of the vertices that the `side` ("left" | "right") elbow, wrist or fingers move most (the
    forearm and the hand)."""
    names = [f"{side}_{j}" for j in ("elbow", "wrist")]
    names += [n for n in jn.SKELETON if n.startswith(f"{side}_") and n[len(side) + 1:-1] in
              ("index", "middle", "ring", "pinky", "thumb")]
    dominant = np.argmax(np.asarray(model.weights), axis=1)
    return np.flatnonzero(np.isin(dominant, [jn.SKELETON.index(n) for n in names]))


@struct.dataclass
class Clearance:
    """Body vertices `vertices` [K] (indices) kept `margin` metres outside every box of frame t.

    Boxes as their centres [T, B, 3], unit axes [T, B, 3, 3] (rows) and half extents [T, B, 3] metres (see
    `clearance`); the penalty is `weight` x the squared depth below the margin, summed over frames and vertices.
    """

    vertices: jnp.ndarray  # [K] int
    centre: jnp.ndarray  # [T, B, 3]
    axes: jnp.ndarray  # [T, B, 3, 3]
    half: jnp.ndarray  # [T, B, 3]
    margin: float = struct.field(pytree_node=False, default=0.003)
    weight: float = struct.field(pytree_node=False, default=100.0)


def clearance(vertices: np.ndarray, boxes: np.ndarray, margin: float = 0.003, weight: float = 100.0) -> Clearance:
    """A Clearance of the vertex indices [K] from boxes [T, B, 4, 3] (corner 0 and its three neighbours, as
    `geometry.boxes.box_frames`)."""
    v0, axes, half = box_frames(np.asarray(boxes, np.float64))
    centre = v0 + np.einsum("tbk,tbkj->tbj", half, axes)
    f = lambda x: jnp.asarray(x, jnp.float32)  # noqa: E731
    return Clearance(jnp.asarray(vertices, jnp.int32), f(centre), f(axes), f(half), margin, weight)


def skeleton_joints(model: BodyModel, params: BodyParams) -> jnp.ndarray:
    """[55, 3] posed skeleton joints, world frame (transl added), of one frame; cheaper than the full forward."""
    rot = lbs.rodrigues(full_pose(model, params))
    J = rest_joints(model, params.betas, params.expression)
    return lbs.rigid_transforms(rot, J, model.parents)[0] + params.transl


@partial(jax.jit, static_argnames=("effectors", "free", "iters"))
def _solve(model, base, targets, weights, clear, *, effectors, free, iters, lr, w_reg, w_smooth):
    free_idx = jnp.asarray([j - 1 for j in free])  # body_pose rows
    axes = BodyParams(*([None] + [0] * 9))

    def posed(delta):
        p = base.replace(body_pose=base.body_pose.at[:, free_idx].add(delta))
        if clear is None:
            return jax.vmap(skeleton_joints, in_axes=(None, axes))(model, p), None
        return jax.vmap(joints_and_vertices, in_axes=(None, axes, None))(model, p, clear.vertices)

    def loss(delta):
        joints, verts = posed(delta)
        eff = joints[:, jnp.asarray(effectors)]
        fit = jnp.sum(weights * jnp.sum((eff - targets) ** 2, -1))
        smooth = jnp.sum((delta[1:] - delta[:-1]) ** 2)
        out = fit + w_reg * jnp.sum(delta**2) + w_smooth * smooth
        if clear is not None:
            sdf = jax.vmap(box_sdf)(verts, clear.centre, clear.axes, clear.half)
            out = out + clear.weight * jnp.sum(jnp.maximum(clear.margin - sdf, 0.0) ** 2)
        return out

    opt = optax.adam(lr)
    delta = jnp.zeros((targets.shape[0], len(free), 3), jnp.float32)

    def step(carry, _):
        d, s = carry
        g = jax.grad(loss)(d)
        u, s = opt.update(g, s)
        return (optax.apply_updates(d, u), s), None

    (delta, _), _ = jax.lax.scan(step, (delta, opt.init(delta)), None, length=iters)
    eff = posed(delta)[0][:, jnp.asarray(effectors)]
    return base.body_pose.at[:, free_idx].add(delta), jnp.linalg.norm(eff - targets, axis=-1)


def solve_reach(model: BodyModel, base: BodyParams, effectors: tuple[str, ...], targets: jnp.ndarray,
                weights: jnp.ndarray, free: tuple[str, ...], *, iters: int = 600, lr: float = 0.02,
                w_reg: float = 1e-3, w_smooth: float = 1e-2,
                clear: Clearance | None = None) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Turns the `free` joints so that the skeleton joints `effectors` [E] reach targets [T, E, 3] (world, m).

    base: BodyParams with a leading [T] axis (the pose to stay near); weights [T, E] (0: unconstrained);
    clear: optional Clearance (vertices kept out of boxes; None: joints only, as before).
    Returns body_pose [T, 21, 3] and the residual distances [T, E] metres.
    """
    eff = tuple(jn.SKELETON.index(n) for n in effectors)
    free_ids = tuple(jn.SKELETON.index(n) for n in free)
    return _solve(model, base, jnp.asarray(targets, jnp.float32), jnp.asarray(weights, jnp.float32), clear,
                  effectors=eff, free=free_ids, iters=iters, lr=lr, w_reg=w_reg,
                  w_smooth=w_smooth)
