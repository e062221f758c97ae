"""The train state of every stage: several networks, each with its optimiser, plus EMA copies.

A stage names its networks ('vae_identity', 'critic_identity', 'generator', ...). Gradients for
any subset are applied with `apply_gradients`; networks listed in `ema_names` keep an exponential
moving average of their parameters (used for evaluation and export).
"""
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax

Params = Any


@flax.struct.dataclass
class TrainState:
  """A pytree: step, per-network params and optimiser states, EMA params, RNG and constants.

  Attributes:
    step: int32 scalar, the number of steps taken.
    params: name -> parameters.
    opt_state: name -> optimiser state.
    ema_params: name -> EMA of parameters (only the networks in ema_names).
    rng: PRNG key; each step uses fold_in(rng, step), so a resumed run draws the same numbers.
    constants: name -> arrays the stage needs but does not train (e.g. normalisation statistics).
    tx: name -> optax transformation (static).
    ema_decay: EMA decay per step (static).
  """
  step: jax.Array
  params: dict[str, Params]
  opt_state: dict[str, Any]
  ema_params: dict[str, Params]
  rng: jax.Array
  constants: dict[str, Any]
  tx: dict[str, optax.GradientTransformation] = flax.struct.field(pytree_node=False)
  ema_decay: float = flax.struct.field(pytree_node=False, default=0.999)

  @classmethod
  def create(cls, params: dict[str, Params], tx: dict[str, optax.GradientTransformation], rng,
             constants=None, ema_names=(), ema_decay: float = 0.999) -> 'TrainState':
    missing = set(params) - set(tx)
    if missing:
      raise ValueError(f'No optimiser for networks {sorted(missing)}.')
    # Weakly-typed leaves (e.g. a bias made by jnp.full(shape, python_float)) would come back
    # strongly typed from the first update and make the jitted step compile twice.
    params = jax.tree.map(lambda x: jnp.array(x, dtype=x.dtype), dict(params))
    return cls(step=jnp.zeros((), jnp.int32), params=params,
               opt_state={k: tx[k].init(v) for k, v in params.items()},
               ema_params={k: params[k] for k in ema_names}, rng=rng,
               constants=dict(constants or {}), tx=dict(tx), ema_decay=ema_decay)

  def step_key(self) -> jax.Array:
    """The PRNG key of the current step."""
    return jax.random.fold_in(self.rng, self.step)

  def apply_gradients(self, grads: dict[str, Params]) -> 'TrainState':
    """Updates the named networks (and their EMA copies); the step is advanced by the harness."""
    params, opt_state, ema = dict(self.params), dict(self.opt_state), dict(self.ema_params)
    for name, grad in grads.items():
      updates, opt_state[name] = self.tx[name].update(grad, self.opt_state[name], self.params[name])
      params[name] = optax.apply_updates(self.params[name], updates)
      if name in ema:
        ema[name] = optax.incremental_update(params[name], ema[name], 1.0 - self.ema_decay)
    return self.replace(params=params, opt_state=opt_state, ema_params=ema)
