"""The gan stage: the command line builds its synthetic data and trains; 8 devices == 1 device."""
import os

from tests import cli
import device_parity  # tests/train/device_parity.py
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import gan as gan_config
from faceshop_jax import geometry
from faceshop_jax.train import loop
from faceshop_jax.train import mesh as mesh_lib
from faceshop_jax import control
from faceshop_jax import face_model
from faceshop_jax import models
from faceshop_jax.train.stages import gan
from tests.control.random_space import random_control_space

# bfloat16 keeps 8 bits of mantissa (relative rounding 2⁻⁹ ≈ 0.002 per operation); through the
# test preset's convolutions, the renderer and the super-resolution the images on [-1, 1] moved by
# 0.057 at most and 0.0033 on average (2026-11-30), and the step's losses by 1.3e-4; the bounds
# leave ~3× room (~8× for the losses).
BF16_IMAGE_MAX_ERROR = 0.15
BF16_IMAGE_MEAN_ERROR = 0.01


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp('tfds'))


@pytest.fixture(scope='module')
def cli_workdir(tmp_path_factory, data_dir):
  workdir = str(tmp_path_factory.mktemp('gan'))
  cli.run_main('configs/gan.py:test', workdir, f'--config.data.data_dir={data_dir}')
  return workdir


def test_cli_builds_the_data_trains_and_writes_summaries(cli_workdir, data_dir):
  assert os.path.isdir(os.path.join(data_dir, 'synthetic_portraits', 'r32_n16'))
  assert any(f.startswith('events.out') for f in os.listdir(cli_workdir))
  assert os.listdir(os.path.join(cli_workdir, 'checkpoints')) == ['2']


def test_missing_dataset_names_the_fix(tmp_path):
  config = gan_config.get_config('test')
  config.data.data_dir = str(tmp_path)
  with pytest.raises(ValueError, match='build_synthetic=True'):
    loop.train_and_evaluate(config, str(tmp_path / 'run'))


def test_gan_step_on_8_devices_equals_1_device(cli_workdir, data_dir):
  del cli_workdir  # it built the dataset
  config = gan_config.get_config('test')
  config.data.data_dir = data_dir
  config.loss.r1_gamma = 0.0  # keeps the compiled step small; R1 is tested in tests/losses
  config.loss.density_reg = 0.0
  device_parity.assert_all_devices_match_one(config, gan.STAGE, next(gan.make_data(config)),
                                             steps=1, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize('model', [2, 4])
def test_gan_step_with_the_generator_sharded_over_model_equals_1_device(cli_workdir, data_dir,
                                                                        model):
  del cli_workdir  # it built the dataset
  config = gan_config.get_config('test')
  config.data.data_dir = data_dir
  config.loss.r1_gamma = 0.0
  config.loss.density_reg = 0.0
  config.mesh.min_shard_size = 4096  # the test preset's convolutions are split over 'model'
  device_parity.assert_all_devices_match_one(config, gan.STAGE, next(gan.make_data(config)),
                                             steps=1, rtol=1e-3, atol=1e-4, model=model)


def test_bfloat16_mixed_precision_stays_finite_and_close_to_float32(cli_workdir, data_dir):
  """config.model.compute_dtype = 'bfloat16': the generator's convolutions run in bfloat16 (none do
  in float32), the same initial state generates nearly the same images, and one training step
  gives nearly the same losses, all finite, with float32 parameters and optimiser state."""
  del cli_workdir  # it built the dataset
  runs = {}
  for dtype in ('float32', 'bfloat16'):
    config = gan_config.get_config('test')
    config.data.data_dir = data_dir
    config.loss.r1_gamma = 0.0
    config.loss.density_reg = 0.0
    config.model.compute_dtype = dtype
    mesh = mesh_lib.make_mesh(1, jax.devices()[:1])
    state, shardings = loop.build_state(config, gan.STAGE, mesh)
    variables = {'params': state.params['generator'], **state.constants['generator_state']}
    z = models.sample_controls(config, jax.random.PRNGKey(0), 4).z
    camera = jnp.broadcast_to(geometry.camera_from_yaw_pitch(0.2, 0.1), (4, geometry.CAMERA_SIZE))
    sampler = models.sampler(config)
    hlo = sampler.lower(variables, z, camera).as_text()
    convolutions = [line for line in hlo.splitlines() if 'convolution' in line]
    images = np.asarray(sampler(variables, z, camera)['image'])
    step = loop.make_train_step(config, gan.STAGE, shardings, mesh)
    batch = loop._global_batch(next(gan.make_data(config)), mesh_lib.batch_sharding(mesh))  # pylint: disable=protected-access
    state, metrics = step(state, batch)
    runs[dtype] = (convolutions, images, jax.device_get(metrics), state)
  (conv32, images32, metrics32, _), (conv16, images16, metrics16, state16) = runs.values()
  assert conv32 and not any('bf16' in line for line in conv32)
  assert sum('bf16' in line for line in conv16) >= len(conv16) // 2
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves((state16.params, state16.opt_state))
             if jnp.issubdtype(x.dtype, jnp.floating))
  assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(state16.params))
  assert images16.dtype == np.float32
  error = np.abs(images16 - images32)
  assert error.max() < BF16_IMAGE_MAX_ERROR and error.mean() < BF16_IMAGE_MEAN_ERROR, (
      error.max(), error.mean())
  for key, value in metrics32.items():
    assert np.isfinite(metrics16[key]), key
    np.testing.assert_allclose(metrics16[key], value, rtol=0.01, atol=1e-3, err_msg=key)


def test_controls_come_from_a_trained_control_space(tmp_path):
  """With config.model.control_space, κ, β, γ are the vae decoders' samples (CoPo), not the prior's."""
  config = gan_config.get_config('test')
  model = face_model.load(config.data.face_model)
  space = random_control_space(model)
  control.save_control_space(space, str(tmp_path / 'control_space'))
  config.model.control_space = str(tmp_path)  # a vae run's WORKDIR
  coeffs, _, z = models.sample_controls(config, jax.random.PRNGKey(3), 5)
  _, key_controls = jax.random.split(jax.random.PRNGKey(3))
  expected = control.merge_into_coeffs(model, control.sample_controls(space, key_controls, 5))
  np.testing.assert_allclose(coeffs, expected, rtol=1e-6)
  assert z.shape == (5, models.control_dim(config))
  config.model.control_space = str(tmp_path / 'nothing')
  with pytest.raises(FileNotFoundError, match='No control space'):
    gan.check_config(config)
