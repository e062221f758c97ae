r"""How fast the interactive editor answers a slider move: /api/render latency through TestClient.

  python benchmarks/editor_latency.py --workdir=/work/runs/imitative [--runs=30]

Loads the generator (a training run or an export), builds the editor's app (serve.make_app, which
compiles its first render) and posts `runs` edits whose camera yaw sweeps the trained range, as
dragging the yaw slider does. Prints the median and 90th percentile of the server's render time
(building the portrait and rendering it: render_ms in the answer) and of the whole request
(validation, render, PNG encoding, JSON, the in-process HTTP round trip), after the start-up times.
"""
import argparse
import tempfile
import time

import numpy as np
from starlette import testclient

from faceshop_jax import command_line
from faceshop_jax import serve
from faceshop_jax.face_model import prior as prior_lib


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--workdir', required=True, help='A training run or an export.')
  parser.add_argument('--runs', type=int, default=30, help='/api/render calls to time.')
  args = parser.parse_args()

  start = time.perf_counter()
  bundle = command_line.load_generator(args.workdir)
  loaded = time.perf_counter()
  with tempfile.TemporaryDirectory() as out_dir:
    client = testclient.TestClient(serve.make_app(bundle, out_dir))
    warmed = time.perf_counter()
    max_yaw = prior_lib.PriorConfig().max_yaw
    render_ms, total_ms = [], []
    for yaw in np.linspace(-max_yaw, max_yaw, args.runs):
      sent = time.perf_counter()
      response = client.post('/api/render', json={'seed': 0, 'yaw': float(yaw),
                                                   'expression': {'jawOpen': 0.3}})
      total_ms.append(1000 * (time.perf_counter() - sent))
      response.raise_for_status()
      render_ms.append(response.json()['render_ms'])

  size = bundle.config.model.sr_resolution
  print(f'{args.workdir}: step {bundle.step}, {size}x{size} images; loaded in '
        f'{loaded - start:.1f} s, app built and warmed in {warmed - loaded:.1f} s.')
  print(f'{args.runs} /api/render calls, yaw {-max_yaw:g} to {max_yaw:g}:')
  print(f'{"":<28}{"median ms":>10}{"p90 ms":>10}')
  for name, times in (('server render (render_ms)', render_ms), ('whole request', total_ms)):
    print(f'{name:<28}{np.median(times):>10.1f}{np.percentile(times, 90):>10.1f}')


if __name__ == '__main__':
  main()
