"""Orbax checkpoints of the train state and the data iterator, with automatic resume.

Layout: WORKDIR/checkpoints/<step>/{state, data, config}. Orbax writes each checkpoint into a
temporary directory and renames it when complete, so a run killed at any moment leaves either a
whole checkpoint or none that `latest_step` would pick (unfinished ones are cleaned up). The data
item is grain's iterator state, one file per host, so every host resumes its own shard.

`read_run` reads part of another run's checkpoint (its config and a chosen subtree of its state),
shape-checked: what `init_from` and inference load.
"""
import json
import os
from typing import Any, Callable

import grain
import jax
import ml_collections
import orbax.checkpoint as ocp


class Checkpoints:
  """Saves and restores (state, data iterator) pairs in WORKDIR/checkpoints."""

  def __init__(self, workdir: str, max_to_keep: int = 3, asynchronous: bool = True):
    self.directory = os.path.join(os.path.abspath(workdir), 'checkpoints')
    options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                           enable_async_checkpointing=asynchronous)
    self._manager = ocp.CheckpointManager(self.directory, options=options)

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def save(self, step: int, state, data_iterator, config_json: str) -> None:
    """Starts saving (asynchronously if configured); the arrays are copied before it returns."""
    self._manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state),
        data=grain.checkpoint.CheckpointSave(data_iterator),
        config=ocp.args.JsonSave(json.loads(config_json))))

  def restore(self, step: int, abstract_state, data_iterator):
    """The state saved at step, laid out as abstract_state (shapes, dtypes, shardings).

    The data iterator is set to where it was, in place.
    """
    restored = self._manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state),
        data=grain.checkpoint.CheckpointRestore(data_iterator)))
    return restored['state']

  def wait(self) -> None:
    """Blocks until pending saves are complete."""
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.close()


def shape_differences(expected, saved, limit: int = 5) -> list[str]:
  """Up to `limit` leaves that are missing, unexpected or differently shaped in `saved`."""

  def shapes(tree):
    return {jax.tree_util.keystr(path): tuple(leaf.shape)
            for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}

  want, got = shapes(expected), shapes(saved)
  problems = [f'{k}: missing' for k in sorted(set(want) - set(got))]
  problems += [f'{k}: unexpected' for k in sorted(set(got) - set(want))]
  problems += [f'{k}: saved {got[k]}, expected {want[k]}' for k in sorted(set(want) & set(got))
               if got[k] != want[k]]
  return problems[:limit]


# target_fn(config, saved) -> the part of the state to read, {collection: {name: subtree}} with
# ShapeDtypeStruct leaves (and the shardings to restore into), e.g. {'ema_params': {'generator':
# ...}}; each named subtree must match the saved one exactly. `saved` is the checkpoint's state
# metadata (nested dicts of array metadata with .shape). A run that does not fit raises ValueError
# completing "The checkpoint at step N in DIR ...", e.g. "(stage 'vae') holds no generator".
TargetFn = Callable[[ml_collections.ConfigDict, Any], Any]


def read_run(workdir: str, target_fn: TargetFn, step: int | None = None
             ) -> tuple[int, ml_collections.ConfigDict, Any]:
  """(step, config, part of the state) of the checkpoint at `step` (default: the newest) of the
  training run in WORKDIR, read by orbax's partial restore (no data iterator, no stage rebuilt).

  Raises:
    FileNotFoundError: no such run, or no checkpoint (at that step) in it.
    ValueError: target_fn refuses the run, or its target's shapes differ from the saved ones.
  """
  workdir = os.path.abspath(workdir)
  directory = os.path.join(workdir, 'checkpoints')
  no_checkpoint = FileNotFoundError(
      f'No checkpoint in {directory}; train first with python -m faceshop_jax.main '
      f'--config=CONFIG --workdir={workdir}')
  if not os.path.isdir(directory):
    raise no_checkpoint
  manager = ocp.CheckpointManager(
      directory, options=ocp.CheckpointManagerOptions(create=False),
      item_handlers={'state': ocp.PyTreeCheckpointHandler(), 'config': ocp.JsonCheckpointHandler(),
                     'data': grain.checkpoint.CheckpointHandler()})
  with manager:
    steps = manager.all_steps()
    if not steps:
      raise no_checkpoint
    if step is None:
      step = max(steps)
    elif step not in steps:
      raise FileNotFoundError(f'No checkpoint at step {step} in {directory}; it has steps '
                              f'{sorted(steps)}.')
    config = ml_collections.ConfigDict(
        manager.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))['config'])
    saved = manager.item_metadata(step)['state'].tree
    try:
      target = target_fn(config, saved)
    except ValueError as e:
      raise ValueError(f'The checkpoint at step {step} in {directory} {e}') from e
    problems = shape_differences(target, _subtree(saved, target))
    if problems:
      raise ValueError(f'The state saved at step {step} in {directory} does not match the networks '
                       f'its config describes (config.model): {"; ".join(problems)}.')
    restored = manager.restore(step, args=ocp.args.Composite(state=ocp.args.PyTreeRestore(
        item=target, restore_args=ocp.checkpoint_utils.construct_restore_args(target),
        partial_restore=True)))['state']
  return step, config, restored


def _subtree(saved, target):
  """The whole subtrees of `saved` named by target's {collection: {name: ...}} (absent: left out)."""
  return {collection: {name: saved[collection][name] for name in names
                       if name in saved.get(collection, {})}
          for collection, names in target.items()}
