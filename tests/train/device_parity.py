"""The check every stage's tests make: a step on all (8 fake) devices equals the 1-device step."""
import jax
import numpy as np

from faceshop_jax.train import loop
from faceshop_jax.train import mesh as mesh_lib


def assert_all_devices_match_one(config, stage, batch, steps: int, rtol: float, atol: float,
                                 model: int = 1):
  """Runs `steps` harness steps on a batch over all devices and over one; states and metrics agree.

  With model > 1 the 8 devices form a (8 / model, model) mesh and the large parameters (at least
  config.mesh.min_shard_size elements) are split over 'model'; at least one must be.
  """
  assert len(jax.devices()) == 8
  results = []
  for devices, model_axis in ((jax.devices(), model), (jax.devices()[:1], 1)):
    mesh = mesh_lib.make_mesh(model_axis, devices)
    state, shardings = loop.build_state(config, stage, mesh)
    if model_axis > 1:
      assert any(mesh_lib.MODEL in tuple(s.spec) for s in jax.tree.leaves(shardings.params))
    step = loop.make_train_step(config, stage, shardings, mesh)
    for _ in range(steps):
      state, metrics = step(state, loop._global_batch(batch, mesh_lib.batch_sharding(mesh)))  # pylint: disable=protected-access
    results.append(([np.asarray(x) for x in jax.tree.leaves(state)], jax.device_get(metrics)))
  (leaves, metrics), (single_leaves, single_metrics) = results
  for a, b in zip(leaves, single_leaves):
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)
  for key in metrics:
    np.testing.assert_allclose(metrics[key], single_metrics[key], rtol=rtol, atol=atol)
