r"""A run's TensorBoard files as pictures for READMEs and notes: loss curves and image summaries.

  python -m faceshop_jax.report --workdir=/tmp/gan --out=docs/gan_cpu \
      --scalars=d_loss,g_loss,real_logit,fake_logit --images=samples

Writes OUT_curves.png, one panel per --scalars tag (x: step; the raw curve faint behind a
TensorBoard-style debiased EMA with weight --smoothing; a log y-scale where a positive series spans
more than two decades, or where --log_scale names the tag), and OUT_<tag>.png for each --images tag
('/' in a tag written '_'): the image summary at up to --max_image_steps evenly spread steps,
stacked earliest first at its own pixels. Each file is written whole (a temporary file, then a
rename). Every tag is checked before anything is written: a workdir without event files or a tag it
lacks stops with `report: ...`.

Reads the workdir's top-level event files (its hparams/ folder is another run) with TensorBoard's
own reader, which needs no TensorFlow and converts every summary to its tensor form: the
tensorboardX summaries that clu's writers here write (scalars as simple_value, images as PNG image
summaries) and, by the same conversion, TensorFlow's tensor summaries (not exercised here). A step
written twice (a run resumed from an earlier checkpoint) keeps its later value. Draws with
matplotlib's Agg renderer (no display) and decodes the PNGs with PIL.

The functions below (`scalars`, `images`, `plot_curves`, `stack_images`, ...) are a library too:
importing the module defines no flags.
"""
from collections.abc import Callable, Collection, Mapping, Sequence
import glob
import io
import logging
import os
import sys
from typing import BinaryIO

from absl import app
from absl import flags
from matplotlib.figure import Figure
import numpy as np
from PIL import Image
from tensorboard.backend.event_processing import plugin_event_accumulator
from tensorboard.util import tensor_util

Series = tuple[np.ndarray, np.ndarray]  # (steps int64 [N], values float64 [N]), sorted by step

PANEL_INCHES = (4.0, 2.8)  # width, height of one curve panel
DPI = 110


def load_events(workdir: str) -> plugin_event_accumulator.EventAccumulator:
  """Every summary in workdir's top-level event files, all steps kept, in TensorBoard's tensor form.

  Raises:
    FileNotFoundError: workdir holds no event file.
  """
  if not glob.glob(os.path.join(glob.escape(workdir), '*tfevents*')):
    raise FileNotFoundError(f'no events.out.tfevents.* in {workdir}; is it a training workdir?')
  return plugin_event_accumulator.EventAccumulator(
      workdir, size_guidance=plugin_event_accumulator.STORE_EVERYTHING_SIZE_GUIDANCE).Reload()


def _plugin_tags(events: plugin_event_accumulator.EventAccumulator, plugin: str) -> list[str]:
  """The tags written as the TensorBoard plugin's summaries ('scalars', 'images'), sorted."""
  return sorted(events.PluginTagToContent(plugin)) if plugin in events.ActivePlugins() else []


def _last_per_step(events: plugin_event_accumulator.EventAccumulator, tag: str,
                   convert: Callable[[np.ndarray], object]) -> list[tuple[int, object]]:
  """[(step, convert(tensor))] of a tag, sorted by step; of a step written twice, the later."""
  by_step = {event.step: event.tensor_proto for event in events.Tensors(tag)}
  return [(step, convert(tensor_util.make_ndarray(by_step[step]))) for step in sorted(by_step)]


def check_tags(wanted: Sequence[str], existing: Collection[str], kind: str, workdir: str) -> None:
  """Raises ValueError naming the wanted tags that are not among existing, and those that are."""
  missing = [tag for tag in wanted if tag not in existing]
  if missing:
    raise ValueError(f'no {kind} {", ".join(missing)} in {workdir}; its {kind}: '
                     f'{", ".join(sorted(existing)) or "none"}')


