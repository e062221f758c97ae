"""The control vector z = (ε, α, δ, β, γ): every factor reaches the mapping at comparable strength."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import gan as gan_config
from faceshop_jax import face_model
from faceshop_jax import geometry
from faceshop_jax import models
from faceshop_jax import stylegan
from faceshop_jax.face_model import prior as prior_lib

FACTORS = ('noise',) + models.CONTROL_FACTORS
N = 256


def _config(scaling: str):
  config = gan_config.get_config('cpu')
  config.model.control_scaling = scaling
  return config


def _draws(config, key):
  model = face_model.load(config.data.face_model)
  key_coeffs, key_noise = jax.random.split(key)
  coeffs, _ = prior_lib.sample_controls(key_coeffs, model, N)
  return model, coeffs, jax.random.normal(key_noise, (N, config.model.noise_dim))


def _perturbed(model, coeffs, noise, factor: str, key):
  """coeffs, noise with one factor moved by one prior standard deviation per coordinate."""
  if factor == 'noise':
    return coeffs, noise + jax.random.normal(key, noise.shape)
  parts = model.split_coeffs(coeffs)
  spread = jnp.std(getattr(parts, factor), axis=0)
  moved = getattr(parts, factor) + spread * jax.random.normal(key, spread.shape)
  return model.merge_coeffs(parts._replace(**{factor: moved})), noise


def _mapping_moves(scaling: str) -> dict[str, float]:
  """Mean ‖Δw‖ of a freshly initialised :cpu mapping network when each factor alone moves by 1σ."""
  config = _config(scaling)
  model, coeffs, noise = _draws(config, jax.random.PRNGKey(0))
  mapping = stylegan.MappingNetwork(z_dim=models.control_dim(config), c_dim=geometry.CAMERA_SIZE,
                                    w_dim=config.model.w_dim, num_ws=None,
                                    num_layers=config.model.mapping_layers)
  camera = geometry.camera_from_yaw_pitch(jnp.zeros(N), jnp.zeros(N))
  z = models.control_vector(config, coeffs, noise)
  variables = mapping.init(jax.random.PRNGKey(1), z, camera)
  w = mapping.apply(variables, z, camera)
  moves = {}
  for i, factor in enumerate(FACTORS):
    c, e = _perturbed(model, coeffs, noise, factor, jax.random.PRNGKey(10 + i))
    w_moved = mapping.apply(variables, models.control_vector(config, c, e), camera)
    moves[factor] = float(jnp.mean(jnp.linalg.norm(w_moved - w, axis=-1)))
  return moves


def test_per_factor_parts_are_centred_with_unit_energy():
  config = _config('per_factor')
  _, coeffs, noise = _draws(config, jax.random.PRNGKey(5))
  z = np.asarray(models.control_vector(config, coeffs, noise))
  model = face_model.load(config.data.face_model)
  sizes = [config.model.noise_dim, model.n_id, model.n_tex, model.n_exp, 27]
  for name, part in zip(FACTORS, np.split(z, np.cumsum(sizes)[:-1], axis=-1)):
    energy = np.mean(np.sum(np.square(part), axis=-1))
    assert 0.8 < energy < 1.2, (name, energy)
    assert np.linalg.norm(part.mean(0)) < 0.3, name


def test_every_factor_moves_the_mapping_comparably():
  moves = _mapping_moves('per_factor')
  assert max(moves.values()) / min(moves.values()) < 10, moves


def test_raw_coefficients_hide_expression_and_light():
  """The conditioning the per-factor scaling replaced: β and γ barely move w (documents why)."""
  moves = _mapping_moves('raw')
  assert max(moves.values()) / min(moves['expression'], moves['gamma']) > 10, moves


def test_unknown_scaling_is_refused():
  config = _config('unit')
  _, coeffs, noise = _draws(config, jax.random.PRNGKey(0))
  with pytest.raises(ValueError, match='control_scaling'):
    models.control_vector(config, coeffs, noise)
