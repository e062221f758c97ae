"""A small control space with random decoders for any face model (test stand-in for a vae run)."""
import dataclasses

import jax
import jax.numpy as jnp

from faceshop_jax import control


def random_control_space(model, seed: int = 0) -> control.ControlSpace:
  specs = tuple(dataclasses.replace(s, width=8, depth=1) for s in control.factor_specs(model))
  keys = jax.random.split(jax.random.PRNGKey(seed), len(specs))
  return control.control_space(
      specs, {s.name: control.init_factor(k, s)[0] for s, k in zip(specs, keys)},
      {s.name: control.Normalizer(jnp.zeros(s.size), jnp.ones(s.size)) for s in specs})
