"""Stage I of many scenes as one jitted, vmapped program (no IO).

The loop mirrors `arthoi_jax.stage1.optimize` step for step, with a scene axis added: for each frame t, every
scene's frame-t problem (same bucket shapes, see padding.py) starts from a fresh optimizer state, and chunks of
`steps_per_chunk` steps run vmapped under one jit until every scene has stopped (early stopping, the iteration
cap, or a non-finite value). A finished scene's state is left unchanged by further steps (stage1.step), so the
result of every scene equals its single-scene run. A scene past its last frame, or one that failed, sits out
(its state starts finished). A non-finite loss or gradient fails that scene only, with the OptimizationError
message stage1.optimize would raise; the others go on.

Progress after every chunk is a plain dict of numpy arrays (`Snapshot`), handed to `on_chunk` for checkpoints
and accepted back as `resume` to continue exactly where it stopped.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from functools import partial

import jax
import numpy as np
from tqdm.auto import tqdm

from arthoi_jax import stage1
from arthoi_jax.articulation import JointFit, fit_joint
from arthoi_jax.batch import sharding
from arthoi_jax.batch.padding import BucketKey, bucket_size, pad_scene, stack
from arthoi_jax.config import RenderConfig, Stage1Config
from arthoi_jax.errors import OptimizationError
from arthoi_jax.segmentation import PartSegmentation

Snapshot = dict  # str -> np.ndarray: see _snapshot

TRACE_COUNT = {"steps": 0}  # traces (= compiles) of the batched step program, for tests and benchmarks


@dataclasses.dataclass(frozen=True)
class Stage1Problem:
    """One scene's Stage I inputs, prepared on the host (T frames, render size h x w, M tracks, P parts)."""

    seg: PartSegmentation
    scene: stage1.Stage1Scene  # stage1.build_scene (padded to multiples of stage1.PAD)
    images: np.ndarray  # [T, h, w, 3] float32 in [0, 1]
    masks: np.ndarray  # [T, h, w] float32
    tracks: np.ndarray  # [T, M, 2] float32 pixels
    visibility: np.ndarray  # [T, M] bool
    init: np.ndarray  # [T, P, 4, 4] closed-form initial poses
    pnp: np.ndarray  # [T, P, 4, 4] per-frame PnP poses
    joints: tuple[JointFit, ...] | None  # the fixed joints of the 1-DOF modes (None: free_se3)
    cfg: Stage1Config
    render_cfg: RenderConfig

    @property
    def num_frames(self) -> int:
        return self.images.shape[0]


def prepare(frames: np.ndarray, object_masks: np.ndarray, tracks: np.ndarray, visibility: np.ndarray,
            K: np.ndarray, seg: PartSegmentation, cfg: Stage1Config, render_cfg: RenderConfig,
            binding_radius_m: float) -> Stage1Problem:
    """The host-side preparation of stage1.optimize (same arguments) for one scene."""
    T, H, W = object_masks.shape
    K = np.asarray(K, np.float64)
    init, pnp, init_joints = stage1.initial_poses(seg, tracks, visibility, K, cfg)
    joints = None if cfg.articulation == "free_se3" else init_joints
    scene = stage1.build_scene(seg, K, (H, W), cfg, binding_radius_m, joints)
    images, masks = stage1._frame_arrays(frames, object_masks, stage1.render_size(H, W, cfg.render_downsample))
    return Stage1Problem(seg=seg, scene=scene, images=images, masks=masks, tracks=tracks.astype(np.float32),
                         visibility=np.asarray(visibility, bool), init=init, pnp=pnp, joints=joints, cfg=cfg,
                         render_cfg=render_cfg)


def bucket_key(problem: Stage1Problem, buckets: tuple[int, ...] = ()) -> BucketKey:
    s = problem.scene
    return BucketKey(stage1=problem.cfg, render=problem.render_cfg, render_hw=problem.masks.shape[1:3],
                     num_parts=problem.seg.num_parts, num_gaussians=bucket_size(s.valid.shape[0], buckets),
                     num_tracks=bucket_size(s.track_points.shape[0], buckets),
                     num_pairs=bucket_size(s.pairs.shape[0], buckets))


def _batched_steps(state, scene, frame, cfg, render_cfg, num_steps):
    TRACE_COUNT["steps"] += 1  # runs once per trace, i.e. once per compile
    run = partial(stage1.run_steps, cfg=cfg, render_cfg=render_cfg, num_steps=num_steps)
    return jax.vmap(run)(state, scene, frame)


