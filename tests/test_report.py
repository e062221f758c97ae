"""The run report reads back what the harness's writers wrote: scalars, images, pictures."""
import numpy as np
import pytest

from faceshop_jax import report
from faceshop_jax.train import writers


def test_scalars_and_images_round_trip(tmp_path):
  writer = writers.metric_writers.create_default_writer(str(tmp_path))
  image = np.zeros((6, 10, 3), np.uint8)
  image[2:4, 3:7] = [255, 0, 0]
  for step in (1, 2, 3):
    writer.write_scalars(step, {'loss': 1.0 / step})
  writer.write_images(3, {'samples': image})
  writer.close()
  steps, values = report.scalars(str(tmp_path))['loss']
  np.testing.assert_array_equal(steps, [1, 2, 3])
  np.testing.assert_allclose(values, [1.0, 0.5, 1 / 3], rtol=1e-6)
  [(step, decoded)] = report.images(str(tmp_path), 'samples')
  assert step == 3
  np.testing.assert_array_equal(decoded, image)
  panel = report.line_panel(steps, values, 'loss')
  assert panel.dtype == np.uint8 and panel.ndim == 3


def test_not_a_workdir(tmp_path):
  with pytest.raises(FileNotFoundError, match='events.out.tfevents'):
    report.scalars(str(tmp_path))
