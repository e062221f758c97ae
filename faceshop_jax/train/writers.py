"""Metric writers: clu's, writing TensorBoard event files with or without TensorFlow installed.

clu 0.0.12 imports TensorFlow when `clu.metric_writers` is imported, only to get its TF summary
writer. Without TensorFlow we register a TensorBoard writer built on tensorboardX under that
module's name first, so `metric_writers.create_default_writer` and `periodic_actions` work
unchanged and TensorBoard reads the files. Import clu's writers through this module.
"""
import importlib.util
import sys
import types

import numpy as np


class TensorboardXWriter:
  """clu MetricWriter interface on tensorboardX (duck-typed: clu's base class imports TF)."""

  def __init__(self, logdir: str):
    import tensorboardX  # pylint: disable=g-import-not-at-top
    self._writer = tensorboardX.SummaryWriter(logdir=logdir)

  def write_summaries(self, step, values, metadata=None):
    del metadata
    for key, value in values.items():
      value = np.asarray(value)
      if value.ndim == 0:
        self._writer.add_scalar(key, value, global_step=step)

  def write_scalars(self, step, scalars):
    for key, value in scalars.items():
      self._writer.add_scalar(key, float(value), global_step=step)

  def write_images(self, step, images):
    for key, value in images.items():
      value = np.asarray(value)
      self._writer.add_images(key, value if value.ndim == 4 else value[None], global_step=step,
                              dataformats='NHWC')

  def write_videos(self, step, videos):
    for key, value in videos.items():  # [N, T, H, W, C] -> tensorboardX's [N, T, C, H, W]
      self._writer.add_video(key, np.moveaxis(np.asarray(value), -1, 2), global_step=step)

  def write_audios(self, step, audios, *, sample_rate):
    for key, value in audios.items():
      self._writer.add_audio(key, np.asarray(value)[0, :, 0], global_step=step,
                             sample_rate=sample_rate)

  def write_texts(self, step, texts):
    for key, value in texts.items():
      self._writer.add_text(key, value, global_step=step)

  def write_histograms(self, step, arrays, num_buckets=None):
    for key, value in arrays.items():
      bins = (num_buckets or {}).get(key)
      self._writer.add_histogram(key, np.asarray(value), global_step=step,
                                 bins='auto' if bins is None else bins)

  def write_hparams(self, hparams):
    self._writer.add_hparams(dict(hparams), {}, name='hparams')  # not a timestamped folder

  def flush(self):
    self._writer.flush()

  def close(self):
    self._writer.close()


def _install_tensorboardx_fallback():
  name = 'clu.metric_writers.summary_writer'
  if name in sys.modules or importlib.util.find_spec('tensorflow') is not None:
    return
  module = types.ModuleType(name)
  module.SummaryWriter = TensorboardXWriter
  sys.modules[name] = module


_install_tensorboardx_fallback()

# pylint: disable=g-import-not-at-top,wrong-import-position
from clu import metric_writers  # noqa: E402
from clu import periodic_actions  # noqa: E402

__all__ = ['metric_writers', 'periodic_actions', 'TensorboardXWriter']
