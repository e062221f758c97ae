"""Cameras, rotations, rays and projection: closed forms and round trips."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from faceshop_jax import geometry


def test_default_camera_matches_deep3d_focal():
  camera = geometry.camera_from_yaw_pitch(0.0, 0.0)
  cam2world, intrinsics = geometry.split_camera(camera)
  np.testing.assert_allclose(intrinsics[0, 0], 1015.0 / 224.0, rtol=1e-6)
  np.testing.assert_allclose(intrinsics[:2, 2], [0.5, 0.5])
  np.testing.assert_allclose(geometry.DEFAULT_FOV_DEGREES, 12.5936, atol=1e-3)
  # Frontal camera: at +z, x right = world +x, y down = world -y, looking along -z.
  np.testing.assert_allclose(cam2world[:3, 3], [0, 0, 1], atol=1e-7)
  np.testing.assert_allclose(cam2world[:3, :3], np.diag([1.0, -1.0, -1.0]), atol=1e-7)


def test_camera_round_trip():
  rng = np.random.default_rng(0)
  camera = jnp.asarray(rng.normal(size=(4, 3, 25)), jnp.float32)
  np.testing.assert_array_equal(geometry.make_camera(*geometry.split_camera(camera)), camera)


def test_bad_camera_names_the_layout():
  with pytest.raises(ValueError, match='25 floats'):
    geometry.split_camera(jnp.zeros((4, 16)))


@pytest.mark.parametrize('yaw,pitch', [(0.0, 0.0), (0.7, -0.3), (-1.2, 0.5)])
def test_yaw_pitch_round_trip_and_look_at_is_rigid(yaw, pitch):
  camera = geometry.camera_from_yaw_pitch(yaw, pitch, radius=2.7)
  got_yaw, got_pitch = geometry.yaw_pitch_from_camera(camera)
  np.testing.assert_allclose([got_yaw, got_pitch], [yaw, pitch], atol=1e-6)
  cam2world, _ = geometry.split_camera(camera)
  rot = cam2world[:3, :3]
  np.testing.assert_allclose(rot.T @ rot, np.eye(3), atol=1e-6)
  np.testing.assert_allclose(np.linalg.det(rot), 1.0, atol=1e-6)
  np.testing.assert_allclose(np.linalg.norm(cam2world[:3, 3]), 2.7, rtol=1e-6)
  # No roll: the image x axis is horizontal.
  np.testing.assert_allclose(rot[1, 0], 0.0, atol=1e-6)


def test_positive_yaw_moves_camera_toward_plus_x():
  position = geometry.camera_position(0.3, 0.0)
  assert position[0] > 0 and position[2] > 0


def test_intrinsics_fov_round_trip():
  np.testing.assert_allclose(geometry.fov_from_intrinsics(geometry.intrinsics_from_fov(30.0)), 30.0,
                             rtol=1e-6)


def test_euler_matrix_is_rz_ry_rx_and_round_trips():
  angles = jnp.array([0.3, -0.5, 1.1])

  def axis_rotation(axis, t):
    c, s = math.cos(t), math.sin(t)
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    m = np.eye(3)
    m[i, i], m[i, j], m[j, i], m[j, j] = c, -s, s, c
    return m

  expected = axis_rotation(2, 1.1) @ axis_rotation(1, -0.5) @ axis_rotation(0, 0.3)
  np.testing.assert_allclose(geometry.euler_to_matrix(angles), expected, atol=1e-6)
  np.testing.assert_allclose(geometry.matrix_to_euler(geometry.euler_to_matrix(angles)), angles,
                             atol=1e-6)


def test_rays_pass_through_pixel_centres_and_projection_inverts_them():
  height, width = 6, 9
  camera = geometry.camera_from_yaw_pitch(0.4, -0.2)
  origins, directions = geometry.camera_rays(camera, height, width)
  np.testing.assert_allclose(jnp.linalg.norm(directions, axis=-1), 1.0, rtol=1e-6)
  points = origins + 1.3 * directions  # [H, W, 3]
  screen_xy, depth = geometry.project_points(points.reshape(-1, 3), camera, height, width)
  np.testing.assert_allclose(screen_xy.reshape(height, width, 2),
                             geometry.pixel_centers(height, width), atol=1e-4)
  assert np.all(depth > 0)


def test_principal_ray_hits_the_look_at_target():
  camera = geometry.camera_from_yaw_pitch(0.2, 0.1)
  origins, directions = geometry.camera_rays(camera, 2, 2)  # the centre is the shared corner
  centre_dir = directions.mean(axis=(0, 1))
  centre_dir /= jnp.linalg.norm(centre_dir)
  np.testing.assert_allclose(origins[0, 0] + centre_dir * geometry.DEFAULT_RADIUS, 0.0, atol=1e-6)
  screen_xy, depth = geometry.project_points(jnp.zeros((1, 3)), camera, 224, 224)
  np.testing.assert_allclose(screen_xy[0], [112.0, 112.0], atol=1e-3)
  np.testing.assert_allclose(depth[0], 1.0, atol=1e-6)


def test_image_right_is_world_plus_x_and_image_down_is_world_minus_y():
  camera = geometry.camera_from_yaw_pitch(0.0, 0.0)
  screen_xy, _ = geometry.project_points(jnp.array([[0.05, 0.0, 0.0], [0.0, -0.05, 0.0]]), camera,
                                         224, 224)
  assert screen_xy[0, 0] > 112 and abs(screen_xy[0, 1] - 112) < 1e-3
  assert screen_xy[1, 1] > 112 and abs(screen_xy[1, 0] - 112) < 1e-3
  # Closed form: 5 cm at 1 m with focal 1015 px.
  np.testing.assert_allclose(screen_xy[0, 0] - 112.0, 0.05 * 1015.0, rtol=1e-5)


def test_head_pose_camera_sees_what_the_frontal_camera_sees_of_the_posed_head():
  rng = np.random.default_rng(1)
  points = jnp.asarray(rng.normal(scale=0.08, size=(20, 3)), jnp.float32)
  angles = jnp.array([0.1, -0.4, 0.05])
  translation = jnp.array([0.01, -0.01, 0.02])
  posed = points @ geometry.euler_to_matrix(angles).T + translation
  frontal = geometry.camera_from_yaw_pitch(0.0, 0.0)
  expected = geometry.project_points(posed, frontal, 128, 128)
  got = geometry.project_points(points, geometry.camera_from_head_pose(angles, translation), 128, 128)
  np.testing.assert_allclose(got[0], expected[0], atol=1e-3)
  np.testing.assert_allclose(got[1], expected[1], atol=1e-6)


def test_batched_and_jitted():
  yaw = jnp.linspace(-0.5, 0.5, 4)
  cameras = jax.jit(geometry.camera_from_yaw_pitch)(yaw, jnp.zeros(4))
  assert cameras.shape == (4, 25)
  origins, directions = jax.jit(geometry.camera_rays, static_argnums=(1, 2))(cameras, 3, 5)
  assert origins.shape == directions.shape == (4, 3, 5, 3)
  screen_xy, depth = geometry.project_points(jnp.zeros((4, 7, 3)), cameras, 64, 64)
  assert screen_xy.shape == (4, 7, 2) and depth.shape == (4, 7)
