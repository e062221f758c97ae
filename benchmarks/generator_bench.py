r"""Speed and memory of the tri-plane generator beside a PyTorch reference, one JSON line per case.

  python benchmarks/generator_bench.py [--cases=eg3d_small,eg3d_full] [--runs=3] [--batches=1]
      [--no_torch] [--plain_gradient] [--cpu_devices=2]

Cases are built like EG3D's generator (fp32, 512-d z and w, 25-d camera):
  eg3d_small: backbone channel_base 4096 / channel_max 128 making 3×32 planes at 256², neural
    rendering 64² with 24+24 samples, mapping depth 2, 2× super-resolution (64² → 128², 128 and 64
    channels); batch 1 and 4 forward, batch 2 forward+backward of image.mean();
  eg3d_full: channel_base 32768 / channel_max 512, planes 3×32 at 256², rendering 128² with
    48+48 samples, 4× super-resolution to 512² (256 and 128 channels); batch 1 and 4 forward.
Each line (chunk_rays 512 by default, the CPU's best; see --chunk_rays): seconds per call and per image (median after a compile call), XLA's FLOP count of the
call, achieved FLOP/s and its fraction of the float32 matmul peak measured in the same run, and
the compiled program's memory (arguments + outputs + temporaries).
Unless --no_torch, each such line ("impl": "jax") is followed by one for the PyTorch reference
(benchmarks/torch_reference.py: EG3D's generator written as its PyTorch code does it, doing our
work; fp32 on the CPU with --torch_threads threads), timed in the same process right after for the
same case and batch (median after one warm-up call), with "speedup" = its seconds / ours. torch is a
benchmark-only dependency (the test extra), imported only then.

--cpu_devices=N splits the host CPU into N JAX devices (jax_num_cpu_devices, one per core) and runs
each call data-parallel over them, the batch sharded and the parameters replicated (what a stage's
mesh does with them): XLA:CPU runs one device's program with little parallelism outside its
convolutions and matrix products, so a single device leaves a core idle through the renderer's
chunk loop. A batch that N does not divide runs on one device.

The renderer's tri-plane lookup and its gradient run the C++ CPU kernels of
faceshop_jax/nerf/triplane_cpu.py ("triplane_kernel": true in each line); FACESHOP_TRIPLANE_KERNEL=0
runs the pure-JAX gathers and scatter-adds instead, the ablation.
"""
import argparse
import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

sys.path.insert(0, os.path.dirname(__file__))
import timing  # pylint: disable=g-import-not-at-top,wrong-import-position
from generator_cases import CASES  # pylint: disable=g-import-not-at-top,wrong-import-position

from faceshop_jax import geometry  # pylint: disable=g-import-not-at-top,wrong-import-position
from faceshop_jax import models  # pylint: disable=g-import-not-at-top,wrong-import-position
from faceshop_jax.nerf import triplane_cpu  # pylint: disable=wrong-import-position



def build(case: str, fused: bool, chunk_rays: int):
  generator = models.TriPlaneGenerator(z_dim=512, w_dim=512, plane_resolution=256,
                                       plane_channels=32, chunk_rays=chunk_rays, fused_modconv=fused,
                                       **CASES[case]['generator'])
  z = jnp.zeros((1, 512))
  camera = geometry.camera_from_yaw_pitch(jnp.zeros(1), jnp.zeros(1))
  rngs = {'params': jax.random.PRNGKey(0), 'noise': jax.random.PRNGKey(1)}
  variables = jax.jit(lambda: generator.init(rngs, z, camera, camera, noise_mode='const'))()
  return generator, variables


def torch_reference():
  """benchmarks/torch_reference.py, imported only when asked for (it needs torch)."""
  try:
    import torch_reference as reference  # pylint: disable=g-import-not-at-top
  except ImportError as e:  # its message names the extra to install
    raise SystemExit(f'{e} (or pass --no_torch)') from e
  return reference


def data_parallel(variables, z, camera, num_devices: int):
  """The mesh of the first num_devices devices, ('data',), and the call's arguments placed on it: z
  and camera split along the batch, the variables replicated."""
  mesh = Mesh(np.array(jax.devices()[:num_devices]), ('data',))
  replicated, split = NamedSharding(mesh, P()), NamedSharding(mesh, P('data'))
  return mesh, (jax.device_put(variables, replicated), jax.device_put(z, split),
                jax.device_put(camera, split))


