"""Bad-input corpus for the body model (issue 11): each case builds its bad input and checks the exact outcome."""

import os
import pickle
import warnings

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse

from arthoi_jax.body.model import BodyModel, BodyParams, forward, forward_sequence, params_from_smplx, validate_params
from arthoi_jax.config import BodyConfig
from arthoi_jax.errors import ConfigError, InputError, ModelFileError
from arthoi_jax.io.body_model_file import (
    license_free_model_file,
    load_body_model,
    read_model_arrays,
    resolve_model_file,
    write_model_file,
)
from arthoi_jax.io.bundle import SmplxParams


@pytest.fixture(scope="module")
def arrays(tmp_path_factory):
    return read_model_arrays(license_free_model_file(tmp_path_factory.getbasetemp() / "body_cache"))


@pytest.fixture(scope="module")
def model(arrays):
    return BodyModel.from_arrays(arrays)


def test_body_rejects_chumpy_pickle(tmp_path):
    path = tmp_path / "SMPLX_NEUTRAL.pkl"
    path.write_bytes(b"\x80\x02}q\x00X\n\x00\x00\x00v_templateq\x01cchumpy.ch\nCh\nq\x02)\x81q\x03s.")
    with pytest.raises(ModelFileError, match=r"SMPLX_NEUTRAL\.pkl: this pickle stores chumpy objects \(chumpy\.ch\.Ch\)"
                                             r".*convert it once to \.npz"):  # fmt: skip
        read_model_arrays(path)


def test_body_rejects_pickle_with_arbitrary_callable(tmp_path):
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"v_template": os.system}, protocol=2))
    with pytest.raises(ModelFileError, match=r"references posix\.system; only numpy arrays and scipy sparse"):
        read_model_arrays(path)


def test_body_reads_chumpy_free_pickle_with_sparse_regressor(tmp_path, arrays):
    path = tmp_path / "SMPLX_NEUTRAL.pkl"
    data = dict(arrays, J_regressor=scipy.sparse.csc_matrix(arrays["J_regressor"]), bs_style="lbs")
    path.write_bytes(pickle.dumps(data, protocol=2))
    got = read_model_arrays(resolve_model_file(tmp_path))
    assert set(got) == set(arrays)
    for k in arrays:
        np.testing.assert_array_equal(got[k], arrays[k], err_msg=k)


def test_body_rejects_more_betas_than_the_file_has(arrays):
    with pytest.raises(ModelFileError, match=r"num_betas=16 requested, but the file has 10 shape components "
                                             r"\(shapedirs \[\d+, 3, 20\]\); use num_betas <= 10"):  # fmt: skip
        BodyModel.from_arrays(arrays, num_betas=16)


def test_body_rejects_more_expression_coefficients_than_the_file_has(arrays):
    with pytest.raises(ModelFileError, match=r"num_expression=50 requested, but the file has 10 expression"):
        BodyModel.from_arrays(arrays, num_expression=50)


def test_body_rejects_rotation_matrix_body_pose(model):
    p = BodyParams.zeros(model).replace(body_pose=jnp.tile(jnp.eye(3), (21, 1, 1)))
    with pytest.raises(InputError, match=r"body_pose: expected shape \[21, 3\] \(axis-angle in radians; rotation "
                                         r"matrices are not accepted\), got \[21, 3, 3\]"):  # fmt: skip
        forward(model, p)


def test_body_rejects_more_betas_than_the_model_uses(model):
    p = BodyParams.zeros(model).replace(betas=jnp.zeros(16))
    with pytest.raises(InputError, match=r"betas: expected shape \[10\] \(the model was built with num_betas=10; "
                                         r"extra betas are not dropped\), got \[16\]"):  # fmt: skip
        forward(model, p)


def test_body_rejects_pca_coefficients_for_a_full_hand_model(model):
    p = BodyParams.zeros(model).replace(left_hand_pose=jnp.zeros(6))
    with pytest.raises(InputError, match=r"left_hand_pose: expected shape \[15, 3\] \(15 joints x 3 axis-angle; "
                                         r"PCA only with use_pca=True\), got \[6\]"):  # fmt: skip
        forward(model, p)


def test_body_rejects_sequence_without_frame_axis(model):
    with pytest.raises(InputError, match=r"forward_sequence expects a leading frame axis, \[T, 3\], got \[3\]"):
        forward_sequence(model, BodyParams.zeros(model))


def test_body_rejects_nan_pose(model):
    p = BodyParams.zeros(model).replace(body_pose=jnp.zeros((21, 3)).at[3, 1].set(jnp.nan))
    with pytest.raises(InputError, match=r"body_pose: non-finite value nan at index \(3, 1\)"):
        validate_params(model, p)


def test_body_rejects_model_file_missing_key(tmp_path, arrays):
    path = write_model_file(tmp_path / "SMPLX_NEUTRAL.npz", {k: v for k, v in arrays.items() if k != "posedirs"})
    with pytest.raises(ModelFileError, match=r"SMPLX_NEUTRAL\.npz: missing key\(s\) posedirs; an SMPL-X model file has"):
        read_model_arrays(path)


