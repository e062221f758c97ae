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
