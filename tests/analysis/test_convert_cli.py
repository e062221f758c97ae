"""`python -m faceshop_jax.analysis.convert` on a real torch checkpoint file; every role under vmap."""
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from faceshop_jax.analysis import bisenet
from faceshop_jax.analysis import deep3d
from faceshop_jax.analysis import iresnet
from faceshop_jax.analysis import weights

REPO = os.path.join(os.path.dirname(__file__), '..', '..')


def _vgg_like_state_dict():
  """A torchvision-VGG16 `features` state dict with random weights (the vgg16 kind's layout)."""
  generator = torch.Generator().manual_seed(0)
  state, channels, index = {}, 3, 0
  for block in ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)):
    for out in block:
      state[f'features.{index}.weight'] = torch.randn(out, channels, 3, 3, generator=generator) * 0.05
      state[f'features.{index}.bias'] = torch.randn(out, generator=generator) * 0.01
      channels, index = out, index + 2
    index += 1  # the max pool
  return state


def _convert(src, out, kind='vgg16'):
  return subprocess.run([sys.executable, '-m', 'faceshop_jax.analysis.convert', f'--kind={kind}',
                         f'--src={src}', f'--out={out}'], cwd=REPO, capture_output=True, text=True,
                        timeout=600, check=False)


def test_cli_converts_a_wrapped_data_parallel_checkpoint(tmp_path):
  state = _vgg_like_state_dict()
  src = str(tmp_path / 'vgg.pth')
  torch.save({'state_dict': {f'module.{k}': v for k, v in state.items()}, 'epoch': 3}, src)
  result = _convert(src, str(tmp_path / 'out'))
  assert result.returncode == 0, result.stderr[-2000:]
  net = weights.load_analysis_net(str(tmp_path / 'out'), 'vgg16')
  kernel = net.variables['params']['conv1_1']['kernel']
  np.testing.assert_array_equal(kernel, state['features.0.weight'].numpy().transpose(2, 3, 1, 0))


def test_cli_names_the_bad_key_and_the_missing_file(tmp_path):
  state = _vgg_like_state_dict()
  state['features.2.weight'] = state['features.2.weight'][:32]
  src = str(tmp_path / 'bad.pth')
  torch.save(state, src)
  result = _convert(src, str(tmp_path / 'out'))
  assert result.returncode != 0 and "'features.2.weight'" in result.stderr
  assert not os.path.exists(tmp_path / 'out' / 'analysis.json')  # nothing half-written
  result = _convert(str(tmp_path / 'absent.pth'), str(tmp_path / 'out2'))
  assert result.returncode != 0 and 'No checkpoint at' in result.stderr


TINY = {
    'deep3d': {'backbone': {'block': 'basic', 'stage_sizes': [1, 1, 1, 1], 'width': 8},
               'out_sizes': [5, 3], 'input_size': 32},
    'bisenet': {'n_classes': 19, 'input_size': 32, 'context_width': 8, 'fuse_width': 16,
                'head_width': 8, 'aux_head_width': 8,
                'backbone': {'block': 'basic', 'stage_sizes': [1, 1, 1, 1], 'width': 8}},
    'arcface': {'stage_blocks': [1, 1, 1, 1], 'width': 8, 'input_size': 32, 'num_features': 16},
}
ROLE_FUNCTIONS = {'deep3d': deep3d.reconstruct, 'bisenet': bisenet.parse, 'arcface': iresnet.embed}


@pytest.mark.parametrize('kind', sorted(TINY))
def test_role_functions_under_jit_and_vmap(kind):
  """Images of any size in [-1, 1]; jit of vmap over an extra axis == the batched call."""
  module = weights.net_module(kind).build(TINY[kind])
  variables = module.init(jax.random.PRNGKey(0), jnp.zeros((1, 32, 32, 3)))
  images = jax.random.uniform(jax.random.PRNGKey(1), (2, 3, 40, 36, 3), minval=-1, maxval=1)
  role = lambda x: ROLE_FUNCTIONS[kind](module, variables, x)  # noqa: E731
  mapped = jax.jit(jax.vmap(role))(images)
  flat = jax.jit(role)(images.reshape((6, 40, 36, 3)))
  assert mapped.shape == (2, 3) + flat.shape[1:]
  np.testing.assert_allclose(mapped.reshape(flat.shape), flat, rtol=1e-4, atol=1e-4)
