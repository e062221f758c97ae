"""Shared set-up for the StyleGAN tests."""
import jax
import pytest


@pytest.fixture(autouse=True, scope='module')
def _fast_threefry():
  """Non-partitionable threefry keys for these tests' modules.

  With JAX's default (partitionable) threefry, XLA:CPU takes ~4× longer to compile the many
  parameter initialisers and noise draws of these networks (synthesis init: 10 s vs 2.4 s); the
  tests depend on no particular random values.
  """
  with jax.threefry_partitionable(False):
    yield
