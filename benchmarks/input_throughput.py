r"""Input throughput: 512² portraits per second per host that the grain train iterator delivers.

  python benchmarks/input_throughput.py [--format=png|jpeg] [--count=256] [--workers=0,1,2,4]
      [--data_dir=/tmp/faceshop_input_bench] [--hosts=1] [--batches=8]

Builds once (reused on later runs) a `portrait_folder` dataset of `count` generated 512² portraits
in the EG3D layout (images in 00000/, dataset.json cameras, .npy coefficients) as PNG or JPEG files,
then reads it exactly as the gan/imitative stages do (`make_train_iterator`, keys ['image',
'camera'], the paper preset's batch of configs/gan.py over `hosts` hosts) with grain's worker_count
0 (in-process threads: the reference row), 1, 2 and 4. Each row is the median of 3 timed passes of
`batches` batches after one warm-up pass (which also starts the workers). The portraits are
procedural (shaded face, hair, eyes and a gradient background plus photo-like noise): the renderer
of the synthetic world is too slow at 512² on a small CPU, and what is timed is PNG decoding and
batching, which depend on the size and entropy of the pixels, not on what they show.

tfds stores every portrait_folder image as PNG whatever the folder's format, so `--format=jpeg`
measures JPEG-sourced pixels (smoother, so smaller PNG records) rather than JPEG decoding.

The step that consumes the batches is not timed here (its time depends on the accelerator), so the
consumption rate is given as B / T images/s for a step of T seconds at a per-host batch B, with
the workers that rate needs at the measured per-worker rate. On a TPU host: set worker_count to at
least that number, with 1-2 to spare, and no more than the host's spare cores (see README).
"""
import argparse
import json
import math
import os
import sys

from absl import flags
import grain
import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(__file__))
import timing  # pylint: disable=g-import-not-at-top,wrong-import-position

from configs import gan as gan_config  # pylint: disable=g-import-not-at-top,wrong-import-position
from data_pipelines import builders  # pylint: disable=g-import-not-at-top,wrong-import-position
from faceshop_jax import data  # pylint: disable=g-import-not-at-top,wrong-import-position

RESOLUTION = 512
N_COEFFS = 257
STEP_SECONDS = (0.5, 1.0, 2.0)
KEYS = ['image', 'camera']  # What gan.make_data (and so the imitative stage) reads.


def portrait(seed: int, size: int = RESOLUTION) -> np.ndarray:
  """A procedural portrait, uint8 [size, size, 3]: gradient background, hair, shaded face, eyes,
  mouth and Gaussian noise (σ 4 levels), so that PNG records are about photo-sized."""
  rng = np.random.default_rng(seed)
  y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
  top, bottom = rng.uniform(0, 255, (2, 3))
  image = top + (bottom - top) * y[..., None]
  cx, cy = 0.5 + rng.uniform(-0.05, 0.05), 0.52 + rng.uniform(-0.04, 0.04)
  hair = ((x - cx) / 0.3)**2 + ((y - cy + 0.06) / 0.38)**2 < 1
  image[hair] = rng.uniform(10, 120, 3)
  face = ((x - cx) / 0.22)**2 + ((y - cy) / 0.3)**2
  skin = rng.uniform([150, 100, 80], [255, 200, 170])
  shade = np.clip(1.1 - 0.5 * face + 0.3 * (x - cx), 0, 1.2)[..., None]
  image = np.where((face < 1)[..., None], skin * shade, image)
  for ex in (cx - 0.08, cx + 0.08):
    image[((x - ex) / 0.035)**2 + ((y - cy + 0.05) / 0.018)**2 < 1] = 30
  image[((x - cx) / 0.07)**2 + ((y - cy - 0.15) / 0.02)**2 < 1] = (150, 40, 50)
  image += rng.normal(0, 4, image.shape)
  return np.clip(image, 0, 255).astype(np.uint8)


def camera(seed: int) -> np.ndarray:
  """EG3D's 25-float label: a cam2world 4×4 on a 2.7 sphere looking at the head, FFHQ intrinsics."""
  rng = np.random.default_rng(seed)
  yaw, pitch = rng.uniform(-0.5, 0.5), rng.uniform(-0.2, 0.2)
  eye = 2.7 * np.array([np.sin(yaw) * np.cos(pitch), np.sin(pitch), np.cos(yaw) * np.cos(pitch)])
  forward = -eye / np.linalg.norm(eye)
  right = np.cross(forward, [0.0, 1.0, 0.0])
  right /= np.linalg.norm(right)
  up = np.cross(right, forward)
  cam2world = np.eye(4)
  cam2world[:3, :3] = np.stack([right, -up, forward], axis=1)  # OpenCV axes, as EG3D's
  cam2world[:3, 3] = eye
  intrinsics = np.array([[4.2647, 0, 0.5], [0, 4.2647, 0.5], [0, 0, 1]])
  return np.concatenate([cam2world.ravel(), intrinsics.ravel()]).astype(np.float32)


