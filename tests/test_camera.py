"""Camera conventions: a known 3D point lands on a known pixel; back-projection inverts projection."""

import jax.numpy as jnp
import numpy as np

from arthoi_jax.geometry import camera


def test_known_point_lands_on_known_pixel():
    K = jnp.array([[100.0, 0, 40.0], [0, 120.0, 30.0], [0, 0, 1]])  # off-centre principal point for a 64x48 image
    # 1 m right, 0.5 m down, 2 m ahead of the camera -> right of and below the principal point.
    uv = camera.project(jnp.array([1.0, 0.5, 2.0]), K)
    np.testing.assert_allclose(uv, [40 + 100 * 0.5, 30 + 120 * 0.25], atol=1e-6)
    # The point on the optical axis lands on the principal point, i.e. inside pixel (row 30, col 40) at its corner.
    np.testing.assert_allclose(camera.project(jnp.array([0.0, 0.0, 5.0]), K), [40.0, 30.0], atol=1e-6)


def test_world_to_camera_extrinsics():
    # A camera 3 m behind the world origin (world z forward): the origin is 3 m ahead of it.
    T_cam_world = jnp.eye(4).at[2, 3].set(3.0)
    np.testing.assert_allclose(camera.transform_points(T_cam_world, jnp.zeros(3)), [0, 0, 3.0])


def test_backproject_inverts_project():
    K = camera.intrinsics_from_fov(64, 48, 60.0)
    pts = jnp.array(np.random.default_rng(0).uniform([-1, -1, 0.5], [1, 1, 4], (20, 3)))
    back = camera.backproject(camera.project(pts, K), pts[:, 2], K)
    np.testing.assert_allclose(back, pts, rtol=1e-5, atol=1e-6)


def test_pixel_centres_and_fov():
    c = camera.pixel_centers(2, 3)
    np.testing.assert_array_equal(c[1, 2], [2.5, 1.5])
    K = camera.intrinsics_from_fov(100, 50, 90.0)
    np.testing.assert_allclose([K[0, 0], K[0, 2], K[1, 2]], [50.0, 50.0, 25.0], rtol=1e-6)


def test_resize_scales_principal_point_with_pixel_edges():
    K = jnp.array([[100.0, 0, 32.0], [0, 100.0, 24.0], [0, 0, 1]])
    K2 = camera.scale_intrinsics(K, 0.5, 0.5)
    p = jnp.array([0.3, -0.2, 2.0])
    np.testing.assert_allclose(camera.project(p, K2), camera.project(p, K) * 0.5, atol=1e-6)


def test_opengl_conversion_flips_y_and_z():
    T = camera.opencv_to_opengl(jnp.eye(4))
    p = camera.transform_points(T, jnp.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(p, [1.0, -2.0, -3.0])