def scalars(workdir: str) -> dict[str, Series]:
  """tag -> (steps, values) of every scalar summary in workdir, sorted by step.

  Raises:
    FileNotFoundError: workdir holds no event file.
  """
  events = load_events(workdir)
  series = {}
  for tag in _plugin_tags(events, 'scalars'):
    points = _last_per_step(events, tag, lambda tensor: float(tensor.item()))
    series[tag] = (np.asarray([step for step, _ in points], np.int64),
                   np.asarray([value for _, value in points], np.float64))
  return series


def _decode_pngs(tensor: np.ndarray) -> np.ndarray:
  """An image summary's tensor [width, height, png, ...] as uint8 [H, W, 3], its images stacked."""
  return np.concatenate([np.asarray(Image.open(io.BytesIO(png)).convert('RGB'))
                         for png in tensor[2:]], axis=0)


def images(workdir: str, tag: str) -> list[tuple[int, np.ndarray]]:
  """[(step, uint8 [H, W, 3])] of an image summary tag, sorted by step.

  Raises:
    FileNotFoundError: workdir holds no event file.
    ValueError: workdir has no image summary `tag` (the message lists those it has).
  """
  events = load_events(workdir)
  check_tags([tag], _plugin_tags(events, 'images'), 'image summaries', workdir)
  return _last_per_step(events, tag, _decode_pngs)


def smooth(values: np.ndarray, weight: float) -> np.ndarray:
  """TensorBoard's scalar smoothing: an exponential moving average divided by its startup bias.

  s_t = weight·s_{t-1} + (1 - weight)·v_t from s = 0, shown as s_t / (1 - weight^n) after n finite
  values, so the first smoothed value is the first value and a constant series stays constant.
  A non-finite value is shown as itself and leaves the average alone. weight 0 is no smoothing.
  """
  smoothed = np.empty(len(values))
  average, finite_count = 0.0, 0
  for i, value in enumerate(np.asarray(values, np.float64)):
    if not np.isfinite(value):
      smoothed[i] = value
      continue
    average = weight * average + (1.0 - weight) * value
    finite_count += 1
    smoothed[i] = average / (1.0 - weight**finite_count)
  return smoothed


def wants_log_scale(values: np.ndarray) -> bool:
  """Whether a series is positive and spans more than two decades (max / min > 100)."""
  finite = np.asarray(values, np.float64)
  finite = finite[np.isfinite(finite)]
  return finite.size > 0 and finite.min() > 0 and finite.max() / finite.min() > 100


def write_atomically(path: str, write: Callable[[BinaryIO], None]) -> None:
  """Calls write(file) on a temporary file beside path, then renames it to path."""
  temporary = f'{path}.{os.getpid()}.tmp'
  try:
    with open(temporary, 'wb') as file:
      write(file)
    os.replace(temporary, path)
  finally:
    if os.path.exists(temporary):
      os.remove(temporary)


def write_png(path: str, image: np.ndarray) -> None:
  """Writes a uint8 [H, W, 3] array to path as PNG, atomically."""
  write_atomically(path, lambda file: Image.fromarray(image).save(file, format='PNG'))


