"""FaceModel coefficients, shape, normals and SH shading against direct formulas."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from faceshop_jax import face_model


def test_split_merge_round_trip(tiny_face_model):
  m = tiny_face_model
  assert m.n_coeffs == 6 + 4 + 5 + 3 + 27 + 3
  coeffs = jnp.asarray(np.random.default_rng(0).normal(size=(2, 3, m.n_coeffs)), jnp.float32)
  parts = m.split_coeffs(coeffs)
  assert [p.shape[-1] for p in parts] == list(m.coefficient_sizes)
  np.testing.assert_array_equal(m.merge_coeffs(parts), coeffs)


def test_wrong_coefficient_size_is_named(tiny_face_model):
  with pytest.raises(ValueError, match='takes 48 coefficients'):
    tiny_face_model.split_coeffs(jnp.zeros(257))


def test_expression_by_name(tiny_face_model):
  np.testing.assert_allclose(tiny_face_model.expression_coefficients({'jawOpen': 0.8, 'blink': 1}),
                                [0.8, 0.0, 1.0, 0.0])
  with pytest.raises(ValueError, match=r"Unknown expression unit\(s\) \['jawopen'\].*jawOpen, smile"):
    tiny_face_model.expression_coefficients({'jawopen': 0.8})


def test_shape_and_albedo_are_affine(tiny_face_model):
  m = tiny_face_model
  alpha, beta, delta = jnp.eye(m.n_id)[2], jnp.eye(m.n_exp)[1], jnp.eye(m.n_tex)[4]
  np.testing.assert_allclose(face_model.shape(m, alpha, beta),
                             m.mean_shape + m.id_basis[..., 2] + m.exp_basis[..., 1], atol=1e-7)
  np.testing.assert_allclose(face_model.albedo(m, delta), m.mean_albedo + m.tex_basis[..., 4], atol=1e-7)
  batched = face_model.shape(m, jnp.zeros((5, m.n_id)), jnp.zeros((5, m.n_exp)))
  assert batched.shape == (5, m.n_vertices, 3)


def test_sphere_normals_are_radial_and_outward(tiny_face_model):
  v = tiny_face_model.mean_shape
  normals = face_model.vertex_normals(v, tiny_face_model.triangles)
  radial = v / jnp.linalg.norm(v, axis=-1, keepdims=True)
  assert float(jnp.min(jnp.sum(normals * radial, axis=-1))) > 0.97
  batched = face_model.vertex_normals(jnp.stack([v, 2 * v]), tiny_face_model.triangles)
  np.testing.assert_allclose(batched[1], normals, atol=1e-6)


def test_sh_basis_against_the_formula():
  n = jnp.asarray([0.36, -0.48, 0.8])
  x, y, z = 0.36, -0.48, 0.8
  a = [math.pi, 2 * math.pi / math.sqrt(3), 2 * math.pi / math.sqrt(8)]
  c = [1 / math.sqrt(4 * math.pi), math.sqrt(3) / math.sqrt(4 * math.pi),
       3 * math.sqrt(5) / math.sqrt(12 * math.pi)]
  expected = [a[0] * c[0], -a[1] * c[1] * y, a[1] * c[1] * z, -a[1] * c[1] * x,
              a[2] * c[2] * x * y, -a[2] * c[2] * y * z,
              a[2] * c[2] / (2 * math.sqrt(3)) * (3 * z * z - 1), -a[2] * c[2] * x * z,
              a[2] * c[2] / 2 * (x * x - y * y)]
  np.testing.assert_allclose(face_model.sh_basis(n), expected, rtol=1e-6)


def test_shading_direct_evaluation():
  rng = np.random.default_rng(3)
  normals = rng.normal(size=(7, 3))
  normals /= np.linalg.norm(normals, axis=-1, keepdims=True)
  albedo = rng.uniform(size=(7, 3))
  gamma = rng.normal(scale=0.3, size=27)
  got = face_model.shade(jnp.asarray(albedo), jnp.asarray(normals), jnp.asarray(gamma))
  basis = np.asarray(face_model.sh_basis(jnp.asarray(normals)))
  for ch in range(3):
    lights = gamma[9 * ch:9 * ch + 9].copy()
    lights[0] += 0.8
    np.testing.assert_allclose(got[:, ch], albedo[:, ch] * (basis @ lights), rtol=1e-5, atol=1e-6)


def test_zero_gamma_is_uniform_ambient():
  normals = jnp.asarray(np.eye(3))
  light = face_model.irradiance(normals, jnp.zeros(27))
  np.testing.assert_allclose(light, 0.8 * math.pi / math.sqrt(4 * math.pi), rtol=1e-6)


def test_pose_and_five_points(tiny_face_model):
  v = tiny_face_model.mean_shape
  moved = face_model.pose(v, jnp.array([0.0, math.pi / 2, 0.0]), jnp.array([1.0, 0.0, 0.0]))
  # Ry(90°) maps +z to +x.
  np.testing.assert_allclose(moved, jnp.stack([v[:, 2] + 1, v[:, 1], -v[:, 0]], -1), atol=1e-6)
  pts = jnp.arange(68 * 2, dtype=jnp.float32).reshape(68, 2)
  five = face_model.five_points(pts)
  np.testing.assert_allclose(five[0], (pts[36] + pts[39]) / 2)
  np.testing.assert_allclose(five[2], pts[30])


def test_model_is_a_pytree_for_jit(tiny_face_model):
  f = jax.jit(lambda m, a: face_model.shape(m, a, jnp.zeros(m.n_exp)))
  np.testing.assert_allclose(f(tiny_face_model, jnp.zeros(6)), tiny_face_model.mean_shape)


def test_npz_round_trip(tiny_face_model, tmp_path):
  face_model.save_npz(tiny_face_model, tmp_path / 'm.npz')
  loaded = face_model.load_npz(tmp_path / 'm.npz')
  assert loaded.expression_names == tiny_face_model.expression_names
  assert loaded.name == 'tiny sphere'
  for a, b in zip(jax.tree.leaves(loaded), jax.tree.leaves(tiny_face_model)):
    np.testing.assert_array_equal(a, b)


def test_bad_arrays_are_named(tiny_face_model):
  arrays = {k: np.asarray(getattr(tiny_face_model, k)) for k in (
      'mean_shape', 'id_basis', 'exp_basis', 'mean_albedo', 'tex_basis', 'triangles', 'landmarks68',
      'vertex_labels')}
  arrays['tex_basis'] = arrays['tex_basis'][:5]
  with pytest.raises(ValueError, match='tex_basis has shape'):
    face_model.from_arrays(arrays)


def test_gamma_fit_recovers_an_irradiance_in_the_sh_span():
  gamma = jnp.asarray(np.random.default_rng(5).normal(scale=0.3, size=27), jnp.float32)
  fitted = face_model.gamma_from_irradiance(lambda n: face_model.irradiance(n, gamma))
  np.testing.assert_allclose(fitted, gamma, atol=1e-4)


def test_directional_light_is_brightest_facing_it():
  direction = jnp.array([[0.6, 0.0, 0.8]])
  gamma = face_model.gamma_from_lights(direction, jnp.array([[1.0, 0.5, 0.25]]), jnp.full(3, 0.2))
  facing = face_model.irradiance(direction, gamma)[0]
  away = face_model.irradiance(-direction, gamma)[0]
  # Band-2 SH approximates the clamped cosine to within ~10% of its peak (Ramamoorthi & Hanrahan).
  np.testing.assert_allclose(facing, 0.2 + jnp.array([1.0, 0.5, 0.25]), atol=0.1)
  np.testing.assert_allclose(away, 0.2, atol=0.1)
  batched = face_model.gamma_from_lights(jnp.ones((4, 2, 3)), jnp.ones((4, 2, 3)), jnp.ones((4, 3)))
  assert batched.shape == (4, 27)
