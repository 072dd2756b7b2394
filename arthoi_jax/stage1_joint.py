"""Stage I beyond the paper, 1-DOF modes: the shared joint fitted with every frame's losses at once. No IO.

The per-frame 1-DOF Adam of stage1.py keeps the joint's axis and pivot from the track-based initialization and
moves one value per frame, so it cannot correct a wrong axis, and a frame without tracks has only its own render
loss. Here the frames pin the joint down together (a per-frame 6-DOF minimum of the tracks is far from the truth,
see docs/status.md):

1. `search_values`: per part, every frame's render loss L_r on a coarse grid of joint values (vmapped
   renders at the render size) and the path through the grid of least cost plus a constant-velocity prior
   (dynamic programming; optionally monotone). It re-seeds frames whose part tracks are few (a lid turning away
   from the camera loses its tracks; its silhouette and colours still tell the angle).
2. `refine`: Adam over the shared joint (axis: an SO(3) tangent applied to the initial axis; pivot) and every
   frame's value together; the objective is Eq. 5 averaged over frames, L_s on the joint poses of consecutive
   frames, each frame's L_tr scaled by its share of visible tracks.
"""

from __future__ import annotations

import dataclasses
from functools import partial

import jax
import jax.numpy as jnp
import jaxlie
import numpy as np
import optax
from flax import struct

from arthoi_jax import losses
from arthoi_jax.articulation import JointFit, joint_transform
from arthoi_jax.config import RenderConfig, Stage1Config


@struct.dataclass
class JointParams:
    """The shared joints and all frames' values (P parts, T frames)."""

    axis_delta: jnp.ndarray  # [P, 3] so(3) tangent (radians) turning the initial axis
    pivot_delta: jnp.ndarray  # [P, 3] metres added to the initial pivot (unused by prismatic joints)
    values: jnp.ndarray  # [T, P] radians | metres; row 0 is ignored (frame 0 is the rest pose, value 0)


def joint_axes(params: JointParams, axis0: jnp.ndarray, pivot0: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """-> (axes [P, 3] unit, pivots [P, 3] metres) of the joints at the parameters; axis0, pivot0 [P, 3]: initial."""
    axes = jax.vmap(lambda d, a: jaxlie.SO3.exp(d) @ a)(params.axis_delta, axis0)
    return axes, pivot0 + params.pivot_delta


def joint_poses(joint_type: jnp.ndarray, axes: jnp.ndarray, pivots: jnp.ndarray, values: jnp.ndarray) -> jnp.ndarray:
    """[T, P, 4, 4] poses of the joints (types [P], axes, pivots [P, 3]) at values [T, P]."""
    return jax.vmap(lambda v: jax.vmap(joint_transform)(joint_type, axes, pivots, v))(values)


def frame_terms(params: JointParams, scene, frames, axis0: jnp.ndarray, pivot0: jnp.ndarray, track_scale: jnp.ndarray,
                cfg: Stage1Config, render_cfg: RenderConfig) -> jnp.ndarray:
    """[T - 1, 5] weighted loss terms (order stage1.TERMS) of frames 1..T-1 under the shared joints.

    scene: a Stage1Scene; frames: Stage1Frame batched over frames 1..T-1 with init_value 0 (the values are the
    parameters); track_scale: [T - 1] factor on each frame's L_tr (a mean over the visible tracks, so a few tracks
    left at an occlusion boundary would weigh as much as all of them). L_s is the constant-velocity prior on the
    poses of frames t-2, t-1, t (0 at frame 1)."""
    from arthoi_jax.stage1 import loss_terms  # stage1 imports this module

    axes, pivots = joint_axes(params, axis0, pivot0)
    s = scene.replace(joint_axis=axes, joint_pivot=pivots)
    values = params.values.at[0].set(0.0)
    per_frame = dataclasses.replace(cfg, use_smoothness_loss=False)
    terms = jax.vmap(lambda v, fr: loss_terms(v[:, None], s, fr, per_frame, render_cfg))(values[1:], frames)
    terms = terms.at[:, 2].multiply(track_scale)
    if not cfg.use_smoothness_loss:
        return terms
    se3 = jaxlie.SE3.from_matrix(joint_poses(s.joint_type, axes, pivots, values))
    pick = lambda a, b: jax.tree.map(lambda x: x[a:b], se3)
    sm = jax.vmap(losses.smoothness_loss, in_axes=(0, 0, 0, None))(pick(2, None), pick(1, -1), pick(0, -2),
                                                                    jnp.bool_(True))
    return terms.at[:, 4].set(cfg.lambda_s * jnp.concatenate([jnp.zeros(1, sm.dtype), sm]))


def _optimizer(cfg: Stage1Config) -> optax.GradientTransformation:
    lrs = JointParams(axis_delta=cfg.joint_lr_axis, pivot_delta=cfg.joint_lr_pivot, values=cfg.joint_lr_value)
    scale = optax.stateless(lambda g, _: jax.tree.map(lambda x, lr: -lr * x, g, lrs))
    return optax.chain(optax.clip_by_global_norm(cfg.grad_clip), optax.scale_by_adam(), scale)


@partial(jax.jit, static_argnames=("cfg", "render_cfg"))
def _adam(params: JointParams, scene, frames, axis0, pivot0, track_scale, cfg: Stage1Config,
          render_cfg: RenderConfig):
    """cfg.joint_iters Adam steps on the frame-mean objective -> (best params, its loss, losses per step)."""
    opt = _optimizer(cfg)

    def objective(p):
        return jnp.mean(jnp.sum(frame_terms(p, scene, frames, axis0, pivot0, track_scale, cfg, render_cfg), -1))

    def body(carry, _):
        p, o, best, best_loss = carry
        loss, g = jax.value_and_grad(objective)(p)
        ok = jnp.isfinite(loss) & jnp.all(jnp.array([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(g)]))
        better = ok & (loss < best_loss)
        best = jax.tree.map(lambda a, b: jnp.where(better, a, b), p, best)
        best_loss = jnp.where(better, loss, best_loss)
        u, o2 = opt.update(g, o, p)
        keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)
        return (keep(optax.apply_updates(p, u), p), keep(o2, o), best, best_loss), loss

    (p, _, best, best_loss), trace = jax.lax.scan(body, (params, opt.init(params), params, jnp.float32(jnp.inf)),
                                                  None, length=cfg.joint_iters)
    final = objective(p)  # the last update is scored too
    better = jnp.isfinite(final) & (final < best_loss)
    return jax.tree.map(lambda a, b: jnp.where(better, a, b), p, best), jnp.where(better, final, best_loss), trace


