r"""A contact sheet of synthetic portraits beside their parsing maps and landmarks.

  python -m data_pipelines.synthetic.contact_sheet --out docs/synthetic_portraits.png \
      [--art_style=cartoon]
"""
import argparse

import numpy as np
from PIL import Image
from PIL import ImageDraw

from faceshop_jax import classes
from faceshop_jax.world import portraits
from faceshop_jax import visualize


def contact_sheet(seeds, resolution: int, columns: int, art_style: str = 'photo') -> np.ndarray:
  """uint8 picture: for each seed, the portrait (68 landmarks drawn) beside its parsing map."""
  cells = []
  for record in portraits.generate_records(seeds, resolution, art_style=art_style):
    picture = Image.fromarray(record['image'])
    draw = ImageDraw.Draw(picture)
    for x, y in record['landmarks']:
      draw.point((float(x), float(y)), fill=(0, 255, 0))
    cells.append(np.concatenate([np.asarray(picture), classes.colorize(record['parsing'])],
                                axis=1))
  rows = -(-len(cells) // columns)
  cells += [np.full_like(cells[0], 255)] * (rows * columns - len(cells))
  return visualize.image_grid(np.stack(cells).reshape((rows, columns) + cells[0].shape))


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--out', required=True)
  parser.add_argument('--count', type=int, default=16)
  parser.add_argument('--resolution', type=int, default=128)
  parser.add_argument('--columns', type=int, default=4)
  parser.add_argument('--first_seed', type=int, default=0)
  parser.add_argument('--art_style', default='photo', choices=portraits.ART_STYLES)
  args = parser.parse_args(argv)
  seeds = range(args.first_seed, args.first_seed + args.count)
  visualize.save_png(args.out, contact_sheet(seeds, args.resolution, args.columns, args.art_style))
  print(f'Wrote {args.out}: {args.count} portraits (image with landmarks | parsing).')


if __name__ == '__main__':
  main()
