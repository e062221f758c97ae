"""Synthesis network at a tiny tri-plane configuration (32², 96 channels, ≤ 32 features)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from faceshop_jax import stylegan

W_DIM = 16


@pytest.fixture(scope='module')
def net_and_vars():
  net = stylegan.SynthesisNetwork(w_dim=W_DIM, resolution=32, img_channels=96, channel_base=512,
                                  channel_max=32)
  ws = jnp.zeros((1, net.num_ws, W_DIM))
  variables = jax.jit(net.init)({'params': jax.random.PRNGKey(0), 'noise': jax.random.PRNGKey(1)},
                                ws)
  # Noise strengths start at 0; give them a value so that the noise shows.
  params = jax.tree_util.tree_map_with_path(
      lambda path, p: p + 0.3 if jax.tree_util.keystr(path).endswith("['noise_strength']") else p,
      variables['params'])
  return net, {**variables, 'params': params}


@pytest.fixture(scope='module')
def run(net_and_vars):
  net, variables = net_and_vars
  return jax.jit(lambda ws, key: net.apply(variables, ws, rngs={'noise': key}))


def _ws(net, batch=2):
  return jax.random.normal(jax.random.PRNGKey(2), (batch, net.num_ws, W_DIM))


def test_num_ws_and_shapes(net_and_vars, run):
  net, variables = net_and_vars
  assert net.num_ws == 8  # 1 + 2·3 convolutions at 4, 8, 16, 32 + the last ToRGB
  assert stylegan.SynthesisNetwork(512, 256, 96).num_ws == 14  # 3DFaceShop's 18 × 512 counts 512²
  assert set(variables) == {'params', stylegan.NOISE_CONST}
  assert variables['params']['b32']['conv1']['weight'].shape == (3, 3, 16, 16)  # 512 // 32
  assert variables['params']['b4']['const'].shape == (4, 4, 32)  # capped at channel_max
  out = run(_ws(net), jax.random.PRNGKey(3))
  assert out.shape == (2, 32, 32, 96)
  assert bool(jnp.all(jnp.isfinite(out)))


def test_every_parameter_gets_a_gradient(net_and_vars):
  net, variables = net_and_vars
  ws = _ws(net)

  def loss(params):
    return net.apply({**variables, 'params': params}, ws, rngs={'noise': jax.random.PRNGKey(3)}).mean()

  grads = jax.jit(jax.grad(loss))(variables['params'])
  flat = jax.tree_util.tree_flatten_with_path(grads)[0]
  dead = [jax.tree_util.keystr(path) for path, g in flat if not float(jnp.max(jnp.abs(g))) > 0]
  assert not dead, f'parameters without gradient: {dead}'


def test_same_key_same_output(net_and_vars, run):
  net, _ = net_and_vars
  ws = _ws(net)
  a = run(ws, jax.random.PRNGKey(4))
  np.testing.assert_array_equal(a, run(ws, jax.random.PRNGKey(4)))
  assert float(jnp.max(jnp.abs(a - run(ws, jax.random.PRNGKey(5))))) > 1e-3
