"""Stage I optimization: Eq. 4 motion, the jitted step (compile once, vmap over scenes, NaN guard, early
stopping) and a tiny end-to-end run against ground truth."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from arthoi_jax import stage1
from arthoi_jax.config import RenderConfig, SegmentationConfig, Stage1Config
from arthoi_jax.errors import OptimizationError
from arthoi_jax.metrics import rotation_errors_deg
from arthoi_jax.segmentation import segment
from tests.stage1_scene import make_scene

SEG_CFG = SegmentationConfig(gaussian_stride=3)
RENDER = RenderConfig()
# Every test runs the jitted step with this config and chunk length, so they share one compile.
CFG = Stage1Config(iters_per_frame=20, steps_per_chunk=10, render_downsample=3, early_stop_patience=5)


def _setup(kind="door", T=5):
    if kind == "door":
        b = make_scene(kind, 96, 72, T, max_value=np.deg2rad(35.0))
    else:  # seen from the side so that 35 cm show as ~8 px
        b = make_scene(kind, 96, 72, T, max_value=0.35, yaw_deg=45.0)
    seg = segment(b.frames, b.object_masks, b.depth, b.K, b.tracks, b.visibility, SEG_CFG)
    return b, seg


@pytest.fixture(scope="module")
def door():
    return _setup("door")


def _frame(b, seg, scene, t, cfg=CFG):
    init, _, _ = stage1.initial_poses(seg, b.tracks, b.visibility, b.K, cfg)
    H, W = b.image_size
    images, masks = stage1.frame_arrays(b.frames, b.object_masks, stage1.render_size(H, W, cfg.render_downsample))
    M = scene.track_points.shape[0]
    return stage1.Stage1Frame(
        image=jnp.asarray(images[t]), mask=jnp.asarray(masks[t]),
        tracks=jnp.asarray(stage1.pad_rows(b.tracks[t], M)), track_vis=jnp.asarray(stage1.pad_rows(b.visibility[t], M)),
        init_pose=jnp.asarray(init[t], jnp.float32), init_value=jnp.zeros(seg.num_parts, jnp.float32),
        prev_poses=jnp.asarray(np.stack([init[t - 1], init[max(t - 2, 0)]]), jnp.float32),
        smooth_valid=jnp.bool_(t >= 2))


def test_eq4_blends_means_by_weight_and_turns_orientations_with_the_dominant_part(door):
    b, seg = door
    scene = stage1.build_scene(seg, b.K, b.image_size, CFG, 0.05)
    G = 3
    scene = scene.replace(
        gaussians=jax.tree.map(lambda x: x[:G], scene.gaussians), valid=scene.valid[:G],
        weights=jnp.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]), part_of=jnp.array([0, 1, 1]))
    pose = np.eye(4)
    pose[:3, :3] = np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1.0]])  # 90 deg about z
    pose[:3, 3] = [0.1, 0.2, 0.3]
    g = stage1.move_gaussians(scene, jnp.asarray(pose[None], jnp.float32))
    mu0 = np.asarray(scene.gaussians.means)
    moved = mu0 @ pose[:3, :3].T + pose[:3, 3]
    np.testing.assert_allclose(g.means[0], mu0[0], atol=1e-6)
    np.testing.assert_allclose(g.means[1], moved[1], atol=1e-6)
    np.testing.assert_allclose(g.means[2], 0.5 * (mu0[2] + moved[2]), atol=1e-6)
    np.testing.assert_allclose(np.abs(g.quats[1]), [np.sqrt(0.5), 0, 0, np.sqrt(0.5)], atol=1e-6)
    np.testing.assert_allclose(g.quats[0], [1, 0, 0, 0], atol=1e-6)


def test_steps_compile_once_across_chunks_and_frames(door):
    b, seg = door
    scene = stage1.build_scene(seg, b.K, b.image_size, CFG, 0.05)
    run = lambda state, t: stage1.run_steps_jit(state, scene, _frame(b, seg, scene, t), cfg=CFG,
                                                render_cfg=RENDER, num_steps=CFG.steps_per_chunk)
    state, losses = run(stage1.init_state(CFG, seg.num_parts), 1)
    compiled = stage1.run_steps_jit._cache_size()
    for t in (2, 3, 4):
        state = stage1.init_state(CFG, seg.num_parts)
        for _ in range(2):
            state, losses = run(state, t)
    assert stage1.run_steps_jit._cache_size() == compiled
    assert losses.shape == (CFG.steps_per_chunk,)


def test_vmap_over_two_scenes_matches_running_them_one_by_one(door):
    scenes, frames = [], []
    for b, seg in (door, _setup("drawer")):
        sc = stage1.build_scene(seg, b.K, b.image_size, CFG, 0.05)
        scenes.append(sc)
        frames.append(_frame(b, seg, sc, 3))
    assert jax.tree.map(jnp.shape, scenes[0]) == jax.tree.map(jnp.shape, scenes[1])  # same padded shapes
    state = stage1.init_state(CFG, 1)
    run = lambda s, sc, fr: stage1.run_steps(s, sc, fr, CFG, RENDER, CFG.steps_per_chunk)
    stack = lambda xs: jax.tree.map(lambda *a: jnp.stack(a), *xs)
    batched, batched_losses = jax.jit(jax.vmap(run))(stack([state, state]), stack(scenes), stack(frames))
    for i in range(2):
        single, single_losses = stage1.run_steps_jit(state, scenes[i], frames[i], cfg=CFG, render_cfg=RENDER,
                                                     num_steps=CFG.steps_per_chunk)
        np.testing.assert_allclose(batched.params[i], single.params, atol=1e-6)
        np.testing.assert_allclose(batched_losses[i], single_losses, rtol=1e-4)
    assert not np.allclose(batched_losses[0], batched_losses[1])


def test_nan_in_tracks_stops_with_stage_frame_step_and_quantity(door):
    b, seg = door
    bad = dataclasses.replace(seg, track_points=seg.track_points.copy())
    bad.track_points[np.nonzero(seg.track_labels == 1)[0][0]] = np.nan
    with pytest.raises(OptimizationError, match=r"stage1: non-finite tracking and gradient at frame 1, step 0"):
        stage1.optimize(b.frames, b.object_masks, b.tracks, b.visibility, b.K, bad, CFG, RENDER, 0.05,
                        progress=False)


def test_nan_guard_freezes_parameters_in_the_step(door):
    b, seg = door
    scene = stage1.build_scene(seg, b.K, b.image_size, CFG, 0.05)
    frame = _frame(b, seg, scene, 2)
    frame = frame.replace(image=frame.image.at[3, 3, 0].set(jnp.nan))
    state, _ = stage1.run_steps_jit(stage1.init_state(CFG, 1), scene, frame, cfg=CFG, render_cfg=RENDER,
                                    num_steps=CFG.steps_per_chunk)
    assert int(state.bad_step) == 0 and bool(state.done) and int(state.step) == 0
    assert np.asarray(state.bad_what)[:5].tolist() == [True, False, False, False, False]  # the rgb term
    np.testing.assert_array_equal(state.params, 0.0)


def test_early_stopping_after_patience_without_improvement(door):
    b, seg = door
    scene = stage1.build_scene(seg, b.K, b.image_size, CFG, 0.05)
    state = stage1.init_state(CFG, 1).replace(best=jnp.float32(-1.0))  # no loss >= 0 can improve on it
    state, _ = stage1.run_steps_jit(state, scene, _frame(b, seg, scene, 1), cfg=CFG, render_cfg=RENDER,
                                    num_steps=CFG.steps_per_chunk)
    assert int(state.step) == CFG.early_stop_patience and bool(state.done)


@pytest.mark.parametrize("articulation", ["free_se3", "revolute"])
def test_tiny_door_recovers_the_rotation(door, articulation):
    b, seg = door
    cfg = dataclasses.replace(CFG, articulation=articulation)
    res = stage1.optimize(b.frames, b.object_masks, b.tracks, b.visibility, b.K, seg, cfg, RENDER, 0.05,
                          progress=False)
    err = rotation_errors_deg(res.poses[1:, 0, :3, :3], b.gt.part_poses[1:, 0, :3, :3])
    assert err.max() < 1.0, err
    assert res.joints[0].joint_type == "revolute"
    assert np.rad2deg(np.arccos(abs(res.joints[0].axis @ b.gt.axes[0]))) < 2.0
    assert np.all(res.iterations[1:] >= 1) and np.all(res.iterations <= cfg.iters_per_frame)
