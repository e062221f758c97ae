"""The generator's controls: sampling κ, β, γ and ε as a run's config says, by key or by seed.

  controls = sample_controls(config, jax.random.PRNGKey(0), 8)   # a batch, as training draws it
  controls = seed_controls(config, [0, 1, 2])                    # one independent draw per seed

κ, β, γ come from the trained control space of config.model.control_space (a vae run or a saved
control space; CoPo's choice) when it names one, else from the face model's control prior; ε is
N(0, I). Seed k's controls are sample_controls with PRNGKey(k) and n = 1, whatever other seeds
are drawn with it.
"""
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from faceshop_jax import control
from faceshop_jax import face_model
from faceshop_jax.face_model import prior as prior_lib
from faceshop_jax.models import build


class Controls(NamedTuple):
  """What conditions a generated batch: coefficients [n, D] (κ, β, γ; canonical pose), the noise
  ε [n, noise_dim] and their control vectors z [n, control_dim] (build.control_vector)."""
  coeffs: jax.Array
  noise: jax.Array
  z: jax.Array


@functools.lru_cache(maxsize=4)
def _control_space(directory: str, face_model_spec: str) -> control.ControlSpace:
  return control.find_control_space(directory, face_model.load(face_model_spec))


def check_control_space(config) -> None:
  """Raises (naming what is wrong) unless config.model.control_space is '' or a control space of
  config's face model."""
  if config.model.get('control_space'):
    _control_space(config.model.control_space, config.data.face_model)


def sample_coefficients(config, key: jax.Array, n: int) -> jax.Array:
  """Coefficients [n, D] (canonical pose): κ, β, γ from config's control space, else the prior."""
  model = face_model.load(config.data.face_model)
  if config.model.get('control_space'):
    space = _control_space(config.model.control_space, config.data.face_model)
    return control.merge_into_coeffs(model, control.sample_controls(space, key, n))
  return prior_lib.sample_controls(key, model, n)[0]


def sample_controls(config, key: jax.Array, n: int) -> Controls:
  """n draws of the controls: sample_coefficients and ε ~ N(0, I)."""
  key_noise, key_controls = jax.random.split(key)
  coeffs = sample_coefficients(config, key_controls, n)
  noise = jax.random.normal(key_noise, (n, config.model.noise_dim))
  return Controls(coeffs, noise, build.control_vector(config, coeffs, noise))


def check_seeds(seeds) -> np.ndarray:
  """seeds as uint32 [N]; a ValueError unless they are a non-empty list of integers in [0, 2³²)."""
  seeds = np.asarray(seeds)
  if seeds.ndim != 1 or not seeds.size or seeds.dtype.kind not in 'iu':
    raise ValueError(f'Seeds must be a non-empty list of integers; got {seeds.tolist()!r}.')
  if seeds.min() < 0 or seeds.max() >= 2**32:
    raise ValueError(f'Seeds must lie in [0, 2^32); got {seeds.tolist()}.')
  return seeds.astype(np.uint32)


_SEED_SAMPLERS = {}  # config JSON -> jitted per-seed sampler


def seed_controls(config, seeds) -> Controls:
  """The controls [N, ...] of N seeds: seed k's are sample_controls(config, PRNGKey(k), 1)."""
  check_control_space(config)  # loaded (and cached) here: orbax cannot restore inside a trace
  key = config.to_json_best_effort()
  if key not in _SEED_SAMPLERS:

    def one_seed(seed_key):
      return jax.tree.map(lambda x: x[0], sample_controls(config, seed_key, 1))

    _SEED_SAMPLERS[key] = jax.jit(jax.vmap(one_seed))
  keys = jax.vmap(jax.random.PRNGKey)(jnp.asarray(check_seeds(seeds)))
  return _SEED_SAMPLERS[key](keys)
