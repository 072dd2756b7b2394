"""Stage II of many scenes as one jitted, vmapped program sharded over devices (no IO).

Scenes of a bucket (`Stage2BucketKey`) share the Stage II and render configs, the body model, the render size,
the part count and the surface-point count; their frames, object Gaussians, tracks and binding pairs are padded
to the bucket's sizes (`pad_data`). Padding changes nothing: padded frames come last and are marked invalid in
Stage2Data.frame_valid, and the random window of `window_frames` frames is drawn inside the valid frames, so no
per-frame sum sees them; padded Gaussians are invalid (culled, never surface points); padded tracks are
invisible. A scene with fewer frames than the window (or window_frames 0: every frame) is bucketed by its exact
frame count instead, so that its window is the one it has alone.

The loop is `arthoi_jax.stage2.optimize_scenes`, the same one a single-scene run uses (`stage2.optimize` is its
one-scene case); this module adds what a batch needs around it: the bucket of a scene, the scenes padded to the
bucket's sizes and stacked (device-count padding slots: copies whose results are dropped), the scene axis sharded
over a Mesh (sharding.py), and the loop's progress restored from a checkpoint (`progress_from_arrays`; `on_chunk`
hands it to the checkpointer after every chunk). The body model is shared, not copied per scene. A scene whose
loss or gradient becomes non-finite fails alone with the OptimizationError stage2.optimize would raise.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Callable

import jax
import numpy as np

from arthoi_jax import stage1, stage2
from arthoi_jax.batch import checkpoint, sharding
from arthoi_jax.batch.padding import bucket_size, pad_scene
from arthoi_jax.body.model import BodyModel
from arthoi_jax.config import BodyConfig, RenderConfig, Stage2Config
from arthoi_jax.errors import OptimizationError

Progress = stage2.Progress  # see stage2.new_progress


@dataclasses.dataclass(frozen=True)
class Stage2BucketKey:
    """What scenes must share to run Stage II in one program (hashable; also names the checkpoint folder)."""

    stage2: Stage2Config
    render: RenderConfig
    body: BodyConfig
    render_hw: tuple[int, int]
    num_frames: int  # padded
    num_parts: int
    num_gaussians: int  # padded
    num_tracks: int  # padded
    num_pairs: int  # padded
    surface_points: int

    def label(self) -> str:
        """e.g. s2_16x12_T16_P1_G512_M512_E256_S64_cfg3f2a1c (cfg: a digest of the configs)."""
        h, w = self.render_hw
        cfg = hashlib.sha1(repr((self.stage2, self.render, self.body)).encode()).hexdigest()[:6]
        return (f"s2_{w}x{h}_T{self.num_frames}_P{self.num_parts}_G{self.num_gaussians}_M{self.num_tracks}_"
                f"E{self.num_pairs}_S{self.surface_points}_cfg{cfg}")


def frame_bucket(num_frames: int, window_frames: int) -> int:
    """The padded frame count: the next power of two, or exactly num_frames when the window would not fit in
    the valid frames (window_frames 0, or more than num_frames)."""
    if window_frames == 0 or num_frames < window_frames:
        return num_frames
    return 2 ** math.ceil(math.log2(num_frames))


def bucket_key(data: stage2.Stage2Data, cfg: Stage2Config, render_cfg: RenderConfig, body: BodyConfig,
               buckets: tuple[int, ...] = ()) -> Stage2BucketKey:
    """The bucket of a scene's (unpadded) Stage2Data; buckets: batch.size_buckets for Gaussians, tracks, pairs."""
    obj = data.obj
    return Stage2BucketKey(
        stage2=cfg, render=render_cfg, body=body, render_hw=tuple(data.images.shape[1:3]),
        num_frames=frame_bucket(data.images.shape[0], cfg.window_frames), num_parts=data.object_poses.shape[1],
        num_gaussians=bucket_size(obj.valid.shape[0], buckets), num_tracks=bucket_size(obj.track_points.shape[0],
                                                                                      buckets),
        num_pairs=bucket_size(obj.pairs.shape[0], buckets), surface_points=data.surface_idx.shape[0])


def _pad_axis(x, n: int, axis: int = 0, fill=0) -> np.ndarray:
    x = np.asarray(x)
    return np.moveaxis(stage1.pad_rows(np.moveaxis(x, axis, 0), n, fill), 0, axis)


