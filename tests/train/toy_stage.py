"""A tiny linear-regression stage for harness tests (no model code involved)."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from configs import default
from faceshop_jax import data
from faceshop_jax.train import stage as stage_lib
from faceshop_jax.train import state as state_lib

TRUE_W = np.arange(1.0, 5.0, dtype=np.float32)  # y = x · w


def config(**overrides) -> ml_collections.ConfigDict:
  c = default.base_config()
  c.stage = 'toy'
  c.batch_size = 8
  c.num_train_steps = 20
  c.log_every_steps = 5
  c.summary_every_steps = 10
  c.checkpoint_every_steps = 5
  c.nan_at_step = -1  # a step whose loss the toy stage makes NaN
  c.update(overrides)
  return c


def _make_batch(config, index: int):
  rng = np.random.default_rng([config.seed, index])
  x = rng.normal(size=(config.batch_size, 4)).astype(np.float32)
  return {'x': x, 'y': x @ TRUE_W + 0.01 * rng.normal(size=config.batch_size).astype(np.float32)}


def _init_state(config, rng, constants):
  params = {'w': jnp.zeros(4), 'b': jnp.zeros(())}
  return state_lib.TrainState.create({'model': params}, {'model': optax.adam(0.3)}, rng,
                                     constants, ema_names=('model',), ema_decay=0.9)


def _train_step(config, state, batch, key):
  noise = 1e-3 * jax.random.normal(key, ())  # uses the step key: resumes must replay it

  def loss_fn(params):
    pred = batch['x'] @ params['w'] + params['b'] + noise
    return jnp.mean((pred - batch['y']) ** 2)

  loss, grads = jax.value_and_grad(loss_fn)(state.params['model'])
  loss = jnp.where(state.step + 1 == config.nan_at_step, jnp.nan, loss)
  return state.apply_gradients({'model': grads}), {'loss': loss, 'bias': state.params['model']['b']}


def _summaries(config, state, batch):
  del config, batch
  return {'histograms': {'w': np.asarray(state.params['model']['w'])},
          'images': {'w_image': np.zeros((4, 4, 3), np.uint8)}}


STAGE = stage_lib.Stage(
    name='toy',
    check_config=lambda config: None,
    make_data=lambda config: data.generated_batches(lambda i: _make_batch(config, i)),
    init_constants=lambda config: {'scale': np.float32(1.0)},
    init_state=_init_state,
    train_step=_train_step,
    summaries=_summaries)
