r"""Speed and memory of the tri-plane generator, one JSON line per case.

  python benchmarks/generator_bench.py [--cases=eg3d_small,eg3d_full] [--runs=3]

Cases are built like EG3D's generator (fp32, 512-d z and w, 25-d camera):
  eg3d_small: backbone channel_base 4096 / channel_max 128 making 3×32 planes at 256², neural
    rendering 64² with 24+24 samples, mapping depth 2, 2× super-resolution (64² → 128², 128 and 64
    channels); batch 1 and 4 forward, batch 2 forward+backward of image.mean();
  eg3d_full: channel_base 32768 / channel_max 512, planes 3×32 at 256², rendering 128² with
    48+48 samples, 4× super-resolution to 512² (256 and 128 channels); batch 1 and 4 forward.
Each line (chunk_rays 512 by default, the CPU's best; see --chunk_rays): seconds per call and per image (median after a compile call), XLA's FLOP count of the
call, achieved FLOP/s and its fraction of the float32 matmul peak measured in the same run, and
the compiled program's memory (arguments + outputs + temporaries).
"""
import argparse
import json
import os
import sys

import jax
import jax.numpy as jnp

sys.path.insert(0, os.path.dirname(__file__))
import timing  # pylint: disable=g-import-not-at-top,wrong-import-position

from faceshop_jax import geometry  # pylint: disable=g-import-not-at-top,wrong-import-position
from faceshop_jax import models  # pylint: disable=g-import-not-at-top,wrong-import-position

CASES = {
    'eg3d_small': dict(
        generator=dict(channel_base=4096, channel_max=128, rendering_resolution=64,
                       sr_resolution=128, num_coarse=24, num_fine=24, mapping_layers=2,
                       sr_channels=(128, 64)),
        forward_batches=(1, 4), backward_batches=(2,)),
    'eg3d_full': dict(
        generator=dict(channel_base=32768, channel_max=512, rendering_resolution=128,
                       sr_resolution=512, num_coarse=48, num_fine=48, mapping_layers=8,
                       sr_channels=(256, 128)),
        forward_batches=(1, 4), backward_batches=()),
}


def build(case: str, fused: bool, chunk_rays: int):
  generator = models.TriPlaneGenerator(z_dim=512, w_dim=512, plane_resolution=256,
                                       plane_channels=32, chunk_rays=chunk_rays, fused_modconv=fused,
                                       **CASES[case]['generator'])
  z = jnp.zeros((1, 512))
  camera = geometry.camera_from_yaw_pitch(jnp.zeros(1), jnp.zeros(1))
  rngs = {'params': jax.random.PRNGKey(0), 'noise': jax.random.PRNGKey(1)}
  variables = jax.jit(lambda: generator.init(rngs, z, camera, camera, noise_mode='const'))()
  return generator, variables


def measure(name, fn, args, batch, peak, runs):
  jitted = jax.jit(fn)
  cost = timing.compiled_cost(jitted, *args)
  seconds = timing.median_seconds(jitted, *args, runs=runs)
  flops = cost['flops']
  line = {'case': name, 'batch': batch, 'seconds': round(seconds, 4),
          'seconds_per_image': round(seconds / batch, 4), 'flops': flops,
          'flop_per_s': flops and round(flops / seconds), 'fraction_of_matmul_peak':
          flops and round(flops / seconds / peak, 4),
          'memory_gib': cost['peak_bytes'] and round(cost['peak_bytes'] / 2**30, 3),
          'device': jax.devices()[0].device_kind}
  print(json.dumps(line), flush=True)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--cases', default='eg3d_small,eg3d_full')
  parser.add_argument('--runs', type=int, default=3)
  parser.add_argument('--fused', action='store_true', help='grouped-conv modulated convs')
  # Rays rendered per chunk: ~512 keeps a chunk's samples in cache on CPU (~1.3x faster than 2048
  # here); accelerators prefer thousands. A chunk larger than the image would pad (more work).
  parser.add_argument('--chunk_rays', type=int, default=512)
  args = parser.parse_args()
  peak = timing.matmul_peak_flops()
  print(json.dumps({'matmul_peak_flop_per_s': round(peak), 'device': jax.devices()[0].device_kind}),
        flush=True)
  for case in args.cases.split(','):
    generator, variables = build(case, args.fused, args.chunk_rays)

    def forward(variables, z, camera):
      return generator.apply(variables, z, camera, camera, noise_mode='const')['image']

    def forward_backward(variables, z, camera):
      return jax.grad(lambda p: forward({**variables, 'params': p}, z, camera).mean())(
          variables['params'])

    for batch in CASES[case]['forward_batches']:
      z = jax.random.normal(jax.random.PRNGKey(batch), (batch, 512))
      camera = geometry.camera_from_yaw_pitch(jnp.zeros(batch), jnp.zeros(batch))
      measure(f'{case}/forward', forward, (variables, z, camera), batch, peak, args.runs)
    for batch in CASES[case]['backward_batches']:
      z = jax.random.normal(jax.random.PRNGKey(batch), (batch, 512))
      camera = geometry.camera_from_yaw_pitch(jnp.zeros(batch), jnp.zeros(batch))
      measure(f'{case}/forward_backward', forward_backward, (variables, z, camera), batch, peak,
              args.runs)


if __name__ == '__main__':
  main()