def test_body_rejects_truncated_npz(tmp_path, arrays):
    path = write_model_file(tmp_path / "SMPLX_NEUTRAL.npz", arrays)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ModelFileError, match=r"SMPLX_NEUTRAL\.npz: unreadable \.npz"):
        read_model_arrays(path)


def test_body_rejects_smpl_sized_model(arrays):
    small = dict(arrays)
    V = 6890
    for k in ("v_template", "weights", "shapedirs", "posedirs"):
        small[k] = arrays[k][:V]
    small["J_regressor"] = arrays["J_regressor"][:, :V]
    with pytest.raises(ModelFileError, match=r"6890 vertices, but SMPL-X keypoints are read at vertex ids up to 9929"):
        BodyModel.from_arrays(small, source="SMPL_NEUTRAL.npz")


def test_body_rejects_kintree_with_parent_after_child(arrays):
    bad = dict(arrays, kintree_table=arrays["kintree_table"].copy())
    bad["kintree_table"][0, 4] = 30
    with pytest.raises(ModelFileError, match=r"kintree_table: joint 4 has parent 30; expected a parent index below"):
        BodyModel.from_arrays(bad)


def test_body_rejects_wrong_posedirs_shape(arrays):
    bad = dict(arrays, posedirs=arrays["posedirs"][:, :, :207])
    with pytest.raises(ModelFileError, match=r"posedirs has shape \[\d+, 3, 207\], expected \[\d+, 3, 486\]"):
        BodyModel.from_arrays(bad)


def test_body_warns_that_45_pca_comps_are_still_pca(arrays):
    with pytest.warns(UserWarning, match=r"num_pca_comps=45: hand poses are still PCA coefficients"):
        pca = BodyModel.from_arrays(arrays, use_pca=True, num_pca_comps=45)
    full = BodyModel.from_arrays(arrays)
    coeffs = jnp.asarray(np.random.default_rng(0).normal(scale=0.3, size=45), jnp.float32)
    a = forward(pca, BodyParams.zeros(pca).replace(left_hand_pose=coeffs))
    aa = (coeffs @ jnp.asarray(arrays["hands_componentsl"])).reshape(15, 3)
    b = forward(full, BodyParams.zeros(full).replace(left_hand_pose=aa))
    np.testing.assert_allclose(np.asarray(a.vertices), np.asarray(b.vertices), atol=1e-5)  # the rotated basis
    assert float(jnp.abs(aa.reshape(45) - coeffs).max()) > 0.1  # ... which is not the axis-angle itself


def test_body_rejects_more_pca_comps_than_the_file_has(arrays):
    few = dict(arrays, hands_componentsl=arrays["hands_componentsl"][:12], hands_componentsr=arrays["hands_componentsr"][:12])
    with pytest.raises(ModelFileError, match=r"num_pca_comps=20, but the file has 12 hand PCA components; use 1\.\.12"):
        BodyModel.from_arrays(few, use_pca=True, num_pca_comps=20)


def test_body_pca_is_never_the_default(model):
    assert not model.use_pca and model.hand_pose_shape == (15, 3) and BodyConfig().use_pca is False


def test_body_rejects_gendered_config_without_model_file(tmp_path):
    with pytest.raises(ConfigError, match=r"body\.gender: 'female' needs an SMPL-X model file in body\.model_path"):
        load_body_model(BodyConfig(gender="female"), tmp_path)


def test_body_rejects_missing_model_path(tmp_path):
    with pytest.raises(ModelFileError, match=r"nowhere\.npz: SMPL-X model file not found"):
        load_body_model(BodyConfig(model_path=str(tmp_path / "nowhere.npz")), tmp_path)
    with pytest.raises(ModelFileError, match=r"no SMPLX_MALE\.npz or \.pkl in this folder"):
        load_body_model(BodyConfig(model_path=str(tmp_path), gender="male"), tmp_path)


def test_body_rejects_bundle_params_with_another_hand_mean(model):
    T = 1
    z = lambda *s: np.zeros((T,) + s, np.float32)
    sp = SmplxParams(betas=np.zeros(10, np.float32), global_orient=z(3), body_pose=z(21, 3), transl=z(3),
                     left_hand_pose=z(15, 3), right_hand_pose=z(15, 3), jaw_pose=z(3), expression=z(10),
                     flat_hand_mean=False)  # fmt: skip
    with pytest.raises(InputError, match=r"flat_hand_mean=False, but the model was built with flat_hand_mean=True"):
        params_from_smplx(model, sp)


def test_body_license_free_file_is_generated_once(tmp_path):
    path = license_free_model_file(tmp_path)
    stamp = path.stat().st_mtime_ns
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert license_free_model_file(tmp_path) == path and path.stat().st_mtime_ns == stamp
