r"""A run's TensorBoard files as pictures for READMEs and notes: loss curves and image summaries.

  python -m faceshop_jax.report --workdir=/tmp/gan --out=docs/gan_cpu \
      --scalars=d_loss,g_loss,real_logit,fake_logit --images=samples

Writes OUT_curves.png (one panel per scalar, median-smoothed) and OUT_<image tag>.png (the image
summary at up to --max_image_steps steps, earliest first, stacked). Reads the event files directly
(TFRecord framing + tensorboardX's Event proto); needs neither TensorFlow nor TensorBoard.
"""
from collections.abc import Sequence
import glob
import io
import os
import struct

from absl import app
from absl import flags
import numpy as np
from PIL import Image
from PIL import ImageDraw
from tensorboardX.proto import event_pb2

from faceshop_jax import visualize



def read_events(workdir: str):
  """Yields every Event in workdir's top-level event files, in file order."""
  paths = sorted(glob.glob(os.path.join(workdir, 'events.out.tfevents.*')))
  if not paths:
    raise FileNotFoundError(f'No events.out.tfevents.* in {workdir}; is it a training workdir?')
  for path in paths:
    with open(path, 'rb') as f:
      data = f.read()
    offset = 0
    while offset + 12 <= len(data):  # uint64 length, uint32 crc, payload, uint32 crc
      (length,) = struct.unpack('<Q', data[offset:offset + 8])
      payload = data[offset + 12:offset + 12 + length]
      if len(payload) < length:
        break  # a record still being written
      offset += 12 + length + 4
      yield event_pb2.Event.FromString(payload)


def scalars(workdir: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """tag -> (steps, values), sorted by step; a resumed run's later value for a step wins."""
  series: dict[str, dict[int, float]] = {}
  for event in read_events(workdir):
    for value in event.summary.value:
      if value.HasField('simple_value'):
        series.setdefault(value.tag, {})[event.step] = value.simple_value
  return {tag: (np.asarray(sorted(s)), np.asarray([s[k] for k in sorted(s)]))
          for tag, s in series.items()}


def images(workdir: str, tag: str) -> list[tuple[int, np.ndarray]]:
  """[(step, uint8 [H, W, 3])] of an image summary tag (tensorboardX may suffix '/image/0')."""
  found = {}
  for event in read_events(workdir):
    for value in event.summary.value:
      if value.HasField('image') and (value.tag == tag or value.tag.startswith(tag + '/')):
        found[event.step] = np.asarray(
            Image.open(io.BytesIO(value.image.encoded_image_string)).convert('RGB'))
  return sorted(found.items())


def line_panel(steps: np.ndarray, values: np.ndarray, title: str, size=(320, 180)) -> np.ndarray:
  """A small line plot (raw in grey, running median in black) as uint8 [H, W, 3]."""
  width, height = size
  margin_left, margin = 52, 18
  image = Image.new('RGB', size, 'white')
  draw = ImageDraw.Draw(image)
  window = max(1, len(values) // 20)
  smooth = np.asarray([np.median(values[max(0, i - window + 1):i + 1]) for i in range(len(values))])
  low, high = float(np.min(values)), float(np.max(values))
  high = high if high > low else low + 1.0
  x_of = lambda s: margin_left + (s - steps[0]) / max(1, steps[-1] - steps[0]) * (width - margin_left - 8)  # noqa: E731
  y_of = lambda v: height - margin - (v - low) / (high - low) * (height - 2 * margin)  # noqa: E731
  draw.rectangle([margin_left, margin, width - 8, height - margin], outline=(200, 200, 200))
  for series, colour in ((values, (170, 170, 170)), (smooth, (0, 0, 0))):
    points = [(x_of(s), y_of(v)) for s, v in zip(steps, series)]
    if len(points) > 1:
      draw.line(points, fill=colour, width=1 if colour[0] > 0 else 2)
  draw.text((margin_left, 2), title, fill='black')
  draw.text((2, margin - 4), f'{high:.3g}', fill='black')
  draw.text((2, height - margin - 8), f'{low:.3g}', fill='black')
  draw.text((margin_left, height - margin + 3), f'step {steps[0]}', fill='black')
  draw.text((width - 70, height - margin + 3), f'{steps[-1]}', fill='black')
  return np.asarray(image)


def main(argv: Sequence[str]):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  flag = flags.FLAGS
  workdir, out, max_image_steps = flag.workdir, flag.out, flag.max_image_steps
  scalar_tags, image_tags = flag.scalars, flag.images
  out_dir = os.path.dirname(os.path.abspath(out))
  os.makedirs(out_dir, exist_ok=True)
  if scalar_tags:
    series = scalars(workdir)
    missing = sorted(set(scalar_tags) - set(series))
    if missing:
      raise ValueError(f'No scalars {missing} in {workdir}; it has {sorted(series)}.')
    panels = [line_panel(*series[tag], tag) for tag in scalar_tags]
    cols = 2
    panels += [np.full_like(panels[0], 255)] * (-len(panels) % cols)
    grid = np.stack(panels).reshape((-1, cols) + panels[0].shape)
    visualize.save_png(f'{out}_curves.png', visualize.image_grid(grid))
  for tag in image_tags:
    found = images(workdir, tag)
    if not found:
      raise ValueError(f'No image summaries {tag!r} in {workdir}.')
    picks = np.unique(np.linspace(0, len(found) - 1, max_image_steps).round().astype(int))
    chosen = [found[i] for i in picks]
    stacked = np.concatenate([img for _, img in chosen], axis=0)
    visualize.save_png(f'{out}_{tag}.png', stacked)
    print(f'{tag}: steps {[step for step, _ in chosen]}')


def define_flags():
  """The command line's flags (defined only when run as a program: the module is also a library)."""
  flags.DEFINE_string('workdir', None, 'The run directory (holds events.out.tfevents.*).')
  flags.DEFINE_string('out', None, 'Output path prefix.')
  flags.DEFINE_list('scalars', [], 'Scalar tags to plot.')
  flags.DEFINE_list('images', [], 'Image summary tags to stack.')
  flags.DEFINE_integer('max_image_steps', 4, 'Image summaries to show per tag.')
  flags.mark_flags_as_required(['workdir', 'out'])


if __name__ == '__main__':
  define_flags()
  app.run(main)