def measure(name, fn, args, batch, peak, runs, num_devices=1, **labels):
  """Prints and returns the median seconds of the jitted fn (args placed on num_devices devices)."""
  jitted = jax.jit(fn)
  cost = timing.compiled_cost(jitted, *args)
  seconds = timing.median_seconds(jitted, *args, runs=runs)
  flops = cost['flops'] and cost['flops'] * num_devices  # XLA counts one device's share
  line = {'case': name, 'batch': batch, 'impl': 'jax', 'seconds': round(seconds, 4),
          'seconds_per_image': round(seconds / batch, 4), 'flops': flops,
          'flop_per_s': flops and round(flops / seconds), 'fraction_of_matmul_peak':
          flops and round(flops / seconds / peak, 4),
          'memory_gib': cost['peak_bytes'] and round(cost['peak_bytes'] / 2**30, 3),
          'device': jax.devices()[0].device_kind, 'devices': num_devices, **labels}
  print(json.dumps(line), flush=True)
  return seconds


def measure_torch(reference, case, kind, batch, jax_seconds, args):
  """Prints the PyTorch reference's line for the same case and batch."""
  seconds = reference.time_case(case, kind, batch, args.chunk_rays, args.runs,
                                threads=args.torch_threads)
  line = {'case': f'{case}/{kind}', 'batch': batch, 'impl': 'torch', 'seconds': round(seconds, 4),
          'seconds_per_image': round(seconds / batch, 4),
          'speedup': round(seconds / jax_seconds, 3),
          'fused_modconv': reference.FUSED_DEFAULT[(case, kind)], 'threads': args.torch_threads}
  print(json.dumps(line), flush=True)


def plain_field_image(generator, z, camera):
  """The generator's image with its SplitField hidden behind a plain function, so that the renderer
  is differentiated by autodiff of its checkpointed chunks (the ablation of the split gradient)."""
  ws = generator.mapping(z, camera)
  field = generator.field(ws, 'const')
  return generator.render_field(lambda points, directions: field(points, directions), ws, camera,
                                'const')['image']


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--cases', default='eg3d_small,eg3d_full')
  parser.add_argument('--runs', type=int, default=3)
  parser.add_argument('--fused', action='store_true', help='grouped-conv modulated convs')
  # Rays rendered per chunk: ~512 keeps a chunk's samples in cache on CPU (~1.3x faster than 2048
  # here); accelerators prefer thousands. A chunk larger than the image would pad (more work).
  parser.add_argument('--chunk_rays', type=int, default=512)
  parser.add_argument('--batches', default='', help='only these batch sizes (comma-separated)')
  parser.add_argument('--no_torch', action='store_true', help='skip the PyTorch reference')
  parser.add_argument('--torch_threads', type=int, default=2, help="the reference's torch threads")
  parser.add_argument('--plain_gradient', action='store_true',
                      help='differentiate the renderer by plain autodiff of checkpointed chunks, '
                      "not the tri-plane field's own rule (nerf.SplitField): the ablation")
  parser.add_argument('--cpu_devices', type=int, default=1,
                      help='split the CPU into this many devices and run data-parallel over them')
  args = parser.parse_args()
  if args.cpu_devices > 1:
    jax.config.update('jax_num_cpu_devices', args.cpu_devices)  # before the backend starts
  reference = None if args.no_torch else torch_reference()
  batches = {int(b) for b in args.batches.split(',') if b}
  peak = timing.matmul_peak_flops()
  print(json.dumps({'matmul_peak_flop_per_s': round(peak), 'device': jax.devices()[0].device_kind}),
        flush=True)
  for case in args.cases.split(','):
    generator, variables = build(case, args.fused, args.chunk_rays)

    def forward(variables, z, camera):
      if not args.plain_gradient:
        return generator.apply(variables, z, camera, camera, noise_mode='const')['image']
      return generator.apply(variables, z, camera, method=plain_field_image)

    def forward_backward(variables, z, camera):
      return jax.grad(lambda p: forward({**variables, 'params': p}, z, camera).mean())(
          variables['params'])

    for kind, fn, key in (('forward', forward, 'forward_batches'),
                          ('forward_backward', forward_backward, 'backward_batches')):
      for batch in CASES[case][key]:
        if batches and batch not in batches:
          continue
        z = jax.random.normal(jax.random.PRNGKey(batch), (batch, 512))
        camera = geometry.camera_from_yaw_pitch(jnp.zeros(batch), jnp.zeros(batch))
        num_devices = args.cpu_devices if batch % args.cpu_devices == 0 else 1
        mesh, placed = data_parallel(variables, z, camera, num_devices)
        with jax.set_mesh(mesh):  # as a stage's step runs (the tri-plane kernel needs it)
          seconds = measure(f'{case}/{kind}', fn, placed, batch, peak, args.runs, num_devices,
                            gradient='plain' if args.plain_gradient else 'split',
                            triplane_kernel=triplane_cpu.kernels_available())
        if reference is not None:
          measure_torch(reference, case, kind, batch, seconds, args)


if __name__ == '__main__':
  main()
