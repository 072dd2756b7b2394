"""Inverse kinematics through the SMPL-X skeleton in JAX: chosen joints follow targets, the rest holds.

All frames are solved together (Adam on the axis-angles of the chosen joints, with a pull towards the base pose
and a temporal smoothness term); the pelvis (global orientation, translation) is left as given, so a hand can
follow a handle while the feet, given as effectors held at their planted positions, stay planted.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import optax

from arthoi_jax.body import joint_names as jn
from arthoi_jax.body import lbs
from arthoi_jax.body.model import BodyModel, BodyParams, full_pose, rest_joints

SPINE = ("spine1", "spine2", "spine3")


LEGS = tuple(f"{s}_{j}" for s in ("left", "right") for j in ("hip", "knee", "ankle"))
FEET = ("left_ankle", "right_ankle", "left_foot", "right_foot")


def arm_chain(side: str) -> tuple[str, ...]:
    """Joints the IK may turn for the `side` ("left" | "right") hand: the spine, then collar to wrist."""
    return SPINE + tuple(f"{side}_{j}" for j in ("collar", "shoulder", "elbow", "wrist"))


def skeleton_joints(model: BodyModel, params: BodyParams) -> jnp.ndarray:
    """[55, 3] posed skeleton joints, world frame (transl added), of one frame; cheaper than the full forward."""
    rot = lbs.rodrigues(full_pose(model, params))
    J = rest_joints(model, params.betas, params.expression)
    return lbs.rigid_transforms(rot, J, model.parents)[0] + params.transl


@partial(jax.jit, static_argnames=("effectors", "free", "iters"))
def _solve(model, base, targets, weights, *, effectors, free, iters, lr, w_reg, w_smooth):
    free_idx = jnp.asarray([j - 1 for j in free])  # body_pose rows

    def joints_of(delta):
        pose = base.body_pose.at[:, free_idx].add(delta)
        p = base.replace(body_pose=pose)
        axes = BodyParams(*([None] + [0] * 9))
        return jax.vmap(skeleton_joints, in_axes=(None, axes))(model, p)

    def loss(delta):
        eff = joints_of(delta)[:, jnp.asarray(effectors)]
        fit = jnp.sum(weights * jnp.sum((eff - targets) ** 2, -1))
        smooth = jnp.sum((delta[1:] - delta[:-1]) ** 2)
        return fit + w_reg * jnp.sum(delta**2) + w_smooth * smooth

    opt = optax.adam(lr)
    delta = jnp.zeros((targets.shape[0], len(free), 3), jnp.float32)

    def step(carry, _):
        d, s = carry
        g = jax.grad(loss)(d)
        u, s = opt.update(g, s)
        return (optax.apply_updates(d, u), s), None

    (delta, _), _ = jax.lax.scan(step, (delta, opt.init(delta)), None, length=iters)
    eff = joints_of(delta)[:, jnp.asarray(effectors)]
    return base.body_pose.at[:, free_idx].add(delta), jnp.linalg.norm(eff - targets, axis=-1)


def solve_reach(model: BodyModel, base: BodyParams, effectors: tuple[str, ...], targets: jnp.ndarray,
                weights: jnp.ndarray, free: tuple[str, ...], *, iters: int = 600, lr: float = 0.02,
                w_reg: float = 1e-3, w_smooth: float = 1e-2) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Turns the `free` joints so that the skeleton joints `effectors` [E] reach targets [T, E, 3] (world, m).

    base: BodyParams with a leading [T] axis (the pose to stay near); weights [T, E] (0: unconstrained).
    Returns body_pose [T, 21, 3] and the residual distances [T, E] metres.
    """
    eff = tuple(jn.SKELETON.index(n) for n in effectors)
    free_ids = tuple(jn.SKELETON.index(n) for n in free)
    return _solve(model, base, jnp.asarray(targets, jnp.float32), jnp.asarray(weights, jnp.float32),
                  effectors=eff, free=free_ids, iters=iters, lr=lr, w_reg=w_reg,
                  w_smooth=w_smooth)