def write_folder(folder: str, count: int, fmt: str) -> None:
  """`count` portraits in the EG3D layout (00000/imgNNNNNNNN.png|jpg, .npy coefficients)."""
  suffix = '.png' if fmt == 'png' else '.jpg'
  os.makedirs(os.path.join(folder, '00000'), exist_ok=True)
  labels = []
  for i in range(count):
    key = f'00000/img{i:08d}{suffix}'
    path = os.path.join(folder, *key.split('/'))
    Image.fromarray(portrait(i)).save(path, **({'quality': 95} if fmt == 'jpeg' else {}))
    np.save(path[:-len(suffix)] + '.npy', np.random.default_rng(i).normal(size=N_COEFFS)
            .astype(np.float32))
    labels.append([key, camera(i).tolist()])
  with open(os.path.join(folder, 'dataset.json'), 'w') as f:
    json.dump({'labels': labels}, f)


def ensure_dataset(data_dir: str, count: int, fmt: str) -> tuple[str, str]:
  """Builds portrait_folder/bench_{fmt}_n{count} under data_dir/tfds unless it is there already."""
  config_name = f'bench_{fmt}_n{count}'
  tfds_dir = os.path.join(data_dir, 'tfds')
  name = f'portrait_folder/{config_name}'
  try:
    data.open_split(name, 'train', tfds_dir)
    return name, tfds_dir
  except Exception:  # pylint: disable=broad-except  (not built yet: tfds raises several kinds)
    pass
  folder = os.path.join(data_dir, f'folder_{fmt}_n{count}')
  print(f'Writing {count} {fmt} portraits to {folder} and building {name} ...', flush=True)
  write_folder(folder, count, fmt)
  config = builders.PortraitFolderConfig(name=config_name, folder=folder, resolution=RESOLUTION)
  builders.PortraitFolder(data_dir=tfds_dir, config=config).download_and_prepare()
  return name, tfds_dir


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--data_dir', default='/tmp/faceshop_input_bench')
  parser.add_argument('--format', choices=('png', 'jpeg'), default='png')
  parser.add_argument('--count', type=int, default=256, help='Portraits in the dataset.')
  parser.add_argument('--workers', default='0,1,2,4', help='grain worker counts to time.')
  parser.add_argument('--hosts', type=int, default=1,
                      help='Hosts sharing the global batch (per-host batch = batch / hosts).')
  parser.add_argument('--batches', type=int, default=8, help='Batches per timed pass.')
  args = parser.parse_args()
  flags.FLAGS.mark_as_parsed()  # grain's workers read absl flags (defaults).

  name, tfds_dir = ensure_dataset(args.data_dir, args.count, args.format)
  source = data.open_split(name, 'train', tfds_dir)
  global_batch = gan_config.get_config('').batch_size
  host_batch = global_batch // args.hosts
  shard = grain.sharding.ShardOptions(shard_index=0, shard_count=args.hosts, drop_remainder=True)
  record_kb = sum(os.path.getsize(f) for f in _record_files(tfds_dir, name)) / len(source) / 1024
  print(f'{name}: {len(source)} {RESOLUTION}² portraits ({args.format} folder), per-host batch '
        f'{host_batch} (global {global_batch} over {args.hosts} host(s)), keys {KEYS}, '
        f'{args.batches} batches per pass, median of 3 passes after a warm-up pass; '
        f'{record_kb:.0f} KiB per record; {os.cpu_count()} CPU(s).')
  print(f'{"workers":>8}{"images/s (median)":>20}{"ms per batch":>15}')
  rates = {}
  for workers in (int(w) for w in args.workers.split(',')):
    iterator = data.make_train_iterator(source, global_batch_size=global_batch, seed=0,
                                        shard=shard, worker_count=workers, keys=KEYS)
    seconds = timing.median_seconds(lambda: [next(iterator) for _ in range(args.batches)], runs=3)
    iterator.close()
    rates[workers] = args.batches * host_batch / seconds
    print(f'{workers:>8}{rates[workers]:>20.1f}{1000 * seconds / args.batches:>15.1f}', flush=True)

  per_worker = rates.get(1)
  print(f'\nConsumption of a paper-scale step at per-host batch B = {host_batch}:')
  print(f'{"step T (s)":>11}{"images/s needed (B/T)":>24}'
        + (f'{"workers needed (at 1-worker rate)":>36}' if per_worker else ''))
  for step in STEP_SECONDS:
    needed = host_batch / step
    row = f'{step:>11g}{needed:>24.1f}'
    if per_worker:
      row += f'{math.ceil(needed / per_worker):>36d}'
    print(row)


def _record_files(tfds_dir: str, name: str) -> list[str]:
  files = []
  for root, _, names in os.walk(os.path.join(tfds_dir, *name.split('/'))):
    files += [os.path.join(root, n) for n in names if 'array_record' in n]
  return files


if __name__ == '__main__':
  main()