def _pad_init(init, T: int):
    """BodyParams [T0] -> [T]: every per-frame field padded with zeros (the rest pose), betas kept."""
    return init.replace(**{f.name: _pad_axis(getattr(init, f.name), T) for f in dataclasses.fields(init)
                           if f.name != "betas"})


def pad_data(data: stage2.Stage2Data, key: Stage2BucketKey) -> stage2.Stage2Data:
    """A scene's Stage2Data padded to the bucket's frames, Gaussians, tracks and pairs (numpy leaves; the model
    left out: None)."""
    T, G = key.num_frames, key.num_gaussians
    frames = {k: _pad_axis(getattr(data, k), T) for k in ("images", "human_masks", "keypoints", "keypoint_weights",
                                                          "hand_contact", "foot_contact")}
    eye = np.broadcast_to(np.eye(4, dtype=np.float32), (1,) + data.object_poses.shape[1:])
    poses = np.concatenate([np.asarray(data.object_poses), np.repeat(eye, T - data.object_poses.shape[0], 0)])
    cams = np.asarray(data.T_cam_world)
    cams = np.concatenate([cams, np.repeat(np.eye(4, dtype=cams.dtype)[None], T - len(cams), 0)])  # padding: static
    return data.replace(
        model=None, init=_pad_init(data.init, T), template=jax.tree.map(np.asarray, data.template),
        obj=pad_scene(data.obj, G, key.num_tracks, key.num_pairs), object_poses=poses,
        object_colors=_pad_axis(data.object_colors, G),
        tracks=_pad_axis(_pad_axis(data.tracks, key.num_tracks, 1), T),
        track_vis=_pad_axis(_pad_axis(data.track_vis, key.num_tracks, 1, False), T, 0, False),
        frame_valid=_pad_axis(data.frame_valid, T, 0, False), T_cam_world=cams,
        **{k: np.asarray(getattr(data, k)) for k in ("K_render", "surface_idx", "surface_normals0", "foot_vertices",
                                                      "body_points")},
        **frames)


TRACE_COUNT = stage2.TRACE_COUNT  # compiles of the batched step program
run_steps_batched = stage2.run_steps_batched


def initial_progress(datas: list[stage2.Stage2Data], key: Stage2BucketKey, num_slots: int, seed: int = 0) -> Progress:
    """stage2.new_progress of these scenes (unpadded Stage2Data) in bucket `key` with num_slots slots."""
    return stage2.new_progress(datas, key.num_frames, num_slots, key.stage2, seed)


def progress_from_arrays(arrays: dict, data: stage2.Stage2Data, key: Stage2BucketKey) -> Progress:
    """A Stage II progress of bucket `key` (data: any of its scenes) from its checkpoint arrays
    (checkpoint.progress_arrays)."""
    return checkpoint.progress_from_arrays(arrays, initial_progress([data], key, 1)["state"])


def optimize_batch(datas: list[stage2.Stage2Data], key: Stage2BucketKey, model: BodyModel,
                   mesh: jax.sharding.Mesh, *, seed: int = 0, resume: Progress | None = None,
                   on_chunk: Callable[[Progress, int], None] | None = None,
                   progress: bool = True) -> list[stage2.Stage2Result | OptimizationError]:
    """Stage II of every scene (Stage2Data of bucket `key`, as stage2_init.prepare builds them, all of `model`) in one
    vmapped program sharded over `mesh`: the scenes padded to the bucket, the slot count rounded up to a multiple
    of the device count, then stage2.optimize_scenes (see there for on_chunk and resume).
    Returns, per scene, its Stage2Result (as stage2.optimize with this seed) or its OptimizationError."""
    n = sharding.padded_scene_count(len(datas), mesh)
    padded = [pad_data(d, key) for d in datas]
    data_b = sharding.shard(stage1.stack_trees(padded + [padded[0]] * (n - len(datas))), mesh)
    return stage2.optimize_scenes(datas, data_b, model, key.stage2, key.render, seed=seed,
                                  put=lambda tree: sharding.shard(tree, mesh), get=sharding.to_host, resume=resume,
                                  on_chunk=on_chunk, progress=progress)
