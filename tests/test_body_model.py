"""The JAX SMPL-X forward against smplx 0.1.28 (PyTorch), and its own properties.

Parity runs on the license-free body, and on a licensed model when SMPLX_MODEL_PATH points at one
(a .npz/.pkl file or a folder with SMPLX_NEUTRAL.npz).
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from arthoi_jax.body import joint_names as jn
from arthoi_jax.body import lbs
from arthoi_jax.body.model import BodyModel, BodyParams, forward, forward_sequence, params_from_smplx, repose
from arthoi_jax.io.body_model_file import (
    license_free_model_file,
    read_model_arrays,
    resolve_model_file,
    write_model_file,
)
from arthoi_jax.io.bundle import SmplxParams

torch = pytest.importorskip("torch")
smplx = pytest.importorskip("smplx")

TOL_M = 1e-5  # vertices and joints, float32


@pytest.fixture(scope="module")
def lf_arrays(tmp_path_factory):
    return read_model_arrays(license_free_model_file(tmp_path_factory.getbasetemp() / "body_cache"))


@pytest.fixture(scope="module", params=["license_free", "real"])
def model_file(request, tmp_path_factory, lf_arrays):
    if request.param == "real":
        path = os.environ.get("SMPLX_MODEL_PATH")
        if not path:
            pytest.skip("SMPLX_MODEL_PATH is not set: no licensed SMPL-X model to compare on")
        return resolve_model_file(path)
    # The license-free contour table repeats one row for every yaw; vary the rows so the yaw lookup is tested.
    arrays = dict(lf_arrays)
    rng = np.random.default_rng(7)
    F = len(arrays["f"])
    arrays["dynamic_lmk_faces_idx"] = rng.integers(0, F, size=arrays["dynamic_lmk_faces_idx"].shape)
    b = rng.random(arrays["dynamic_lmk_bary_coords"].shape).astype(np.float32)
    arrays["dynamic_lmk_bary_coords"] = b / b.sum(-1, keepdims=True)
    return write_model_file(tmp_path_factory.mktemp("lf_varied") / "SMPLX_NEUTRAL.npz", arrays)


def random_params(rng, T, hand_shape, num_betas=10, num_expression=10, scale=0.6):
    p = dict(
        betas=rng.normal(size=(num_betas,)), expression=rng.normal(size=(T, num_expression)),
        global_orient=rng.normal(size=(T, 3)), body_pose=scale * rng.normal(size=(T, 21, 3)),
        jaw_pose=0.3 * rng.normal(size=(T, 3)), leye_pose=0.3 * rng.normal(size=(T, 3)),
        reye_pose=0.3 * rng.normal(size=(T, 3)), left_hand_pose=scale * rng.normal(size=(T,) + hand_shape),
        right_hand_pose=scale * rng.normal(size=(T,) + hand_shape), transl=rng.normal(size=(T, 3)),
    )  # fmt: skip
    return {k: v.astype(np.float32) for k, v in p.items()}


def smplx_reference(path, p, **kw):
    T = p["global_orient"].shape[0]
    m = smplx.SMPLX(str(path), ext=path.suffix[1:], num_betas=len(p["betas"]),
                    num_expression_coeffs=p["expression"].shape[1], batch_size=T, **kw)  # fmt: skip
    t = {k: torch.tensor(np.tile(v, (T, 1)) if k == "betas" else v.reshape(T, -1)) for k, v in p.items()}
    with torch.no_grad():
        out = m(**t)
    return out.vertices.numpy(), out.joints.numpy()


CASES = {
    "full_hands": dict(use_pca=False, flat_hand_mean=True, use_face_contour=False),
    "full_hands_mean_contour": dict(use_pca=False, flat_hand_mean=False, use_face_contour=True),
    "pca6_hands_mean_contour": dict(use_pca=True, num_pca_comps=6, flat_hand_mean=False, use_face_contour=True),
    "pca12_flat": dict(use_pca=True, num_pca_comps=12, flat_hand_mean=True, use_face_contour=False),
}


@pytest.mark.parametrize("case", list(CASES))
def test_forward_matches_smplx(model_file, case):
    kw = CASES[case]
    model = BodyModel.from_arrays(read_model_arrays(model_file), **kw)
    hand_shape = (kw["num_pca_comps"],) if kw["use_pca"] else (15, 3)
    p = random_params(np.random.default_rng(len(case)), 8, hand_shape)
    ref_v, ref_j = smplx_reference(model_file, p, **kw)
    out = forward_sequence(model, BodyParams(**{k: jnp.asarray(v) for k, v in p.items()}))
    assert out.joints.shape == ref_j.shape == (8, len(jn.output_joint_names(kw["use_face_contour"])), 3)
    np.testing.assert_allclose(np.asarray(out.vertices), ref_v, rtol=0, atol=TOL_M)
    np.testing.assert_allclose(np.asarray(out.joints), ref_j, rtol=0, atol=TOL_M)


def test_contour_rows_follow_head_yaw(model_file):
    """Turning the head left and right picks different contour rows (compared to smplx above, checked here)."""
    model = BodyModel.from_arrays(read_model_arrays(model_file), use_face_contour=True)
    p = BodyParams.zeros(model, 2)
    neck = jn.SKELETON.index("neck") - 1
    p = p.replace(body_pose=p.body_pose.at[0, neck, 1].set(0.5).at[1, neck, 1].set(-0.5))
    contour = forward_sequence(model, p).joints[:, -17:]
    assert float(jnp.abs(contour[0] - contour[1]).max()) > 1e-3


@pytest.fixture(scope="module")
def lf_model(lf_arrays):
    return BodyModel.from_arrays(lf_arrays)


def test_sequence_equals_per_frame_forward_and_compiles_once(lf_model):
    raw = random_params(np.random.default_rng(1), 3, (15, 3))
    seq = forward_sequence(lf_model, BodyParams(**{k: jnp.asarray(v) for k, v in raw.items()}))
    before = forward._cache_size()
    sizes = []
    for t in range(3):
        frame = BodyParams(**{k: jnp.asarray(v if k == "betas" else v[t]) for k, v in raw.items()})
        one = forward(lf_model, frame)
        sizes.append(forward._cache_size())
        np.testing.assert_allclose(np.asarray(one.vertices), np.asarray(seq.vertices[t]), atol=1e-6)
    # At most one compilation (none if another test in this process compiled these shapes), then cache hits only.
    assert sizes[0] - before <= 1 and sizes[1:] == [sizes[0]] * 2


def test_rodrigues_matches_scipy_at_zero_small_and_pi():
    aa = np.array([[0, 0, 0], [1e-5, -2e-5, 3e-6], [0.3, -1.2, 0.5], [np.pi, 0, 0], [0, 0, -np.pi]], np.float32)
    np.testing.assert_allclose(np.asarray(lbs.rodrigues(jnp.asarray(aa))), Rotation.from_rotvec(aa).as_matrix(),
                               atol=2e-6)  # fmt: skip


def test_rodrigues_jacobian_at_zero_is_the_skew_generators():
    jac = jax.jacfwd(lbs.rodrigues)(jnp.zeros(3))  # [3, 3, 3]: d R / d w_k
    gens = np.zeros((3, 3, 3))
    for k in range(3):
        x, y, z = np.eye(3)[k]
        gens[:, :, k] = [[0, -z, y], [z, 0, -x], [-y, x, 0]]  # skew(e_k)
    np.testing.assert_allclose(np.asarray(jac), gens, atol=1e-7)
    assert np.all(np.isfinite(np.asarray(jax.grad(lambda w: lbs.rodrigues(w).sum())(jnp.zeros(3)))))


def test_pose_gradient_matches_finite_differences(lf_model):
    rng = np.random.default_rng(2)
    p = BodyParams.zeros(lf_model).replace(body_pose=jnp.asarray(0.3 * rng.normal(size=(21, 3)), jnp.float32))
    w = jnp.asarray(rng.normal(size=(lf_model.num_vertices, 3)), jnp.float32)

    def loss(body_pose):
        return jnp.sum(forward(lf_model, p.replace(body_pose=body_pose)).vertices * w)

    g = jax.grad(loss)(p.body_pose)
    d = jnp.asarray(rng.normal(size=(21, 3)), jnp.float32)
    eps = 1e-2
    fd = (loss(p.body_pose + eps * d) - loss(p.body_pose - eps * d)) / (2 * eps)
    assert float(jnp.sum(g * d)) == pytest.approx(float(fd), rel=2e-3)
    # At the exact rest pose (every angle zero) gradients are finite too.
    g0 = jax.grad(loss)(jnp.zeros((21, 3)))
    assert np.all(np.isfinite(np.asarray(g0))) and float(jnp.abs(g0).max()) > 0


@pytest.mark.parametrize("frames", [None, 4])
def test_repose_equals_moving_the_posed_body(lf_model, frames):
    rng = np.random.default_rng(3)
    raw = random_params(rng, frames or 1, (15, 3))
    if frames is None:
        raw = {k: (v if k == "betas" else v[0]) for k, v in raw.items()}
    p = BodyParams(**{k: jnp.asarray(v) for k, v in raw.items()})
    R = jnp.asarray(Rotation.from_rotvec([0.4, -2.0, 0.9]).as_matrix(), jnp.float32)
    t = jnp.array([0.5, -1.0, 2.0])
    run = forward if frames is None else forward_sequence
    moved = run(lf_model, repose(lf_model, p, R, t))
    expect = run(lf_model, p).vertices @ R.T + t
    np.testing.assert_allclose(np.asarray(moved.vertices), np.asarray(expect), atol=TOL_M)
    # The naive formula (rotate transl, keep J0 out of it) is off by decimetres for a shaped body.
    naive = run(lf_model, p.replace(global_orient=repose(lf_model, p, R, t).global_orient, transl=p.transl @ R.T + t))
    assert float(jnp.abs(naive.vertices - expect).max()) > 0.05


def test_params_from_bundle_smplx_params(lf_model):
    T = 2
    sp = SmplxParams(
        betas=np.arange(8, dtype=np.float32) / 10, global_orient=np.zeros((T, 3), np.float32),
        body_pose=np.full((T, 21, 3), 0.1, np.float32), transl=np.ones((T, 3), np.float32),
        left_hand_pose=np.zeros((T, 15, 3), np.float32), right_hand_pose=np.zeros((T, 15, 3), np.float32),
        jaw_pose=np.zeros((T, 3), np.float32), expression=np.zeros((T, 5), np.float32))  # fmt: skip
    p = params_from_smplx(lf_model, sp)
    assert p.betas.shape == (10,) and float(p.betas[7]) == pytest.approx(0.7) and float(p.betas[9]) == 0
    assert p.expression.shape == (T, 10)
    assert forward_sequence(lf_model, p).vertices.shape == (T, lf_model.num_vertices, 3)
