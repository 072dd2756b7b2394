"""The license-free SMPL-X-format body: file layout, skeleton, mesh, skinning and blend shapes."""

import jax.numpy as jnp
import numpy as np
import pytest

from arthoi_jax.body import joint_names as jn
from arthoi_jax.body.model import BodyModel, BodyParams, forward
from arthoi_jax.body.synthetic_model import SOLE_Y, license_free_smplx_arrays, rest_joints
from arthoi_jax.io.body_model_file import license_free_model_file, read_model_arrays


@pytest.fixture(scope="module")
def arrays(tmp_path_factory):
    return read_model_arrays(license_free_model_file(tmp_path_factory.getbasetemp() / "body_cache"))


@pytest.fixture(scope="module")
def model(arrays):
    return BodyModel.from_arrays(arrays)


def test_file_has_the_official_layout(arrays):
    V = len(arrays["v_template"])
    assert max(jn.EXTRA_VERTEX_IDS) < V < 12000
    assert arrays["shapedirs"].shape == (V, 3, 20)  # v1.0 layout: 10 shape + 10 expression
    assert arrays["posedirs"].shape == (V, 3, 486)
    assert arrays["J_regressor"].shape == (55, V) and arrays["weights"].shape == (V, 55)
    assert arrays["kintree_table"].shape == (2, 55) and arrays["kintree_table"][0, 0] == 4294967295
    assert tuple(arrays["kintree_table"][0, 1:]) == jn.PARENTS[1:]
    assert arrays["lmk_faces_idx"].shape == (51,) and arrays["dynamic_lmk_faces_idx"].shape == (79, 17)


def test_generation_is_deterministic(arrays):
    again = license_free_smplx_arrays()
    for k, v in arrays.items():
        np.testing.assert_array_equal(again[k], v, err_msg=k)


def test_regressor_rows_sum_to_one_and_reproduce_the_designed_joints(arrays):
    J = arrays["J_regressor"].astype(np.float64)
    np.testing.assert_allclose(J.sum(1), 1.0, atol=1e-5)
    np.testing.assert_allclose(J @ arrays["v_template"], rest_joints(), atol=2e-5)


def test_skinning_weights_are_a_partition_of_unity(arrays):
    w = arrays["weights"]
    assert w.min() >= 0
    np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-5)
    assert np.all(w.max(0) > 0.5)  # every joint owns some vertices outright


def test_mesh_is_closed_and_outward(arrays):
    f = arrays["f"].astype(np.int64)
    directed = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    keys = directed[:, 0] * 10**6 + directed[:, 1]
    rev = directed[:, 1] * 10**6 + directed[:, 0]
    assert len(np.unique(keys)) == len(keys)  # consistently oriented, no duplicated edge
    assert np.all(np.isin(rev, keys))  # every edge has its twin: closed components
    v = arrays["v_template"].astype(np.float64)[f]
    volume = np.einsum("ij,ij->i", v[:, 0], np.cross(v[:, 1], v[:, 2])).sum() / 6
    assert 0.05 < volume < 0.12  # m^3: a 60-80 kg body (components overlap a little)


def test_body_is_a_tpose_person_in_the_smplx_frame(arrays):
    v = arrays["v_template"]
    assert v[:, 1].min() == pytest.approx(SOLE_Y, abs=0.01)
    assert 1.65 < np.ptp(v[:, 1]) < 1.8  # height, metres
    assert 1.6 < np.ptp(v[:, 0]) < 1.9  # T-pose arm span
    J = rest_joints()
    name = {n: i for i, n in enumerate(jn.SKELETON)}
    assert J[name["left_wrist"], 0] > 0.6 and J[name["right_wrist"], 0] < -0.6  # left at +x
    assert J[name["head"], 1] > J[name["neck"], 1] > J[name["pelvis"], 1] > J[name["left_knee"], 1]
    nose = v[jn.EXTRA_VERTEX_IDS[jn.EXTRA_VERTEX_JOINTS.index("nose")]]
    assert nose[2] > 0.12  # facing +z


