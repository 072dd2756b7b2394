"""Stage I of many scenes as one jitted, vmapped program sharded over devices (no IO).

The loop is `arthoi_jax.stage1.optimize_scenes`, the same one a single-scene run uses; this module adds what a
batch needs around it: the bucket of a scene (padding.py), the scenes padded to the bucket's sizes and stacked
(device-count padding slots sit out), the scene axis sharded over a Mesh (sharding.py), and the loop's progress
restored from a checkpoint (`progress_from_arrays`).
A scene whose loss or gradient becomes non-finite fails alone, with the OptimizationError stage1.optimize would
raise; the others go on.
"""

from __future__ import annotations

from collections.abc import Callable

import jax

from arthoi_jax import stage1
from arthoi_jax.batch import checkpoint, sharding
from arthoi_jax.batch.padding import BucketKey, bucket_size, pad_scene
from arthoi_jax.errors import OptimizationError
from arthoi_jax.stage1 import Progress, Stage1Problem

TRACE_COUNT = stage1.TRACE_COUNT  # compiles of the batched step program


def bucket_key(problem: Stage1Problem, buckets: tuple[int, ...] = ()) -> BucketKey:
    s = problem.scene
    return BucketKey(stage1=problem.cfg, render=problem.render_cfg, render_hw=problem.masks.shape[1:3],
                     num_parts=problem.seg.num_parts, num_gaussians=bucket_size(s.valid.shape[0], buckets),
                     num_tracks=bucket_size(s.track_points.shape[0], buckets),
                     num_pairs=bucket_size(s.pairs.shape[0], buckets))


def optimize_batch(problems: list[Stage1Problem], key: BucketKey, mesh: jax.sharding.Mesh, *,
                   resume: Progress | None = None, on_chunk: Callable[[Progress, int], None] | None = None,
                   progress: bool = True) -> list[stage1.Stage1Result | OptimizationError]:
    """Stage I of every problem (all of bucket `key`) in one vmapped program sharded over `mesh`: the scenes
    padded to the bucket, the slot count rounded up to a multiple of the device count, then
    stage1.optimize_scenes (see there for on_chunk and resume).
    Returns, per problem, its Stage1Result or the OptimizationError that stopped it.
    """
    n = sharding.padded_scene_count(len(problems), mesh)
    scenes = [pad_scene(p.scene, key.num_gaussians, key.num_tracks, key.num_pairs) for p in problems]
    scene_b = sharding.shard(stage1.stack_trees(scenes + [scenes[0]] * (n - len(problems))), mesh)
    return stage1.optimize_scenes(problems, scene_b, put=lambda tree: sharding.shard(tree, mesh),
                                  get=sharding.to_host, resume=resume, on_chunk=on_chunk, progress=progress)


def progress_from_arrays(arrays: dict, key: BucketKey) -> Progress:
    """A Stage I progress of bucket `key` from its checkpoint arrays (checkpoint.progress_arrays)."""
    return checkpoint.progress_from_arrays(arrays, stage1.init_state(key.stage1, key.num_parts))