@partial(jax.jit, static_argnames=("part", "cfg", "render_cfg"))
def _grid_costs(values: jnp.ndarray, grid: jnp.ndarray, scene, frames, part: int, cfg: Stage1Config,
                render_cfg: RenderConfig) -> jnp.ndarray:
    """[T - 1, K] per-frame render loss L_r with part `part` at each grid value [K], the other parts at values
    [T, P]. Tracks are left out: the search serves the frames where they fail (a lid's last tracks drift)."""
    from arthoi_jax.stage1 import loss_terms

    per_frame = dataclasses.replace(cfg, use_smoothness_loss=False)

    def cost(v):
        vals = values[1:].at[:, part].set(v)
        terms = jax.vmap(lambda x, fr: loss_terms(x[:, None], scene, fr, per_frame, render_cfg))(vals, frames)
        return jnp.sum(terms[:, :2], -1)

    return jax.lax.map(cost, grid).T


def smooth_path(cost: np.ndarray, grid: np.ndarray, weight: float, monotone: bool = False,
                pinned: np.ndarray | None = None) -> np.ndarray:
    """The grid path of least sum_t cost[t, k_t] + weight * (g_t - 2 g_{t-1} + g_{t-2})^2 starting from the grid
    value nearest 0 at frame 0 (dynamic programming over pairs of consecutive states).

    cost: [T - 1, K] for frames 1..T-1; grid: [K] sorted values; monotone: the path never decreases, or never
    increases (the better of the two); pinned: [T] values the path must pass through (the grid value nearest),
    NaN where free. -> [T] values, the first 0."""
    K = len(grid)
    if pinned is not None:
        pin = np.asarray(pinned, np.float64)[1:]
        near = np.abs(grid[None, :] - pin[:, None]) <= np.abs(grid[None, :] - pin[:, None]).min(1, keepdims=True)
        cost = np.where(np.isnan(pin)[:, None] | near, cost, np.inf)
    k0 = int(np.argmin(np.abs(grid)))
    step = grid[None, :] - grid[:, None]  # [j, k] g_k - g_j
    acc = weight * (grid[None, None, :] - 2 * grid[None, :, None] + grid[:, None, None]) ** 2  # [i, j, k]
    paths = []
    for sign in ((1.0, -1.0) if monotone else (0.0,)):
        bad = np.where(sign * step < 0, np.inf, 0.0)  # monotone: forbidden steps
        # D[j, k]: least cost of a path whose last two frames are at j and k; frame 0 at k0.
        D = np.full((K, K), np.inf)
        D[k0] = cost[0] + bad[k0]
        back = []
        for t in range(1, len(cost)):
            total = D[:, :, None] + acc
            arg = np.argmin(total, 0)  # [j, k] -> i
            D = np.take_along_axis(total, arg[None], 0)[0] + cost[t][None, :] + bad
            back.append(arg)
        j, k = np.unravel_index(np.argmin(D), D.shape)
        ks = [k, j]
        for arg in reversed(back):
            j, k = arg[j, k], j
            ks.append(j)
        paths.append((float(D.min()), grid[np.array(ks[::-1][1:])]))
    return np.concatenate([[0.0], min(paths, key=lambda p: p[0])[1]])


