"""The synthetic world's control prior: ranges, sparsity, clusters, determinism."""
import jax
import jax.numpy as jnp
import numpy as np

from faceshop_jax import face_model
from faceshop_jax import geometry
from faceshop_jax.face_model import prior


def _arkit_like_model(tiny_face_model):
  names = sorted({u for a in prior.EXPRESSION_ARCHETYPES.values() for u in a})
  n = tiny_face_model.n_vertices
  exp_basis = np.zeros((n, 3, len(names)), np.float32)
  arrays = {k: np.asarray(getattr(tiny_face_model, k)) for k in (
      'mean_shape', 'id_basis', 'mean_albedo', 'tex_basis', 'triangles', 'landmarks68',
      'vertex_labels')}
  return face_model.from_arrays({**arrays, 'exp_basis': exp_basis}, expression_names=names)


def test_controls_are_deterministic_and_well_formed(tiny_face_model):
  m = _arkit_like_model(tiny_face_model)
  sample = jax.jit(prior.sample_controls, static_argnums=2)
  coeffs, camera = sample(jax.random.PRNGKey(0), m, 512)
  again, _ = sample(jax.random.PRNGKey(0), m, 512)
  np.testing.assert_array_equal(coeffs, again)
  assert coeffs.shape == (512, m.n_coeffs) and camera.shape == (512, 25)
  parts = m.split_coeffs(coeffs)
  assert np.all(np.isfinite(coeffs))
  np.testing.assert_array_equal(parts.angle, 0.0)
  np.testing.assert_array_equal(parts.translation, 0.0)
  beta = np.asarray(parts.expression)
  assert beta.min() >= 0.0 and beta.max() <= 1.0
  # Sparse, not Gaussian: most units are exactly zero, some faces are fully neutral.
  assert np.mean(beta == 0.0) > 0.6
  assert 0.1 < np.mean(np.all(beta < 0.31, axis=1)) < 0.5


def test_identity_clusters_correlate_shape_and_tone(tiny_face_model):
  alpha, delta, cluster = prior.sample_identity(jax.random.PRNGKey(1), tiny_face_model, 2000)
  means = np.stack([np.asarray(delta[cluster == k, 0]).mean() for k in range(5)])
  assert means.std() > 0.4  # cluster skin tones differ
  # Within a cluster, the spread is the configured one.
  np.testing.assert_allclose(np.asarray(alpha[cluster == 0]).std(0).mean(), 0.75, rtol=0.1)


def test_camera_distribution_follows_the_config():
  config = prior.PriorConfig(yaw_std=0.2, max_yaw=0.5, pitch_std=0.05)
  yaw, pitch, camera = prior.sample_camera(jax.random.PRNGKey(2), 4000, config)
  np.testing.assert_allclose(np.std(yaw), 0.2, rtol=0.1)
  assert np.abs(yaw).max() <= 0.5
  got_yaw, got_pitch = geometry.yaw_pitch_from_camera(camera)
  np.testing.assert_allclose(got_yaw, yaw, atol=1e-5)
  np.testing.assert_allclose(got_pitch, pitch, atol=1e-5)


def test_illumination_is_lit_from_the_front():
  gamma = prior.sample_illumination(jax.random.PRNGKey(3), 256)
  front = face_model.irradiance(jnp.array([[0.0, 0.0, 1.0]]), gamma)  # [256, 1, 3]
  assert gamma.shape == (256, 27)
  assert float(front.min()) > 0.05 and float(front.max()) < 2.5


def test_unnamed_expression_units_get_sparse_laplacian(tiny_face_model):
  unnamed = face_model.from_arrays(
      {k: np.asarray(getattr(tiny_face_model, k)) for k in (
          'mean_shape', 'id_basis', 'exp_basis', 'mean_albedo', 'tex_basis', 'triangles',
          'landmarks68', 'vertex_labels')})
  beta = np.asarray(prior.sample_expression(jax.random.PRNGKey(4), unnamed, 1000))
  assert np.mean(beta == 0) > 0.5 and beta.min() < -0.5 and beta.max() > 0.5
