"""The run report reads back what the harness's writers wrote, and draws it legibly."""
import os
import re
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest
import tensorboardX

from faceshop_jax import report
from faceshop_jax.train import writers


def sample(step):
  """A 6 × 10 picture that differs from step to step."""
  image = np.zeros((6, 10, 3), np.uint8)
  image[step:step + 2, 3:7] = [255, 0, 40 * step]
  return image


@pytest.fixture(name='workdir')
def fixture_workdir(tmp_path):
  """A run by clu's writers: loss, lr (4 decades) at steps 1..3; a 'samples' image at steps 2, 3."""
  writer = writers.metric_writers.create_default_writer(str(tmp_path / 'run'))
  for step in (1, 2, 3):
    writer.write_scalars(step, {'loss': 1.0 / step, 'lr': 10.0**(1 - 2 * step)})
  for step in (2, 3):
    writer.write_images(step, {'samples': sample(step)})
  writer.close()
  return str(tmp_path / 'run')


def run_report(*args):
  return subprocess.run([sys.executable, '-m', 'faceshop_jax.report', *args],
                        capture_output=True, text=True, check=False)


def test_scalars_read_back_exactly(workdir):
  series = report.scalars(workdir)
  assert sorted(series) == ['loss', 'lr']
  steps, values = series['loss']
  np.testing.assert_array_equal(steps, [1, 2, 3])
  np.testing.assert_array_equal(values, np.float32([1.0, 0.5, 1 / 3]))  # simple_value is float32
  np.testing.assert_array_equal(series['lr'][1], np.float32([0.1, 1e-3, 1e-5]))


def test_a_step_written_again_keeps_its_later_value(workdir):
  # A resumed run writes a second file (a suffix: tensorboardX reuses a name within a second).
  with tensorboardX.SummaryWriter(workdir, filename_suffix='.resumed') as writer:
    writer.add_scalar('loss', 7.0, global_step=3)
  steps, values = report.scalars(workdir)['loss']
  np.testing.assert_array_equal(steps, [1, 2, 3])
  np.testing.assert_array_equal(values, np.float32([1.0, 0.5, 7.0]))


def test_images_round_trip_pixel_equal(workdir):
  found = report.images(workdir, 'samples')
  assert [step for step, _ in found] == [2, 3]
  for step, decoded in found:
    np.testing.assert_array_equal(decoded, sample(step))
  steps, stacked = report.stack_images(found, most=4)
  assert steps == [2, 3]
  np.testing.assert_array_equal(stacked, np.concatenate([sample(2), sample(3)]))
  assert report.stack_images(found, most=1)[0] == [2]


def test_stack_images_spreads_its_picks_and_keeps_the_ends():
  found = [(step, np.full((1, 1, 3), step, np.uint8)) for step in range(10)]
  steps, stacked = report.stack_images(found, most=4)
  assert steps == [0, 3, 6, 9]
  np.testing.assert_array_equal(stacked[:, 0, 0], steps)


def test_unknown_image_tag_lists_the_existing_ones(workdir):
  with pytest.raises(ValueError, match='samples'):
    report.images(workdir, 'sample')


def test_smoothing_is_debiased_and_keeps_a_constant():
  np.testing.assert_allclose(report.smooth(np.full(50, 3.5), 0.9), 3.5, rtol=1e-12)
  values = np.array([10.0, 0.0, 0.0, np.nan, 0.0])
  smoothed = report.smooth(values, 0.6)
  assert smoothed[0] == 10.0  # not 0.4 · 10, the undebiased average
  np.testing.assert_allclose(smoothed[1], 0.6 * 4.0 / (1 - 0.6**2))
  assert np.isnan(smoothed[3]) and np.isfinite(smoothed[4]) and smoothed[4] < smoothed[2]
  np.testing.assert_array_equal(report.smooth(values, 0.0), values)


def test_log_scale_only_for_positive_series_spanning_decades():
  assert report.wants_log_scale(np.array([1.0, 1e-3]))
  assert not report.wants_log_scale(np.array([1.0, 0.02]))  # under two decades
  assert not report.wants_log_scale(np.array([1.0, 1e-3, 0.0]))  # not positive
  assert not report.wants_log_scale(np.array([-1.0, -1e-3]))
  assert report.wants_log_scale(np.array([1.0, np.nan, 1e-3]))


def test_plot_curves_writes_a_readme_sized_png(workdir, tmp_path):
  path = str(tmp_path / 'curves.png')
  series = report.scalars(workdir)
  series['flat'] = (np.arange(3), np.ones(3))
  figure = report.plot_curves(series, path, log_scale=['flat'])
  with Image.open(path) as picture:
    width, height = picture.size
    pixels = np.asarray(picture.convert('L'))
  # Two columns and two rows of 4 × 2.8 in panels at report.DPI.
  assert (width, height) == (round(8 * report.DPI), round(5.6 * report.DPI))
  assert pixels.min() < 100 and pixels.max() == 255  # something drawn on a white page
  scales = {axes.get_title(): axes.get_yscale() for axes in figure.axes if axes.get_title()}
  assert scales == {'loss': 'linear', 'lr': 'log', 'flat': 'log'}
  assert [axes.get_xlabel() for axes in figure.axes if axes.get_title()] == ['step'] * 3
  assert sorted(os.listdir(tmp_path)) == ['curves.png', 'run']  # no temporary file left


def test_command_line_writes_curves_and_images(workdir, tmp_path):
  out = str(tmp_path / 'pictures' / 'run')
  result = run_report(f'--workdir={workdir}', f'--out={out}', '--scalars=lr,loss',
                      '--images=samples')
  assert result.returncode == 0, result.stderr
  assert not result.stderr  # no reader chatter: the console is for a person
  assert sorted(os.listdir(tmp_path / 'pictures')) == ['run_curves.png', 'run_samples.png']
  with Image.open(f'{out}_samples.png') as stacked:
    np.testing.assert_array_equal(np.asarray(stacked), np.concatenate([sample(2), sample(3)]))


@pytest.mark.parametrize('workdir_name, scalars, images, message', [
    ('empty', 'loss', '', 'no events.out.tfevents'),
    ('run', 'loss,accuracy', 'samples', 'no scalars accuracy in .*; its scalars: loss, lr'),
    ('run', 'loss', 'samples,video',
     'no image summaries video in .*; its image summaries: samples'),
])
def test_errors_write_nothing(workdir, tmp_path, workdir_name, scalars, images, message):
  os.makedirs(tmp_path / 'empty')
  out = tmp_path / 'pictures' / 'run'
  result = run_report(f'--workdir={tmp_path / workdir_name}', f'--out={out}',
                      f'--scalars={scalars}', f'--images={images}')
  assert result.returncode == 1
  assert result.stderr.startswith('report: ') and 'Traceback' not in result.stderr
  assert re.search(message, result.stderr), result.stderr
  assert not (tmp_path / 'pictures').exists()
