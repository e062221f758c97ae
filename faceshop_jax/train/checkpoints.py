"""Orbax checkpoints of the train state and the data iterator, with automatic resume.

Layout: WORKDIR/checkpoints/<step>/{state, data, config}. Orbax writes each checkpoint into a
temporary directory and renames it when complete, so a run killed at any moment leaves either a
whole checkpoint or none that `latest_step` would pick (unfinished ones are cleaned up). The data
item is grain's iterator state, one file per host, so every host resumes its own shard.
"""
import json
import os

import grain
import jax
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


def abstract_like(tree, shardings):
  """ShapeDtypeStructs (with shardings) of a pytree, for restoring into that layout."""
  return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), tree,
                      shardings)
