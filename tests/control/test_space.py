"""The control space: factor layout, normalisers, sampling, encode/decode, save/load, errors."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from faceshop_jax import control


def _space(specs, seed=0):
  keys = jax.random.split(jax.random.PRNGKey(seed), len(specs))
  params = {s.name: control.init_factor(k, s)[0] for s, k in zip(specs, keys)}
  normalizers = {s.name: control.Normalizer.fit(3.0 + 2.0 * jax.random.normal(k, (64, s.size)))
                 for s, k in zip(specs, keys)}
  return control.control_space(specs, params, normalizers)


def test_factors_split_and_merge_coefficients(tiny_face_model):
  m = tiny_face_model
  specs = control.factor_specs(m)
  assert [(s.name, s.size) for s in specs] == [
      ('identity', m.n_id + m.n_tex), ('expression', m.n_exp), ('illumination', 27)]
  coeffs = jax.random.normal(jax.random.PRNGKey(0), (8, m.n_coeffs))
  coeffs = m.merge_coeffs(m.split_coeffs(coeffs)._replace(  # canonical pose, as in training data
      angle=jnp.zeros((8, 3)), translation=jnp.zeros((8, 3))))
  data = control.factor_data(m, coeffs)
  parts = m.split_coeffs(coeffs)
  np.testing.assert_array_equal(data['identity'][:, m.n_id:], parts.texture)
  np.testing.assert_array_equal(control.merge_into_coeffs(m, data), coeffs)


def test_normalizer_round_trip():
  x = jnp.asarray(np.random.default_rng(0).normal([1.0, -2.0, 5.0], [0.1, 3.0, 1.0], (500, 3)))
  x = x.at[:, 2].set(5.0)  # a constant coefficient (e.g. an expression unit nobody uses)
  normalizer = control.Normalizer.fit(x)
  y = normalizer.normalize(x)
  np.testing.assert_allclose(jnp.mean(y, 0), 0.0, atol=1e-5)
  np.testing.assert_allclose(jnp.std(y[:, :2], 0), 1.0, rtol=1e-4)
  assert np.all(np.isfinite(y))
  np.testing.assert_allclose(normalizer.denormalize(y), x, rtol=1e-5, atol=1e-5)


def test_samples_are_coefficients_of_the_model(tiny_face_model, small_specs):
  space = _space(small_specs)
  sample = jax.jit(control.sample_controls, static_argnums=2)
  controls = sample(space, jax.random.PRNGKey(1), 6)
  assert {k: v.shape for k, v in controls.items()} == {
      s.name: (6, s.size) for s in small_specs}
  coeffs = control.merge_into_coeffs(tiny_face_model, controls)
  parts = tiny_face_model.split_coeffs(coeffs)
  np.testing.assert_array_equal(parts.gamma, controls['illumination'])
  np.testing.assert_array_equal(parts.angle, 0.0)
  np.testing.assert_array_equal(parts.translation, 0.0)
  # Decoding happens in normalised units: the normaliser's scale shows up in the samples.
  scaled = dataclasses.replace(space, normalizers={
      k: control.Normalizer(n.mean, 10 * n.std) for k, n in space.normalizers.items()})
  wide = sample(scaled, jax.random.PRNGKey(1), 6)
  np.testing.assert_allclose(wide['expression'] - scaled.normalizers['expression'].mean,
                             10 * (controls['expression'] - space.normalizers['expression'].mean),
                             rtol=1e-4, atol=1e-4)


def test_encode_decode_reconstructs_after_a_short_fit():
  # Data on a 4-d linear manifold in 27-d, offset and scaled far from N(0, I).
  rng = np.random.default_rng(0)
  data = jnp.asarray(rng.normal(size=(512, 4)) @ rng.normal(size=(4, 27)) * 0.3 + 0.8)
  spec = control.FactorSpec('illumination', ('gamma',), (27,), latent_size=8, width=64, depth=2)
  vae, critic = spec.networks()
  normalizer = control.Normalizer.fit(data)
  batch = normalizer.normalize(data)
  vae_params, critic_params = control.init_factor(jax.random.PRNGKey(0), spec)
  optimizer = optax.adam(3e-3)

  @jax.jit
  def step(params, opt_state, key):
    grads, _ = jax.grad(control.vae_generator_loss, has_aux=True)(
        params, critic_params, batch, key, vae=vae, critic=critic, adversarial_weight=0.0)
    updates, opt_state = optimizer.update(grads, opt_state)
    return optax.apply_updates(params, updates), opt_state

  opt_state = optimizer.init(vae_params)
  for key in jax.random.split(jax.random.PRNGKey(1), 200):
    vae_params, opt_state = step(vae_params, opt_state, key)

  space = control.control_space((spec,), {spec.name: vae_params}, {spec.name: normalizer})
  mean, logvar = control.encode(space, 'illumination', data)
  assert mean.shape == logvar.shape == (512, 8)
  error = jnp.mean(jnp.square(control.decode(space, 'illumination', mean) - data))
  mean_prediction_error = jnp.mean(jnp.square(data - jnp.mean(data, 0)))
  assert error < 0.1 * mean_prediction_error


def test_save_load_round_trip_is_bitwise(small_specs, tmp_path):
  space = _space(small_specs)
  control.save_control_space(space, str(tmp_path / 'space'))
  control.save_control_space(space, str(tmp_path / 'space'))  # overwriting is allowed
  loaded = control.load_control_space(str(tmp_path / 'space'))
  assert loaded.specs == space.specs
  assert jax.tree.structure(loaded) == jax.tree.structure(space)
  for a, b in zip(jax.tree.leaves(space), jax.tree.leaves(loaded)):
    assert a.dtype == b.dtype
    np.testing.assert_array_equal(a, b)


def test_wrong_sizes_name_the_factor(tiny_face_model, small_specs):
  space = _space(small_specs)
  with pytest.raises(ValueError, match=r"'expression' takes 4 coefficients"):
    control.encode(space, 'expression', jnp.ones((2, 5)))
  with pytest.raises(ValueError, match=r"'identity' decodes 8 latent"):
    control.decode(space, 'identity', jnp.ones((2, 7)))
  with pytest.raises(ValueError, match='Unknown control factor'):
    control.decode(space, 'pose', jnp.ones((2, 3)))
  controls = control.sample_controls(space, jax.random.PRNGKey(0), 2)
  with pytest.raises(ValueError, match=r"'illumination' takes 27 coefficients"):
    control.merge_into_coeffs(tiny_face_model, {**controls, 'illumination': jnp.ones((2, 9))})
  with pytest.raises(ValueError, match='Missing control factor'):
    control.merge_into_coeffs(tiny_face_model, {'identity': controls['identity']})
  with pytest.raises(ValueError, match='one entry per factor'):
    control.control_space(small_specs, space.vae_params, {})
