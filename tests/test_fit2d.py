"""The checkpoint-free body fit (arthoi_jax/body/fit2d.py) on a synthetic person with known parameters, and on
frames of a real generated clip."""

from pathlib import Path

import jax
import numpy as np
import pytest

from arthoi_jax.body import fit2d
from arthoi_jax.body.model import BodyParams, forward_sequence, params_from_smplx
from arthoi_jax.config import BodyConfig
from arthoi_jax.interaction_metrics import pa_mpjpe
from arthoi_jax.io.body_model_file import load_body_model

K = np.array([[500.0, 0.0, 256.0], [0.0, 500.0, 256.0], [0.0, 0.0, 1.0]])
REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"


@pytest.fixture(scope="module")
def model():
    return load_body_model(BodyConfig())


def posed_person(model, T=4, seed=0):
    """A person ~3 m in front of the camera, facing it, turning slowly, with a random (smooth) pose."""
    rng = np.random.default_rng(seed)
    pose = rng.normal(0, 0.1, (1, 21, 3)) + rng.normal(0, 0.02, (T, 21, 3))
    go = np.tile([np.pi, 0.0, 0.0], (T, 1))
    go[:, 1] += np.linspace(-0.3, 0.3, T)
    transl = np.tile([0.1, 0.3, 3.0], (T, 1))
    transl[:, 0] += np.linspace(0.0, 0.3, T)
    p = BodyParams.zeros(model, T).replace(
        betas=np.float32(rng.normal(0, 0.5, model.num_betas)), global_orient=np.float32(go),
        body_pose=np.float32(pose), transl=np.float32(transl))  # fmt: skip
    return p


def joints_of(model, p):
    return np.asarray(jax.vmap(fit2d.mapped_joints, in_axes=(None, None, 0, 0, 0))(
        model, p.betas, p.global_orient, p.body_pose, p.transl))  # fmt: skip


def test_mapped_joints_match_the_full_forward_pass(model):
    p = posed_person(model, T=2)
    full = np.asarray(forward_sequence(model, p).joints)[:, fit2d.JOINT_IDS]
    np.testing.assert_allclose(joints_of(model, p), full, atol=1e-5)


def test_fit_recovers_a_synthetic_person(model):
    """Landmarks = projected joints + 1 px noise; the height prior is told the true height. Monocular 2D leaves
    a lean towards the camera traded against depth (measured: PA-MPJPE ~95 mm, pelvis depth ~0.4 m = 13 % short
    at 3 m, 2.3 px reprojection), so the bounds here are the fit's, not a 3D-accurate HMR's."""
    T = 4
    p = posed_person(model, T)
    J = joints_of(model, p)
    rng = np.random.default_rng(1)
    lm, conf = np.zeros((T, 33, 2)), np.zeros((T, 33))
    lm[:, fit2d.LANDMARK_IDS] = np.asarray(fit2d.project(K, J)) + rng.normal(0, 1.0, (T, 21, 2))
    conf[:, fit2d.LANDMARK_IDS] = 0.9
    height = float(fit2d.body_height(model, p.betas))
    r = fit2d.fit_body_to_landmarks(model, lm, conf, K, (512, 512),
                                    fit2d.FitSettings(steps=200, body_height_m=height))
    assert r.body_found.all() and r.mean_reprojection_px < 2.5
    assert abs(r.height_m - height) < 0.05
    Jh = r.joints3d
    pa = pa_mpjpe(Jh, J) / 1000  # metres
    hips = lambda X: X - X[:, 11:13].mean(1, keepdims=True)
    mpjpe = np.linalg.norm(hips(Jh) - hips(J), axis=-1).mean()
    depth_err = np.abs(Jh[:, 11:13, 2].mean(1) - J[:, 11:13, 2].mean(1)).max()
    print(f"synthetic person: PA-MPJPE {1000 * pa:.1f} mm, hip-aligned MPJPE {1000 * mpjpe:.1f} mm, "
          f"depth error {depth_err:.3f} m, reprojection {r.mean_reprojection_px:.2f} px")
    assert pa < 0.12 and mpjpe < 0.35 and depth_err < 0.5


def test_smplx_params_moved_into_the_world_by_the_extrinsics(model):
    """A body fitted in camera t, moved with T_cam_world's inverse, lands where camera t saw it."""
    T = 2
    p = posed_person(model, T)
    J_cam = np.asarray(forward_sequence(model, p).joints)
    fit = fit2d.FitResult(p, joints_of(model, p), np.zeros((T, 21, 2)), np.zeros(T), np.ones(T, bool), 1.7,
                          np.asarray(fit2d.rest_joints(model, p.betas, p.expression[0])[0]))
    T_cw = np.tile(np.eye(4), (T, 1, 1))
    c, s = np.cos(0.2), np.sin(0.2)
    T_cw[1, :3, :3] = [[c, 0, s], [0, 1, 0], [-s, 0, c]]
    T_cw[1, :3, 3] = [0.3, -0.1, 0.2]
    world = fit2d.to_smplx_params(fit, T_cw, num_expression=model.num_expression)
    J_world = np.asarray(forward_sequence(model, params_from_smplx(model, world)).joints)
    back = np.einsum("tij,tnj->tni", T_cw[:, :3, :3], J_world) + T_cw[:, None, :3, 3]
    np.testing.assert_allclose(back, J_cam, atol=1e-4)


@pytest.mark.skipif(not (REAL / "truck_kling.mp4").is_file(), reason="the shared real clips are not on this machine")
def test_fit_to_mediapipe_landmarks_on_a_real_clip(model):
    pytest.importorskip("mediapipe", reason="human perception needs mediapipe==0.10.14 (requirements.txt)")
    from arthoi_jax.io.video import read_video
    from arthoi_jax.preprocess.mediapipe_human import perceive_human

    v = read_video(REAL / "truck_kling.mp4", width=512, max_frames=3, frame_step=10)
    h = perceive_human(v.frames, detect_hands=False)
    f = 0.5 * 512 / np.tan(np.deg2rad(55.0) / 2)
    Kr = np.array([[f, 0, 256.0], [0, f, 256.0], [0, 0, 1]])
    r = fit2d.fit_body_to_landmarks(model, h.body_landmarks, h.body_conf, Kr, (512, 512),
                                    fit2d.FitSettings(steps=100))
    print(f"truck, {len(v.frames)} frames: mean reprojection {r.mean_reprojection_px:.2f} px")
    assert r.body_found.all() and r.mean_reprojection_px < 6.0
    assert 1.5 < np.median(r.joints3d[:, 11:13, 2]) < 6.0  # a person a few metres away, not at the camera
