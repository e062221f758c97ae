"""The finetune stage: Freeze-D keeps D's first blocks bitwise, the CLI fine-tunes a run on the
cartoon world with the adversarial loss alone, and a missing init_from names the fix."""
import os

from tests import cli
import jax
import numpy as np
import pytest

from configs import finetune as finetune_config
from configs import gan as gan_config
from faceshop_jax import data
from faceshop_jax import report
from faceshop_jax import saved
from faceshop_jax.train import checkpoints
from faceshop_jax.train import loop
from faceshop_jax.train import mesh as mesh_lib
from faceshop_jax.train.stages import finetune
from faceshop_jax.train.stages import gan


def _tfds(gan_workdir) -> str:
  """Where the shared tiny gan run's synthetic data was built."""
  return os.path.join(os.path.dirname(gan_workdir), 'tfds')


def _params_before_and_after_a_step(config):
  """(params before, params after) one harness step of the gan stage on one device (numpy)."""
  mesh = mesh_lib.make_mesh(1, jax.devices()[:1])
  state, shardings = loop.build_state(config, gan.STAGE, mesh)
  before = jax.device_get(state.params)
  step = loop.make_train_step(config, gan.STAGE, shardings, mesh)
  batch = next(gan.make_data(config))
  state, _ = step(state, loop._global_batch(batch, mesh_lib.batch_sharding(mesh)))  # pylint: disable=protected-access
  return before, jax.device_get(state.params)


def _same(a, b) -> bool:
  """Whether two pytrees of arrays are bitwise equal."""
  return all(x.tobytes() == y.tobytes() for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


@pytest.mark.parametrize('frozen_blocks', [2, 0])
def test_freeze_d_leaves_the_frozen_blocks_bitwise_unchanged(gan_workdir, frozen_blocks):
  config = gan_config.get_config('test')
  config.data.data_dir = _tfds(gan_workdir)
  config.loss.r1_gamma = 0.0  # one small compiled step; R1's gradient is frozen the same way
  config.loss.density_reg = 0.0
  config.loss.freeze_d_blocks = frozen_blocks
  before, after = _params_before_and_after_a_step(config)
  d_before, d_after = before['discriminator'], after['discriminator']
  blocks = gan.discriminator_blocks(d_before)
  assert blocks == ['b32', 'b16', 'b8']
  for name in d_before:
    frozen = name in blocks[:frozen_blocks]
    assert _same(d_before[name], d_after[name]) == frozen, name
  assert not _same(before['generator'], after['generator'])


def test_freeze_d_names_the_blocks_when_asked_for_too_many():
  d_params = {name: {'w': np.zeros(2)} for name in ('b4_conv', 'b8', 'b32', 'b16', 'mapping')}
  assert gan.discriminator_blocks(d_params) == ['b32', 'b16', 'b8']
  with pytest.raises(ValueError, match=r'freeze_d_blocks = 4.*3 blocks \(b32, b16, b8'):
    gan.freeze_d(None, d_params, 4)


def test_finetune_needs_a_run_to_start_from():
  config = finetune_config.get_config('test')
  config.init_from = ''
  with pytest.raises(ValueError, match='--config.init_from=WORKDIR of a gan, imitative'):
    finetune.check_config(config)


def test_cli_finetunes_a_run_on_the_cartoon_world(gan_workdir, tmp_path):
  workdir, data_dir = str(tmp_path / 'finetune'), str(tmp_path / 'tfds')
  # Without R1 and the density regulariser: one compiled step variant.
  cli.run_main('configs/finetune.py:test', workdir, f'--config.data.data_dir={data_dir}',
               f'--config.init_from={gan_workdir}', '--config.loss.r1_gamma=0',
               '--config.loss.density_reg=0')
  # The cartoon world: the same portraits as the gan run's photo data, in another look.
  cartoon = data.open_split('synthetic_portraits/r32_n16_cartoon', 'train', data_dir)[0]
  photo = data.open_split('synthetic_portraits/r32_n16', 'train', _tfds(gan_workdir))[0]
  np.testing.assert_array_equal(cartoon['parsing'], photo['parsing'])
  assert not np.array_equal(cartoon['image'], photo['image'])
  # Adversarial terms only, and D's first 2 of 3 blocks are the source run's, bit for bit.
  assert not any(name.startswith(('imitation/', 'disentangle/'))
                 for name in report.scalars(workdir))

  def networks(config, saved_state):
    del config
    return saved.abstract({'params': {name: saved_state['params'][name]
                                      for name in ('generator', 'discriminator')}})

  source = checkpoints.read_run(gan_workdir, networks)[2]['params']
  tuned = checkpoints.read_run(workdir, networks)[2]['params']
  for name in source['discriminator']:
    assert _same(source['discriminator'][name], tuned['discriminator'][name]) == (
        name in ('b32', 'b16')), name
  assert not _same(source['generator'], tuned['generator'])
