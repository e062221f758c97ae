"""Fixtures: the fake synthetic-portrait renderer installed, and a small dataset built with it."""
import sys

import fake_portraits  # tests/data/fake_portraits.py
import pytest

from data_pipelines.builders import synthetic_portraits


@pytest.fixture(scope='session')
def fake_renderer():
  """Makes `faceshop_jax.world.portraits` resolve to fake_portraits while building."""
  with pytest.MonkeyPatch.context() as patch:
    patch.setitem(sys.modules, synthetic_portraits.RENDERER_MODULE, fake_portraits)
    yield fake_portraits


@pytest.fixture(scope='session')
def synthetic_data_dir(tmp_path_factory, fake_renderer) -> str:
  """A prepared fake_portraits.NAME (25 train, 5 test records at 16²)."""
  del fake_renderer
  data_dir = tmp_path_factory.mktemp('tfds')
  fake_portraits.build(data_dir, resolution=fake_portraits.RESOLUTION,
                       train_count=fake_portraits.TRAIN_COUNT, test_count=fake_portraits.TEST_COUNT)
  return str(data_dir)
