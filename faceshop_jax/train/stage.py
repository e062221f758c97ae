"""What a training stage gives the harness, and the registry of stages by name.

A stage is a handful of functions; the harness (loop.py) owns the mesh, the jitted step, the data
sharding, checkpoints, summaries and the NaN guard, so every stage runs the same way:

  check_config(config)                       fail fast on a bad config (missing dataset, ...)
  make_data(config) -> grain.DatasetIterator host-local batches (dicts of numpy arrays); its
                                             state is checkpointed with the train state
  init_constants(config) -> dict             host-side, once: e.g. normalisation statistics
  init_state(config, rng, constants) -> TrainState   pure: jitted with the state's shardings
  train_step(config, state, batch, key) -> (state, metrics)   pure: one jitted, donated step; the
                                             harness advances state.step; metrics are scalars
  summaries(config, state, batch) -> {'images': {...}, 'histograms': {...}}   optional, host-side
  finish(config, workdir, state) -> None     optional: evaluation and export at the end
  next_steps: str                            what a person runs next, '{workdir}' standing for
                                             the run's directory (the console's last line)
  step_variant(config, step) -> hashable     optional: which variant of the step to run before
                                             `step` steps have been taken (e.g. which lazy
                                             regularisers apply); each variant is jitted once and
                                             train_step receives it as `variant=`. Separate
                                             programs beat a lax.cond inside the gradient, whose
                                             both branches XLA:CPU linearises and runs slowly.
"""
import dataclasses
import importlib
from typing import Any, Callable

# Stage name -> module defining STAGE; imported lazily so a stage's dependencies load only for it.
_REGISTRY = {
    'analysis': 'faceshop_jax.train.stages.analysis',
    'disentangle': 'faceshop_jax.train.stages.disentangle',
    'finetune': 'faceshop_jax.train.stages.finetune',
    'gan': 'faceshop_jax.train.stages.gan',
    'imitative': 'faceshop_jax.train.stages.imitative',
    'vae': 'faceshop_jax.train.stages.vae',
}


@dataclasses.dataclass(frozen=True)
class Stage:
  name: str
  check_config: Callable[[Any], None]
  make_data: Callable[[Any], Any]
  init_constants: Callable[[Any], dict]
  init_state: Callable[..., Any]
  train_step: Callable[..., Any]
  summaries: Callable[..., dict] | None = None
  finish: Callable[..., None] | None = None
  step_variant: Callable[[Any, int], Any] | None = None
  next_steps: str = 'tensorboard --logdir={workdir}'


def get_stage(name: str) -> Stage:
  """The registered stage called name.

  Raises:
    ValueError: naming the known stages.
  """
  if name not in _REGISTRY:
    raise ValueError(f'Unknown stage {name!r} (config.stage); known stages: {sorted(_REGISTRY)}.')
  return importlib.import_module(_REGISTRY[name]).STAGE


def known_stages() -> list[str]:
  return sorted(_REGISTRY)