def test_left_right_mirror_symmetry(arrays):
    v = arrays["v_template"].astype(np.float64)
    mirrored = v * [-1, 1, 1]
    order = np.lexsort(np.round(v, 5).T)
    order_m = np.lexsort(np.round(mirrored, 5).T)
    np.testing.assert_allclose(v[order], mirrored[order_m], atol=1e-5)


def test_fixed_id_keypoints_sit_where_their_names_say(arrays):
    v = arrays["v_template"]
    at = {n: v[i] for n, i in zip(jn.EXTRA_VERTEX_JOINTS, jn.EXTRA_VERTEX_IDS)}
    assert at["left_heel"][2] < -0.08 and at["left_big_toe"][2] > 0.12 and at["left_heel"][1] < -1.2
    assert at["left_ear"][0] > 0.08 and at["right_ear"][0] < -0.08
    assert at["left_index"][0] > 0.82 and at["right_pinky"][0] < -0.8
    assert at["left_eye"][0] > 0 > at["right_eye"][0] and at["left_eye"][1] == pytest.approx(0.325, abs=0.01)


def test_hand_pca_rows_are_orthonormal_and_mirrored(arrays):
    c = arrays["hands_componentsl"].astype(np.float64)
    np.testing.assert_allclose(c @ c.T, np.eye(45), atol=1e-5)
    np.testing.assert_allclose(arrays["hands_componentsr"], c * np.tile([1, -1, -1], 15), atol=1e-6)


def test_first_betas_change_stature_and_girth(model):
    def verts(i, value):
        betas = jnp.zeros(10).at[i].set(value)
        return np.asarray(forward(model, BodyParams.zeros(model).replace(betas=betas)).vertices)

    assert np.ptp(verts(0, 2.0)[:, 1]) - np.ptp(verts(0, -2.0)[:, 1]) > 0.2  # ~6 cm per unit beta
    waist = np.abs(model.v_template[:, 1] + 0.2) < 0.02
    girth = lambda v: np.abs(v[np.asarray(waist), 0]).max()
    assert girth(verts(1, 2.0)) - girth(verts(1, -2.0)) > 0.05


def test_bending_the_elbow_carries_the_hand_rigidly(model):
    elbow = jn.SKELETON.index("left_elbow")
    p = BodyParams.zeros(model)
    bent = p.replace(body_pose=p.body_pose.at[elbow - 1].set(jnp.array([0.0, -1.5, 0.0])))
    v0 = np.asarray(forward(model, p).vertices)
    v1 = np.asarray(forward(model, bent).vertices)
    w = np.asarray(model.weights)
    hand = w[:, jn.SKELETON.index("left_wrist")] > 0.99
    d0 = np.linalg.norm(v0[hand][:, None] - v0[hand][None, :10], axis=-1)
    d1 = np.linalg.norm(v1[hand][:, None] - v1[hand][None, :10], axis=-1)
    np.testing.assert_allclose(d1, d0, atol=1e-5)  # rigid
    assert np.abs(v1[hand] - v0[hand]).max() > 0.2  # and moved: the forearm swung forward
    assert v1[hand][:, 2].mean() > 0.15


def test_loads_through_config_and_through_smplx_by_folder(tmp_path_factory, arrays):
    smplx = pytest.importorskip("smplx")
    from arthoi_jax.config import BodyConfig
    from arthoi_jax.io.body_model_file import load_body_model

    cache = tmp_path_factory.getbasetemp() / "body_cache"
    model = load_body_model(BodyConfig(num_betas=8, num_expression=4), cache)
    assert model.num_betas == 8 and model.num_expression == 4 and not model.use_pca and model.flat_hand_mean
    folder = license_free_model_file(cache).parent
    torch_model = smplx.SMPLX(str(folder), gender="neutral", ext="npz")  # smplx's own folder naming
    np.testing.assert_allclose(torch_model.v_template.numpy(), arrays["v_template"])
    assert torch_model.J_regressor.shape == (55, len(arrays["v_template"]))