def search_values(values: np.ndarray, joints: tuple[JointFit, ...], scene, frames, cfg: Stage1Config,
                  render_cfg: RenderConfig, pinned: np.ndarray | None = None) -> np.ndarray:
    """Per part, the smoothest low-loss path of joint values over a grid (cfg.search_values values spanning
    +-search_range_deg for revolute, +-search_range_m for prismatic joints) -> values [T, P]. values [T, P]: the
    current values (the other parts are held there while one part is searched); pinned: [T, P] bool, the frames
    whose path passes through `values` (None: none)."""
    out = np.array(values, np.float64)
    for p, j in enumerate(joints):
        if pinned is not None and pinned[:, p].all():
            continue
        r = np.deg2rad(cfg.search_range_deg) if j.joint_type == "revolute" else cfg.search_range_m
        grid = np.linspace(-r, r, cfg.search_values)
        cost = np.asarray(_grid_costs(jnp.asarray(out, jnp.float32), jnp.asarray(grid, jnp.float32), scene, frames,
                                      part=p, cfg=cfg, render_cfg=render_cfg), np.float64)
        pin = None if pinned is None else np.where(pinned[:, p], values[:, p], np.nan)
        out[:, p] = smooth_path(cost, grid, cfg.search_smooth, cfg.monotone, pin)
    return out


def lost_frames(track_counts: np.ndarray, cfg: Stage1Config) -> np.ndarray:
    """[T, P] bool: the frames (> 0) where a part keeps fewer than cfg.reseed_below_tracks of its tracks
    (track_counts [T, P] visible tracks per frame and part)."""
    few = track_counts < cfg.reseed_below_tracks
    few[0] = False
    return few


def has_work(track_counts: np.ndarray, cfg: Stage1Config) -> bool:
    """Whether `refine` changes anything: Adam steps to take, or lost frames to search."""
    return cfg.joint_iters > 0 or (cfg.search_values > 1 and bool(lost_frames(track_counts, cfg).any()))


def refine(joints: tuple[JointFit, ...], scene, frames, track_counts: np.ndarray, cfg: Stage1Config,
           render_cfg: RenderConfig) -> tuple[tuple[JointFit, ...], float]:
    """The joints refined with every frame's losses -> (joints [P] with refined axis, pivot and values [T], the
    final frame-mean objective).

    joints: the initial joints (stage1.initial_poses); scene: the Stage1Scene built with them; frames: Stage1Frame
    batched over frames 1..T-1 (init_value 0); track_counts: [T, P] visible tracks of each part per frame. Frames
    where a part keeps fewer than cfg.reseed_below_tracks tracks (`lost_frames`) take that part's value from
    `search_values`
    before Adam, on a path through the other frames' values (a lid tracked to 15 deg carries on from there: free,
    the LK lid's search read 9.7-14 deg low over the frames where it is seen edge-on). Nothing to search and
    joint_iters 0: the joints are returned as they are."""
    if not has_work(track_counts, cfg):
        return joints, float("nan")
    values = np.stack([j.values for j in joints], 1)
    few = lost_frames(track_counts, cfg)
    if cfg.search_values > 1 and few.any():
        searched = search_values(values, joints, scene, frames, cfg, render_cfg, pinned=~few)
        values = np.where(few, searched, values)
    axis0 = jnp.asarray(np.stack([j.axis for j in joints]), jnp.float32)
    pivot0 = jnp.asarray(np.stack([j.pivot for j in joints]), jnp.float32)
    P = len(joints)
    params = JointParams(axis_delta=jnp.zeros((P, 3), jnp.float32), pivot_delta=jnp.zeros((P, 3), jnp.float32),
                         values=jnp.asarray(values, jnp.float32))
    loss = np.inf
    if cfg.joint_iters > 0:
        total = np.maximum(track_counts.sum(1), 1)
        scale = jnp.asarray(cfg.joint_track_weight * np.minimum(total[1:] / total[0], 1.0), jnp.float32)
        params, loss, _ = _adam(params, scene, frames, axis0, pivot0, scale, cfg, render_cfg)
    axes, pivots = (np.asarray(x, np.float64) for x in joint_axes(params, axis0, pivot0))
    vals = np.asarray(params.values, np.float64)
    vals[0] = 0.0
    out = tuple(JointFit(j.joint_type, axes[p], pivots[p] if j.joint_type == "revolute" else np.zeros(3),
                         vals[:, p], float("nan")) for p, j in enumerate(joints))
    return out, float(loss)
