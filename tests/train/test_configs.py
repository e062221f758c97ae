"""Every config file loads with each preset, names a registered stage, and rejects unknown presets."""
import glob
import importlib
import os

import pytest

from faceshop_jax.train import stage as stage_lib

CONFIG_DIR = os.path.join(os.path.dirname(__file__), '..', '..', 'configs')
STAGE_CONFIGS = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(CONFIG_DIR, '*.py'))
                       if not os.path.basename(p).startswith(('_', 'default')))


def test_there_are_stage_configs():
  assert 'vae' in STAGE_CONFIGS


@pytest.mark.parametrize('name', STAGE_CONFIGS)
@pytest.mark.parametrize('preset', ['', 'cpu', 'test'])
def test_presets_load(name, preset):
  config = importlib.import_module(f'configs.{name}').get_config(preset)
  assert config.stage in stage_lib.known_stages()
  assert config.num_train_steps > 0 and config.batch_size > 0


def test_the_ablation_preset_is_a_shorter_cpu():
  disentangle = importlib.import_module('configs.disentangle')
  ablation, cpu = disentangle.get_config('ablation'), disentangle.get_config('cpu')
  assert ablation.num_train_steps < cpu.num_train_steps
  assert ablation.model == cpu.model and ablation.disentangle.weights == cpu.disentangle.weights


@pytest.mark.parametrize('name', STAGE_CONFIGS)
def test_unknown_preset_is_named(name):
  with pytest.raises(ValueError, match=r"Unknown preset 'gpu'.*'cpu'"):
    importlib.import_module(f'configs.{name}').get_config('gpu')
