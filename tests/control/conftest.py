"""Small control-space networks on the tiny face model (test stand-ins for the real widths)."""
import dataclasses

import pytest

from faceshop_jax import control


@pytest.fixture(scope='module')
def small_specs(tiny_face_model):
  """The tiny model's three factors (identity 11, expression 4, illumination 27), width 32."""
  return tuple(dataclasses.replace(s, width=32, depth=2, latent_size=min(s.latent_size, 8))
               for s in control.factor_specs(tiny_face_model))
