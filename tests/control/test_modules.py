"""FactorVAE and Critic: shapes under jit and the parameter layout the control space relies on."""
import jax
import jax.numpy as jnp
import pytest

from faceshop_jax import control


def test_shapes_under_jit(small_specs):
  spec = small_specs[1]
  vae, critic = spec.networks()
  vae_params, critic_params = control.init_factor(jax.random.PRNGKey(0), spec)
  assert set(vae_params['params']) == {'encoder', 'decoder'}
  x = jnp.ones((5, spec.size))
  reconstruction, mean, logvar = jax.jit(vae.apply)(vae_params, x, jax.random.PRNGKey(1))
  assert reconstruction.shape == (5, spec.size)
  assert mean.shape == logvar.shape == (5, spec.latent_size)
  decoded = jax.jit(lambda p, z: vae.apply(p, z, method=vae.decode))(
      vae_params, jnp.zeros((2, 3, spec.latent_size)))
  assert decoded.shape == (2, 3, spec.size)
  assert jax.jit(critic.apply)(critic_params, x).shape == (5,)


def test_posterior_sample_uses_the_key(small_specs):
  spec = small_specs[0]
  vae, _ = spec.networks()
  vae_params, _ = control.init_factor(jax.random.PRNGKey(0), spec)
  x = jnp.ones((3, spec.size))
  a, mean, _ = vae.apply(vae_params, x, jax.random.PRNGKey(1))
  b, mean_b, _ = vae.apply(vae_params, x, jax.random.PRNGKey(2))
  assert not jnp.allclose(a, b)
  assert jnp.array_equal(mean, mean_b)


def test_wrong_size_is_rejected(small_specs):
  spec = small_specs[1]
  vae, _ = spec.networks()
  vae_params, _ = control.init_factor(jax.random.PRNGKey(0), spec)
  with pytest.raises(ValueError, match=f'encodes {spec.size} values'):
    vae.apply(vae_params, jnp.ones((2, spec.size + 1)), method=vae.encode)


def test_posterior_logvar_is_soft_clamped(small_specs):
  """Huge inputs cannot overflow exp(logvar) (an infinite KL ended a :cpu run); small ones pass."""
  spec = small_specs[0]
  vae, _ = spec.networks()
  vae_params, _ = control.init_factor(jax.random.PRNGKey(0), spec)
  _, logvar = vae.apply(vae_params, 1e6 * jnp.ones((2, spec.size)), method=vae.encode)
  assert float(jnp.max(jnp.abs(logvar))) <= vae.logvar_limit
  assert bool(jnp.all(jnp.isfinite(control.kl_divergence(jnp.zeros_like(logvar), logvar))))
  raw = vae.apply(vae_params, 0.1 * jnp.ones((2, spec.size)), method=lambda m, x: jnp.split(
      m.encoder(x), 2, axis=-1)[1])
  _, small = vae.apply(vae_params, 0.1 * jnp.ones((2, spec.size)), method=vae.encode)
  assert float(jnp.max(jnp.abs(raw))) < 1.0
  assert jnp.allclose(small, raw, atol=1e-2)
