"""Human Gaussians on the SMPL-X surface: sampling, posing, gradients, and their rendered silhouette."""

import cv2
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from arthoi_jax.body.human_gaussians import face_frames, human_gaussians, pose_gaussians, sample_surface_gaussians
from arthoi_jax.body.model import BodyModel, BodyParams, forward
from arthoi_jax.config import RenderConfig
from arthoi_jax.geometry.camera import project
from arthoi_jax.io.body_model_file import license_free_model_file, read_model_arrays
from arthoi_jax.render.types import Camera


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return BodyModel.from_arrays(read_model_arrays(license_free_model_file(tmp_path_factory.getbasetemp() / "body_cache")))


@pytest.fixture(scope="module")
def template(model):
    return sample_surface_gaussians(np.asarray(model.v_template), np.asarray(model.faces), 4000, seed=3)


def facing_camera(model, depth=3.0):
    """The body upright in front of an OpenCV camera (y down, z forward), facing it, pelvis at `depth`."""
    return BodyParams.zeros(model).replace(global_orient=jnp.array([np.pi, 0.0, 0.0]),
                                           transl=jnp.array([0.0, -0.35, depth]))  # fmt: skip


def test_sampling_is_deterministic_and_barycentric(model, template):
    again = sample_surface_gaussians(np.asarray(model.v_template), np.asarray(model.faces), 4000, seed=3)
    np.testing.assert_array_equal(np.asarray(again.face_idx), np.asarray(template.face_idx))
    b = np.asarray(template.bary)
    assert b.min() >= 0 and np.allclose(b.sum(1), 1, atol=1e-6)
    assert template.log_scales.shape == (4000, 3) and float(template.log_scales[0, 2]) < float(template.log_scales[0, 0])


def test_posed_gaussians_lie_on_their_faces_with_the_face_normal(model, template):
    p = facing_camera(model).replace(body_pose=jnp.full((21, 3), 0.2))
    verts = forward(model, p).vertices
    g = pose_gaussians(template, verts, model.faces)
    tri = np.asarray(verts)[np.asarray(model.faces)[np.asarray(template.face_idx)]]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    np.testing.assert_allclose(np.einsum("ni,ni->n", np.asarray(g.means) - tri[:, 0], n), 0, atol=1e-5)
    w, x, y, z = np.asarray(g.quats).T  # third column of the quaternion's rotation matrix
    col3 = np.stack([2 * (x * z + w * y), 2 * (y * z - w * x), 1 - 2 * (x * x + y * y)], 1)
    np.testing.assert_allclose(col3, n, atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(np.asarray(g.quats), axis=1), 1, atol=1e-5)


def test_translation_moves_means_and_keeps_orientation(model, template):
    p = facing_camera(model)
    a = human_gaussians(model, template, p)
    b = human_gaussians(model, template, p.replace(transl=p.transl + jnp.array([0.1, -0.2, 0.3])))
    np.testing.assert_allclose(np.asarray(b.means - a.means), np.tile([0.1, -0.2, 0.3], (4000, 1)), atol=1e-5)
    np.testing.assert_allclose(np.asarray(b.quats), np.asarray(a.quats), atol=2e-4)  # float32 edges at 3 m


def test_face_frames_are_rotations(model):
    R = np.asarray(face_frames(model.v_template, model.faces, jnp.arange(500)))
    np.testing.assert_allclose(R @ R.transpose(0, 2, 1), np.tile(np.eye(3), (500, 1, 1)), atol=1e-5)
    np.testing.assert_allclose(np.linalg.det(R), 1, atol=1e-5)


@pytest.fixture(scope="module")
def camera():
    K = jnp.array([[110.0, 0, 40.0], [0, 110.0, 56.0], [0, 0, 1]])
    return Camera(K=K, T_cam_world=jnp.eye(4), width=80, height=112)


def mesh_silhouette(verts, faces, K, height, width):
    uv = np.asarray(project(jnp.asarray(verts), K))
    mask = np.zeros((height, width), np.uint8)
    # Continuous pixel coordinates -> OpenCV's integer centres, 8 sub-pixel bits.
    pts = np.round((uv[np.asarray(faces)] - 0.5) * 256).astype(np.int32)
    cv2.fillPoly(mask, list(pts), 1, lineType=cv2.LINE_8, shift=8)
    return mask.astype(bool)


def test_rendered_silhouette_matches_the_projected_mesh(model, template):
    from arthoi_jax.render.rasterize import render

    K = jnp.array([[220.0, 0, 80.0], [0, 220.0, 112.0], [0, 0, 1]])  # 1 px = 1.4 cm at 3 m
    camera = Camera(K=K, T_cam_world=jnp.eye(4), width=160, height=224)
    p = facing_camera(model).replace(body_pose=jnp.zeros((21, 3)).at[15, 2].set(-0.8))  # left arm lowered
    out = render(human_gaussians(model, template, p), camera, RenderConfig(mode="dense"))
    mesh = mesh_silhouette(forward(model, p).vertices, model.faces, camera.K, camera.height, camera.width)
    sil = np.asarray(out.alpha) > 0.5
    assert mesh.sum() > 2500  # the body fills a good part of the image
    # Every mesh pixel is covered; the Gaussians (sigma ~1 cm plus the 0.3 px^2 low-pass) overhang the mesh
    # outline by at most one pixel, and that ring is all that separates the two.
    assert (mesh & ~sil).sum() <= 0.005 * mesh.sum()
    ring = cv2.dilate(mesh.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    assert (sil & ~ring).sum() <= 0.005 * mesh.sum()
    assert (sil & mesh).sum() / (sil | mesh).sum() > 0.85


def test_silhouette_loss_gradients_reach_pose_and_translation(model, camera):
    from arthoi_jax.render.rasterize import render

    small = sample_surface_gaussians(np.asarray(model.v_template), np.asarray(model.faces), 1000, seed=1)
    target = jnp.zeros((camera.height, camera.width)).at[30:90, 25:55].set(1.0)

    def loss(body_pose, transl):
        p = facing_camera(model).replace(body_pose=body_pose, transl=transl)
        alpha = render(human_gaussians(model, small, p), camera, RenderConfig(mode="dense")).alpha
        return jnp.mean((alpha - target) ** 2)

    value_and_grad = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))  # one compilation for all calls below
    p0 = facing_camera(model)
    _, (g_pose, g_t) = value_and_grad(p0.body_pose, p0.transl)
    for g in (g_pose, g_t):
        assert np.all(np.isfinite(np.asarray(g))) and float(jnp.abs(g).max()) > 0
    # Finite differences (1 cm) agree in direction; not to 1e-3, since compositing skips alpha < 1/255 (gsplat's
    # rule), whose small jumps finite differences see and gradients do not (measured: AD within ~10% of FD).
    f = lambda t: float(value_and_grad(p0.body_pose, t)[0])  # noqa: E731
    fd = np.array([(f(p0.transl + e) - f(p0.transl - e)) / 2e-2 for e in 1e-2 * jnp.eye(3)])
    cos = float(np.dot(fd, g_t) / (np.linalg.norm(fd) * np.linalg.norm(g_t)))
    assert cos > 0.97, (fd, g_t)
    assert float(jnp.linalg.norm(g_t)) == pytest.approx(float(np.linalg.norm(fd)), rel=0.2)