def plot_curves(series: Mapping[str, Series], path: str, *, smoothing: float = 0.6,
                log_scale: Collection[str] = (), columns: int = 2) -> Figure:
  """Draws one panel per tag of series (in its order) in a grid and writes it to path as PNG.

  Args:
    series: tag -> (steps, values), as `scalars` returns.
    path: the PNG to write.
    smoothing: the weight of `smooth` for the solid curve (0: none); the raw curve is drawn faint.
    log_scale: tags drawn on a log y-scale even when `wants_log_scale` says no.
    columns: panels per row (fewer when there are fewer tags).

  Returns:
    The figure, for a caller that wants to look at its axes.
  """
  columns = min(columns, len(series))
  rows = -(-len(series) // columns)
  figure = Figure(figsize=(PANEL_INCHES[0] * columns, PANEL_INCHES[1] * rows), dpi=DPI,
                  layout='constrained')
  axes = figure.subplots(rows, columns, squeeze=False).ravel()
  for panel, (tag, (steps, values)) in zip(axes, series.items()):
    raw, = panel.plot(steps, values, alpha=0.25, linewidth=1, label='raw')
    panel.plot(steps, smooth(values, smoothing), color=raw.get_color(), linewidth=1.6,
               marker='o' if len(steps) == 1 else None, label=f'EMA {smoothing:g}')
    if tag in log_scale or wants_log_scale(values):
      panel.set_yscale('log')
    panel.set_title(tag)
    panel.set_xlabel('step')
    panel.grid(alpha=0.3)
  axes[0].legend(fontsize='small')
  for unused in axes[len(series):]:
    unused.set_axis_off()
  write_atomically(path, lambda file: figure.savefig(file, format='png'))
  return figure


def stack_images(found: Sequence[tuple[int, np.ndarray]],
                 most: int) -> tuple[list[int], np.ndarray]:
  """Up to `most` of found's (step, image) pairs, evenly spread with the first and last kept.

  Returns:
    Their steps and their images stacked top to bottom, earliest first, as uint8 [sum H, W, 3].
  """
  picks = np.unique(np.linspace(0, len(found) - 1, most).round().astype(int))
  return [found[i][0] for i in picks], np.concatenate([found[i][1] for i in picks], axis=0)


def main(argv: Sequence[str]) -> None:
  """Checks every tag, then writes the curves and the image stacks (see the module docstring)."""
  flag = flags.FLAGS
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  if not flag.scalars and not flag.images:
    raise app.UsageError('Nothing to draw: give --scalars, --images or both.')
  unplotted = [tag for tag in flag.log_scale if tag not in flag.scalars]
  if unplotted:
    raise app.UsageError(f'--log_scale names tags that --scalars does not: {unplotted}')
  logging.getLogger('tensorboard').setLevel(logging.WARNING)  # not its reader's INFO lines
  # Nor matplotlib's notes that a font family is missing (it falls back to DejaVu Sans).
  logging.getLogger('matplotlib.font_manager').setLevel(logging.ERROR)
  try:
    series = scalars(flag.workdir) if flag.scalars else {}
    check_tags(flag.scalars, series, 'scalars', flag.workdir)
    stacks = {tag: stack_images(images(flag.workdir, tag), flag.max_image_steps)
              for tag in flag.images}
  except (FileNotFoundError, ValueError) as error:
    sys.exit(f'report: {error}')
  os.makedirs(os.path.dirname(os.path.abspath(flag.out)), exist_ok=True)
  if flag.scalars:
    plot_curves({tag: series[tag] for tag in flag.scalars}, f'{flag.out}_curves.png',
                smoothing=flag.smoothing, log_scale=flag.log_scale)
    print(f'{flag.out}_curves.png: {", ".join(flag.scalars)}')
  for tag, (steps, stacked) in stacks.items():
    path = f'{flag.out}_{tag.replace("/", "_")}.png'
    write_png(path, stacked)
    print(f'{path}: steps {steps}')


def define_flags() -> None:
  """The command line's flags (defined only when run as a program: the module is also a library)."""
  flags.DEFINE_string('workdir', None, 'The run directory (holds events.out.tfevents.*).')
  flags.DEFINE_string('out', None, 'Output path prefix: writes OUT_curves.png and OUT_<tag>.png.')
  flags.DEFINE_list('scalars', [], 'Scalar tags to plot, one panel each, in this order.')
  flags.DEFINE_list('images', [], 'Image summary tags to stack.')
  flags.DEFINE_integer('max_image_steps', 4, 'Image summaries to show per tag.', lower_bound=1)
  flags.DEFINE_float('smoothing', 0.6, 'Weight of the curves\' debiased EMA (0: none).',
                     lower_bound=0.0, upper_bound=0.99)
  flags.DEFINE_list('log_scale', [], 'Scalar tags drawn on a log y-scale regardless of their span.')
  flags.mark_flags_as_required(['workdir', 'out'])


if __name__ == '__main__':
  define_flags()
  app.run(main)
