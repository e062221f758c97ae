"""Mapping network: shapes, the w_avg running average and truncation."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from faceshop_jax import stylegan


@pytest.fixture(scope='module')
def net_and_vars():
  net = stylegan.MappingNetwork(z_dim=8, c_dim=25, w_dim=16, num_ws=6, num_layers=3, w_avg_beta=0.9)
  variables = net.init(jax.random.PRNGKey(0), jnp.zeros((1, 8)), jnp.zeros((1, 25)))
  return net, variables


def _zc(batch=4, seed=1):
  kz, kc = jax.random.split(jax.random.PRNGKey(seed))
  return jax.random.normal(kz, (batch, 8)), jax.random.normal(kc, (batch, 25))


def test_shapes_and_broadcast(net_and_vars):
  net, variables = net_and_vars
  assert set(variables) == {'params', stylegan.STATS}
  ws = net.apply(variables, *_zc())
  assert ws.shape == (4, 6, 16)
  np.testing.assert_array_equal(ws[:, 0], ws[:, 5])
  # Conditioning matters.
  z, c = _zc()
  assert float(jnp.max(jnp.abs(net.apply(variables, z, c + 1.0) - ws))) > 1e-4


def test_w_avg_update_is_an_exponential_moving_average(net_and_vars):
  net, variables = net_and_vars
  z, c = _zc()
  ws, updated = jax.jit(lambda v: net.apply(v, z, c, update_w_avg=True, mutable=[stylegan.STATS]))(
      variables)
  old = variables[stylegan.STATS]['w_avg']
  expected = 0.9 * old + 0.1 * ws[:, 0].mean(axis=0)
  np.testing.assert_allclose(updated[stylegan.STATS]['w_avg'], expected, atol=1e-6)
  # Without update_w_avg the statistics stay put (and need not be mutable).
  _, same = net.apply(variables, z, c, mutable=[stylegan.STATS])
  np.testing.assert_array_equal(same[stylegan.STATS]['w_avg'], old)


def test_truncation(net_and_vars):
  net, variables = net_and_vars
  w_avg = jnp.linspace(-1, 1, 16)
  variables = {**variables, stylegan.STATS: {'w_avg': w_avg}}
  z, c = _zc()
  ws = net.apply(variables, z, c)
  np.testing.assert_allclose(net.apply(variables, z, c, truncation_psi=0.0),
                             jnp.broadcast_to(w_avg, ws.shape), atol=1e-6)
  half = net.apply(variables, z, c, truncation_psi=0.5, truncation_cutoff=2)
  np.testing.assert_allclose(half[:, :2], 0.5 * (ws[:, :2] + w_avg), atol=1e-5)
  np.testing.assert_array_equal(half[:, 2:], ws[:, 2:])


def test_unconditional_and_no_broadcast():
  net = stylegan.MappingNetwork(z_dim=0, c_dim=25, w_dim=12, num_ws=None, num_layers=2,
                                w_avg_beta=None)
  out, variables = net.init_with_output(jax.random.PRNGKey(2), None, jnp.ones((3, 25)))
  assert out.shape == (3, 12) and 'stats' not in variables
  with pytest.raises(ValueError, match='w_avg'):
    net.apply(variables, None, jnp.ones((3, 25)), truncation_psi=0.7)
