"""GVHMR results import (`hmr4d_results.pt` layout written here with torch.save)."""

import numpy as np
import pytest

from arthoi_jax.errors import InputError
from arthoi_jax.io.bundle import SmplxParams
from arthoi_jax.io.gvhmr import gvhmr_to_smplx, read_gvhmr

torch = pytest.importorskip("torch")

T = 5


def gvhmr_dict(rng, T=T):
    def params():
        return {
            "body_pose": torch.tensor(rng.normal(scale=0.3, size=(T, 63)), dtype=torch.float32),
            "betas": torch.tensor(rng.normal(size=(T, 10)), dtype=torch.float32),
            "global_orient": torch.tensor(rng.normal(size=(T, 3)), dtype=torch.float32),
            "transl": torch.tensor(rng.normal(size=(T, 3)) + [0, 0, 3], dtype=torch.float32),
        }

    K = torch.tensor([[600.0, 0, 320], [0, 600, 240], [0, 0, 1]]).expand(T, 3, 3).clone()
    return {"smpl_params_global": params(), "smpl_params_incam": params(), "K_fullimg": K}


@pytest.fixture
def results_file(tmp_path):
    d = gvhmr_dict(np.random.default_rng(0))
    path = tmp_path / "hmr4d_results.pt"
    torch.save(d, path)
    return path, d


def test_incam_parameters_become_bundle_smplx_params(results_file):
    path, d = results_file
    r = read_gvhmr(path, num_expression=7)
    inc = d["smpl_params_incam"]
    assert isinstance(r.incam, SmplxParams)
    np.testing.assert_allclose(r.incam.body_pose, inc["body_pose"].numpy().reshape(T, 21, 3))
    np.testing.assert_allclose(r.incam.body_pose[:, 3], inc["body_pose"].numpy()[:, 9:12])  # joint 4 = spine1
    np.testing.assert_allclose(r.incam.global_orient, inc["global_orient"].numpy())
    np.testing.assert_allclose(r.incam.transl, inc["transl"].numpy())
    np.testing.assert_allclose(r.incam.betas, inc["betas"].numpy().mean(0), rtol=1e-6)
    np.testing.assert_allclose(r.betas_std, inc["betas"].numpy().std(0), rtol=1e-5)
    assert r.incam.left_hand_pose.shape == (T, 15, 3) and not r.incam.left_hand_pose.any()
    assert r.incam.expression.shape == (T, 7) and r.incam.flat_hand_mean is True
    np.testing.assert_allclose(r.global_yup.transl, d["smpl_params_global"]["transl"].numpy())
    assert r.K.shape == (T, 3, 3) and r.K[2, 0, 0] == 600


def test_imported_params_pass_bundle_validation(results_file):
    from arthoi_jax.io.bundle import _validate_smplx

    incam = read_gvhmr(results_file[0]).incam
    _validate_smplx("smplx_init", incam, T)  # raises BundleError on any shape or dtype the bundle would refuse
    assert incam.body_pose.shape == (T, 21, 3) and incam.body_pose.dtype == np.float32


def test_single_intrinsics_matrix_is_broadcast():
    d = {k: v for k, v in gvhmr_dict(np.random.default_rng(1)).items()}
    d = {k: ({n: x.numpy() for n, x in v.items()} if isinstance(v, dict) else v.numpy()) for k, v in d.items()}
    d["K_fullimg"] = d["K_fullimg"][0]
    assert gvhmr_to_smplx(d).K.shape == (T, 3, 3)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d.pop("smpl_params_incam"), r"missing key 'smpl_params_incam'"),
        (lambda d: d["smpl_params_incam"].pop("transl"), r"missing key smpl_params_incam\.transl \(expected shape \[T, 3\]\)"),
        (lambda d: d["smpl_params_global"].update(body_pose=torch.zeros(T, 21, 3)),
         r"smpl_params_global\.body_pose has shape \[5, 21, 3\], expected \[T, 63\]"),
        (lambda d: d["smpl_params_incam"].update(betas=torch.zeros(T, 16)), r"betas has shape \[5, 16\], expected \[T, 10\]"),
        (lambda d: d["smpl_params_incam"].update(transl=torch.zeros(T + 1, 3)), r"transl has 6 frames, but other fields say T=5"),
        (lambda d: d.pop("K_fullimg"), r"missing key 'K_fullimg'"),
        (lambda d: d["smpl_params_incam"]["global_orient"].__setitem__((2, 1), float("nan")),
         r"global_orient has a non-finite value at index \(2, 1\)"),
    ],
    ids=["missing_param_set", "missing_transl", "body_pose_21x3", "sixteen_betas", "frame_count_mismatch", "missing_K", "nan"],
)  # fmt: skip
def test_malformed_results_name_the_key(tmp_path, edit, message):
    d = gvhmr_dict(np.random.default_rng(2))
    edit(d)
    path = tmp_path / "bad.pt"
    torch.save(d, path)
    with pytest.raises(InputError, match=message):
        read_gvhmr(path)


def test_frame_count_is_checked_against_the_video(results_file):
    with pytest.raises(InputError, match=r"has 5 frames, but expected_frames say T=8"):
        read_gvhmr(results_file[0], expected_frames=8)


def test_not_a_torch_file(tmp_path):
    path = tmp_path / "hmr4d_results.pt"
    path.write_bytes(b"not a zip")
    with pytest.raises(InputError, match="not a readable torch file"):
        read_gvhmr(path)
    with pytest.raises(InputError, match="not found"):
        read_gvhmr(tmp_path / "missing.pt")
