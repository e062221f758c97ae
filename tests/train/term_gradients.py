"""The check the generator stages' tests make: every named loss term sends a gradient to G."""
import jax
import jax.numpy as jnp
import numpy as np


def assert_every_term_reaches(terms_fn, params, names: tuple[str, ...], prefix: str):
  """terms_fn(params) -> {f'{prefix}/{name}': scalar}; each name's gradient must be non-zero."""
  jacobian = jax.jit(jax.jacrev(
      lambda p: jnp.stack([terms_fn(p)[f'{prefix}/{name}'] for name in names])))(params)
  norms = sum(jnp.sum(jnp.square(g.reshape(len(names), -1)), axis=-1)
              for g in jax.tree.leaves(jacobian))
  for name, norm in zip(names, np.asarray(norms)):
    assert norm > 0, f'no gradient reaches the generator from {prefix}/{name}'