batched_steps = jax.jit(_batched_steps, static_argnames=("cfg", "render_cfg", "num_steps"))


@partial(jax.jit, static_argnames=("cfg",))
def _batched_poses(params, scene, frame, cfg):
    return jax.vmap(partial(stage1.part_poses, cfg=cfg))(params, scene, frame)


def _pad_to(x: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros((n,) + x.shape[1:], x.dtype)
    out[: len(x)] = x
    return out


def _frame(p: Stage1Problem, t: int, M: int, poses: np.ndarray, values: np.ndarray) -> stage1.Stage1Frame:
    """Frame t of one scene exactly as stage1.optimize builds it (poses, values: that scene's results so far);
    t past the scene's end gives its last frame (the scene sits out)."""
    t = min(t, p.num_frames - 1)
    P = p.seg.num_parts
    warm = p.cfg.init == "previous"
    init_value = values[t - 1] if warm else (np.array([j.values[t] for j in p.joints]) if p.joints else np.zeros(P))
    return stage1.Stage1Frame(
        image=p.images[t], mask=p.masks[t], tracks=_pad_to(p.tracks[t], M), track_vis=_pad_to(p.visibility[t], M),
        init_pose=np.asarray(poses[t - 1] if warm else p.init[t], np.float32),
        init_value=np.asarray(init_value, np.float32),
        prev_poses=np.asarray(np.stack([poses[t - 1], poses[max(t - 2, 0)]]), np.float32),
        smooth_valid=np.bool_(t >= 2))


def _fresh(cfg: Stage1Config, P: int, done: np.ndarray):
    s0 = jax.tree.map(np.asarray, stage1.init_state(cfg, P))
    return stack([s0.replace(done=np.bool_(d)) for d in done])


def _new_snapshot(n: int, T: int, P: int) -> Snapshot:
    return {"t": np.int64(1), "chunk": np.int64(0), "poses": np.tile(np.eye(4), (n, T, P, 1, 1)),
            "values": np.zeros((n, T, P)), "iterations": np.zeros((n, T), np.int64), "loss": np.zeros((n, T)),
            "terms": np.zeros((n, T, len(stage1.TERMS))), "failed_frame": np.full(n, -1, np.int64),
            "failed_step": np.full(n, -1, np.int64), "failed_what": np.zeros((n, len(stage1.TERMS) + 1), bool),
            "failed_terms": np.zeros((n, len(stage1.TERMS)))}


def optimize_batch(problems: list[Stage1Problem], key: BucketKey, mesh: jax.sharding.Mesh, *,
                   resume: Snapshot | None = None, on_chunk: Callable[[Snapshot, int], None] | None = None,
                   progress: bool = True) -> list[stage1.Stage1Result | OptimizationError]:
    """Stage I of every problem (all of bucket `key`) in one vmapped program sharded over `mesh`.

    on_chunk(snapshot, steps_run) is called after every chunk and at the end of every frame (steps_run: the
    optimization steps since its last call). `resume`: a snapshot to continue from.
    Returns, per problem, its Stage1Result or the OptimizationError that stopped it.
    """
    cfg, render_cfg, P = key.stage1, key.render, key.num_parts
    n = sharding.padded_scene_count(len(problems), mesh)
    T_of = [p.num_frames for p in problems] + [0] * (n - len(problems))
    T = max(T_of)
    scenes = [pad_scene(p.scene, key.num_gaussians, key.num_tracks, key.num_pairs) for p in problems]
    scene_b = sharding.shard(stack(scenes + [scenes[0]] * (n - len(problems))), mesh)
    padded = problems + [problems[0]] * (n - len(problems))
    snap = resume if resume is not None else _new_snapshot(n, T, P)
    chunks = math.ceil(cfg.iters_per_frame / cfg.steps_per_chunk)
    bar = tqdm(total=T - 1, initial=int(snap["t"]) - 1, desc=f"stage1 x{len(problems)}", disable=not progress,
               dynamic_ncols=True)
    start_t, start_chunk = int(snap["t"]), int(snap["chunk"])
    for t in range(start_t, T):
        active = np.array([t < T_of[s] and snap["failed_frame"][s] < 0 for s in range(n)])
        frame_host = stack([_frame(p, t, key.num_tracks, snap["poses"][s], snap["values"][s])
                            for s, p in enumerate(padded)])
        frame_b = sharding.shard(frame_host, mesh)
        first = start_chunk if t == start_t else 0
        host = snap["state"] if first > 0 else _fresh(cfg, P, ~active)
        state, all_done = sharding.shard(host, mesh), bool(host.done.all())
        for c in range(first, chunks):
            state, _ = batched_steps(state, scene_b, frame_b, cfg=cfg, render_cfg=render_cfg,
                                     num_steps=cfg.steps_per_chunk)
            host = sharding.to_host(state)
            bad = active & (host.bad_step >= 0) & (snap["failed_frame"] < 0)
            snap["failed_frame"][bad], snap["failed_step"][bad] = t, host.bad_step[bad]
            snap["failed_what"][bad], snap["failed_terms"][bad] = host.bad_what[bad], host.terms[bad]
            snap.update(t=np.int64(t), chunk=np.int64(c + 1), state=host)
            all_done = bool(host.done.all())
            if on_chunk is not None and not all_done:
                on_chunk(snap, cfg.steps_per_chunk)
            running = active & (snap["failed_frame"] < 0)
            mean_loss = host.loss[running].mean() if running.any() else 0.0
            bar.set_postfix(frame=t, step=int(host.step.max()), loss=f"{mean_loss:.4g}")
            if all_done:
                break
        poses_t = sharding.to_host(_batched_poses(state.params, scene_b, frame_b, cfg=cfg))
        ok = active & (snap["failed_frame"] < 0)
        snap["poses"][ok, t] = poses_t[ok]
        if cfg.articulation != "free_se3":
            snap["values"][ok, t] = frame_host.init_value[ok] + host.params[ok, :, 0]
        snap["iterations"][ok, t], snap["loss"][ok, t] = host.step[ok], host.loss[ok]
        snap["terms"][ok, t] = host.terms[ok]
        snap.update(t=np.int64(t + 1), chunk=np.int64(0), state=host)
        if on_chunk is not None:
            on_chunk(snap, cfg.steps_per_chunk if all_done else 0)
        bar.update(1)
    bar.close()
    return [_result(p, snap, s) for s, p in enumerate(problems)]


def _result(p: Stage1Problem, snap: Snapshot, s: int) -> stage1.Stage1Result | OptimizationError:
    if snap["failed_frame"][s] >= 0:
        what = [n for n, bad in zip(stage1.TERMS + ("gradient",), snap["failed_what"][s]) if bad]
        return OptimizationError(
            f"stage1: non-finite {' and '.join(what) or 'loss'} at frame {int(snap['failed_frame'][s])}, step "
            f"{int(snap['failed_step'][s])} (loss terms "
            f"{dict(zip(stage1.TERMS, snap['failed_terms'][s].round(6).tolist()))})")
    T = p.num_frames
    poses = snap["poses"][s, :T]
    kind = "auto" if p.cfg.articulation == "free_se3" else p.cfg.articulation
    fits = tuple(fit_joint(poses[:, q], stage1._part_points(p.seg, q), kind) for q in range(p.seg.num_parts))
    return stage1.Stage1Result(poses=poses, init_poses=p.init, pnp_poses=p.pnp, joints=fits,
                               iterations=snap["iterations"][s, :T],
                               loss=snap["loss"][s, :T], terms=snap["terms"][s, :T])


def snapshot_arrays(snap: Snapshot) -> dict[str, np.ndarray]:
    """A snapshot as a flat dict of numpy arrays (the optimizer state's leaves numbered), for a checkpoint."""
    out = {k: np.asarray(v) for k, v in snap.items() if k != "state"}
    if "state" in snap:
        out.update({f"state_{i:03d}": np.asarray(x) for i, x in enumerate(jax.tree.leaves(snap["state"]))})
    return out


def snapshot_from_arrays(arrays: dict[str, np.ndarray], key: BucketKey) -> Snapshot:
    """The inverse of snapshot_arrays for a bucket `key`."""
    snap = {k: np.array(v) for k, v in arrays.items() if not k.startswith("state_")}
    leaves = [np.array(arrays[k]) for k in sorted(k for k in arrays if k.startswith("state_"))]
    if leaves:
        treedef = jax.tree.structure(stage1.init_state(key.stage1, key.num_parts))
        snap["state"] = jax.tree.unflatten(treedef, leaves)
    return snap
