"""Stage II optimization on a tiny problem, and human_motion.npz against smplx (PyTorch)."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from arthoi_jax import stage2, stage2_init
from arthoi_jax.body import joint_names as jn
from arthoi_jax.body.model import BodyParams, forward_sequence
from arthoi_jax.config import BodyConfig
from arthoi_jax.errors import OptimizationError
from arthoi_jax.io.body_model_file import license_free_model_file, load_body_model
from arthoi_jax.io.human_motion import load_human_motion, save_human_motion
from tests.stage2_scene import FAST, RENDER, T, problem


@pytest.fixture(scope="module")
def model():
    return load_body_model(BodyConfig())


def wrist_error(res, target):
    return np.linalg.norm(res.joints[:, jn.joint_index("right_wrist")] - target, axis=-1).mean()


# Without the render loss: one compile shared by the optimization tests (they change data, not the config).
NO_RENDER = dataclasses.replace(FAST, window_frames=0, use_render_loss=False)


def test_stage2_pulls_the_wrist_to_its_contact_keypoint_and_compiles_once(model):
    data, target = problem(model, NO_RENDER)
    before = np.linalg.norm(np.asarray(forward_sequence(model, data.init).joints[:, jn.joint_index("right_wrist")])
                            - target, axis=-1).mean()
    n0 = stage2.TRACE_COUNT["steps"]
    res = stage2.optimize(data, NO_RENDER, RENDER, progress=False)
    assert stage2.TRACE_COUNT["steps"] == n0 + 1  # two chunks, one compile
    assert res.losses.shape == (NO_RENDER.iters,) and np.all(np.isfinite(res.losses))
    assert before == pytest.approx(0.1, abs=1e-4)
    assert wrist_error(res, target) < 0.5 * before
    assert res.vertices.shape == (T, model.num_vertices, 3)


def test_the_alignment_closes_the_keypoints_depth_gap_along_the_viewing_ray(model):
    data, target = problem(model, NO_RENDER)
    p0 = stage2.initial_params(data.init, 1)
    p1 = stage2.align_to_keypoints(p0, data)
    wrist = [np.asarray(stage2.human_in_scene(p, data)[1])[:, jn.joint_index("right_wrist")] for p in (p0, p1)]
    ray = target / np.linalg.norm(target)
    np.testing.assert_allclose(np.cross(np.asarray(p1.offset), ray), 0.0, atol=1e-6)  # moved along the ray ...
    assert np.dot(ray, target - wrist[0][0]) == pytest.approx(0.1 * ray[2], rel=1e-3)
    np.testing.assert_allclose((target - wrist[1]) @ ray, 0.0, atol=1e-5)  # ... until no depth gap is left
    assert np.linalg.norm(target - wrist[1], axis=-1).max() < 0.5 * np.linalg.norm(target - wrist[0], axis=-1).min()
    none = data.replace(keypoint_weights=jnp.zeros_like(data.keypoint_weights))
    assert float(jnp.abs(stage2.align_to_keypoints(p0, none).offset).max()) == 0.0


def test_the_alignment_ignores_a_minority_of_keypoints_at_a_wrong_depth(model):
    data, target = problem(model, NO_RENDER)
    p0 = stage2.initial_params(data.init, 1)
    clean = stage2.align_to_keypoints(p0, data)
    ray = target / np.linalg.norm(target)
    kp = np.asarray(data.keypoints).copy()
    kw = np.asarray(data.keypoint_weights).copy()
    kp[:2, 22], kw[:2, 22] = target + 0.5 * ray, 1.0  # right thumb lifted 50 cm too deep on 2 of 6 frames
    moved = stage2.align_to_keypoints(p0, data.replace(keypoints=jnp.asarray(kp), keypoint_weights=jnp.asarray(kw)))
    assert float(jnp.linalg.norm(clean.offset)) == pytest.approx(0.1 * ray[2], rel=1e-3)
    np.testing.assert_allclose(np.asarray(moved.offset), np.asarray(clean.offset), atol=0.005)


def test_object_depth_of_the_moving_parts_leaves_out_the_static_body(model):
    from tests.stage2_scene import H, K, W

    data, _ = problem(model, NO_RENDER)
    poses = np.tile(np.eye(4), (1, 1, 1, 1))
    a_all, z_all = stage2_init.object_depth(data.obj, poses, K, (H, W), 4, RENDER)
    a_mov, z_mov = stage2_init.object_depth(data.obj, poses, K, (H, W), 4, RENDER, moving_only=True)
    static = data.obj.replace(part_of=jnp.zeros_like(data.obj.part_of))  # the same plane as the static body
    a_static, _ = stage2_init.object_depth(static, poses, K, (H, W), 4, RENDER, moving_only=True)
    assert a_all.max() > 0.5
    np.testing.assert_allclose(a_mov, a_all, atol=1e-6)
    np.testing.assert_allclose(z_mov, z_all, atol=1e-6)
    assert a_static.max() == 0.0


def test_the_render_loss_sees_the_body_occluded_by_the_object(model):
    data, _ = problem(model, FAST)
    params = stage2.initial_params(data.init, 1)
    verts, _ = stage2.human_in_scene(params, data)
    rgb, sil = jax.jit(stage2._render_frames, static_argnames="render_cfg")(
        verts, data.object_poses, data, jnp.array([0]), render_cfg=RENDER)
    assert rgb.shape == (1, 12, 16, 3) and float(sil.max()) > 0.9  # the body is drawn ...
    far = data.replace(object_poses=data.object_poses.at[:, :, 2, 3].add(-1.0))  # object 1 m closer, in front
    _, sil_hidden = jax.jit(stage2._render_frames, static_argnames="render_cfg")(
        verts, far.object_poses, far, jnp.array([0]), render_cfg=RENDER)
    assert float(sil_hidden.sum()) < float(sil.sum())  # ... and hidden where the object is in front of it


def test_without_keypoints_and_contact_frames_the_wrist_stays(model):
    data, target = problem(model, NO_RENDER)
    data = data.replace(keypoint_weights=jnp.zeros_like(data.keypoint_weights),
                        hand_contact=jnp.zeros_like(data.hand_contact))
    res = stage2.optimize(data, NO_RENDER, RENDER, progress=False)
    assert wrist_error(res, target) > 0.08


def test_a_non_finite_keypoint_stops_with_an_optimization_error(model):
    data, _ = problem(model, NO_RENDER)
    data = data.replace(keypoints=data.keypoints.at[0, 21, 0].set(jnp.nan))
    with pytest.raises(OptimizationError, match=r"stage2: non-finite .*kinematic.* at step 0"):
        stage2.optimize(data, NO_RENDER, RENDER, progress=False)


def test_human_motion_npz_reproduces_our_vertices_in_smplx(model, tmp_path):
    torch = pytest.importorskip("torch")
    smplx = pytest.importorskip("smplx")
    rng = np.random.default_rng(0)
    p = BodyParams.zeros(model, 3)
    p = p.replace(betas=jnp.asarray(rng.normal(size=10), jnp.float32),
                  global_orient=jnp.asarray(rng.normal(size=(3, 3)), jnp.float32),
                  body_pose=jnp.asarray(0.4 * rng.normal(size=(3, 21, 3)), jnp.float32),
                  right_hand_pose=jnp.asarray(0.3 * rng.normal(size=(3, 15, 3)), jnp.float32),
                  transl=jnp.asarray(rng.normal(size=(3, 3)), jnp.float32))
    save_human_motion(tmp_path, jax.tree.map(np.asarray, p), 1.1, np.array([0.1, 0.2, 0.3]), fps=30.0,
                      up=np.array([0.0, -1.0, 0.0]), flat_hand_mean=True, gender="neutral", model_file="lf")
    a = load_human_motion(tmp_path)
    path = license_free_model_file()
    m = smplx.SMPLX(str(path), ext="npz", num_betas=a["betas"].shape[1],
                    num_expression_coeffs=a["expression"].shape[1], use_pca=False, flat_hand_mean=True, batch_size=3)
    with torch.no_grad():
        out = m(**{k: torch.tensor(np.tile(a[k], (3, 1)) if k == "betas" else a[k]) for k in (
            "betas", "global_orient", "body_pose", "left_hand_pose", "right_hand_pose", "jaw_pose", "leye_pose",
            "reye_pose", "expression", "transl")})
    ours = np.asarray(forward_sequence(model, p).vertices)
    np.testing.assert_allclose(out.vertices.numpy(), ours, rtol=0, atol=1e-5)
    assert a["body_pose"].shape == (3, 63) and a["betas"].shape == (1, 10)
    assert float(a["scene_scale"]) == pytest.approx(1.1)


def test_foot_sliding_and_smoothness_do_not_pull_the_scene_scale(model):
    # Measured on the scene's scaled body, both terms shrink with the scale: the body slid towards the camera to
    # slow its feet (drawer_hoi, the interaction terms off: scale 0.95, pelvis 8.9 cm nearer). In the body's own
    # metres the scale is left to the terms that see the scene.
    cfg = dataclasses.replace(NO_RENDER, use_prior_loss=False, use_kinematic_loss=False, use_contact_loss=False,
                              use_penetration_loss=False)
    data, _ = problem(model, cfg)
    p = stage2.initial_params(data.init, 1)
    walk = jnp.linspace(0.0, 0.1, T)[:, None] ** 2 * jnp.array([1.0, 0.0, 0.5])  # feet and joints accelerate
    p = p.replace(transl=p.transl + walk)
    key = jax.random.PRNGKey(0)
    names = list(stage2.TERMS)
    foot, smooth = names.index("foot"), names.index("smooth")

    def terms(log_scale):
        return stage2.loss_terms(p.replace(log_scale=log_scale), data, key, cfg, RENDER)[jnp.array([foot, smooth])]

    t0 = terms(jnp.float32(0.0))
    assert np.all(np.asarray(t0) > 0)
    np.testing.assert_allclose(terms(jnp.float32(np.log(0.9))), t0, rtol=1e-4)
    np.testing.assert_allclose(jax.jacobian(terms)(jnp.float32(0.0)), 0.0, atol=1e-6 * float(t0.max()))


def test_the_depth_anchor_holds_the_pelvis_depth_of_the_start(model):
    cfg = dataclasses.replace(NO_RENDER, use_prior_loss=False, use_kinematic_loss=False, use_contact_loss=False,
                              use_penetration_loss=False, use_foot_loss=False, use_smoothness_loss=False,
                              lambda_depth=1e4)
    data, _ = problem(model, cfg)
    p = stage2.initial_params(data.init, 1)
    key = jax.random.PRNGKey(0)
    depth = list(stage2.TERMS).index("depth")
    assert float(stage2.loss_terms(p, data, key, cfg, RENDER)[depth]) == 0.0
    sideways = p.replace(transl=p.transl + jnp.array([0.2, -0.1, 0.0]))
    assert float(stage2.loss_terms(sideways, data, key, cfg, RENDER)[depth]) == pytest.approx(0.0, abs=1e-6)
    nearer = p.replace(log_scale=jnp.float32(np.log(0.98)))  # the whole body 2 % nearer the camera centre
    z = np.asarray(forward_sequence(model, data.init).joints[:, 0, 2])
    expected = 1e4 * np.sum((0.02 * z) ** 2)
    assert float(stage2.loss_terms(nearer, data, key, cfg, RENDER)[depth]) == pytest.approx(expected, rel=1e-3)
