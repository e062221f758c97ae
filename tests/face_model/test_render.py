"""render_face on a procedural sphere model: closed forms for coverage, depth, shading, landmarks."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from faceshop_jax import face_model
from faceshop_jax import geometry

SIZE = 48
render = jax.jit(face_model.render_face, static_argnums=3)


@pytest.fixture(scope='module')
def frontal_render(tiny_face_model):
  return render(tiny_face_model, tiny_face_model.zero_coeffs((1,)),
                geometry.camera_from_yaw_pitch(0.0, 0.0), SIZE)


def test_silhouette_area_and_centre_depth(frontal_render):
  # A sphere of radius r at distance d subtends a disc of radius f·r/√(d²−r²) pixels.
  r, d, f = 0.1, 1.0, geometry.DEFAULT_FOCAL * SIZE
  disc_area = math.pi * (f * r / math.sqrt(d * d - r * r)) ** 2
  # The 12×16 UV sphere is a polyhedron inside the sphere: a slightly smaller silhouette.
  np.testing.assert_allclose(float(frontal_render.mask.sum()), disc_area, rtol=0.08)
  centre = frontal_render.depth[0, SIZE // 2, SIZE // 2]
  np.testing.assert_allclose(centre, d - r, atol=3e-3)
  assert np.all(np.asarray(frontal_render.labels)[frontal_render.mask == 0] == 0)
  assert np.all(np.asarray(frontal_render.labels)[frontal_render.mask == 1] == 1)


def test_centre_colour_is_the_sh_formula(tiny_face_model):
  m = tiny_face_model
  gamma = jnp.zeros(27).at[2].set(0.3)  # red light along +z, the normal at the centre
  coeffs = m.merge_coeffs(m.split_coeffs(m.zero_coeffs((1,)))._replace(gamma=gamma[None]))
  out = render(m, coeffs, geometry.camera_from_yaw_pitch(0.0, 0.0), SIZE)
  basis = face_model.sh_basis(jnp.array([0.0, 0.0, 1.0]))
  expected = 0.6 * jnp.array([basis[0] * 0.8 + basis[2] * 0.3, basis[0] * 0.8, basis[0] * 0.8])
  # Vertex normals of the coarse sphere are interpolated: allow a few percent.
  np.testing.assert_allclose(out.image[0, SIZE // 2, SIZE // 2], expected, rtol=0.03)


def test_landmarks_are_the_projected_landmark_vertices(tiny_face_model, frontal_render):
  camera = geometry.camera_from_yaw_pitch(0.0, 0.0)
  xy, _ = geometry.project_points(tiny_face_model.mean_shape[tiny_face_model.landmarks68], camera,
                                  SIZE, SIZE)
  np.testing.assert_allclose(frontal_render.landmarks[0], xy, atol=1e-4)
  np.testing.assert_allclose(frontal_render.landmarks_3d[0],
                             tiny_face_model.mean_shape[tiny_face_model.landmarks68])


def test_pose_coefficients_match_the_head_pose_camera(tiny_face_model):
  m = tiny_face_model
  angle, translation = jnp.array([0.1, 0.5, 0.0]), jnp.array([0.0, 0.01, 0.0])
  posed = m.merge_coeffs(m.split_coeffs(m.zero_coeffs((1,)))._replace(
      angle=angle[None], translation=translation[None]))
  a = render(m, posed, geometry.camera_from_yaw_pitch(0.0, 0.0), SIZE)
  b = render(m, m.zero_coeffs((1,)), geometry.camera_from_head_pose(angle, translation), SIZE)
  assert float(jnp.mean(a.mask != b.mask)) < 0.01
  np.testing.assert_allclose(a.landmarks, b.landmarks, atol=1e-3)


def test_gradients_reach_every_appearance_and_shape_factor(tiny_face_model):
  m = tiny_face_model
  camera = geometry.camera_from_yaw_pitch(0.2, 0.1)
  target = jnp.asarray(np.random.default_rng(0).uniform(size=(1, SIZE, SIZE, 3)), jnp.float32)

  @jax.jit
  def loss(coeffs):
    out = face_model.render_face(m, coeffs, camera, SIZE)
    return jnp.mean((out.image - target) ** 2) + 1e-3 * jnp.mean(out.landmarks)

  grads = m.split_coeffs(jax.grad(loss)(m.zero_coeffs((1,)) + 0.1))
  for name in ('identity', 'expression', 'texture', 'gamma', 'angle', 'translation'):
    assert float(jnp.abs(getattr(grads, name)).max()) > 0, name
