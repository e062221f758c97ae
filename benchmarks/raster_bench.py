"""Timing of faceshop_jax.raster on a head-sized mesh under the portrait camera.

For each (resolution, batch) case, prints one JSON line with the median milliseconds per frame of
  * forward: rasterize + interpolate per-vertex colours;
  * forward_backward: value and gradient of the MSE of that colour image against a target, w.r.t.
    the world vertex positions (through the projection) and the colours.
Every timed function is jitted and warmed up first; medians are over --runs calls.

Usage:
  python benchmarks/raster_bench.py [--mesh=sphere|head] [--runs=10] [--sizes=224,512]
      [--batches=1,8]
"""
import argparse
import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

from faceshop_jax import geometry
from faceshop_jax import raster

sys.path.insert(0, os.path.dirname(__file__))
import timing  # pylint: disable=g-import-not-at-top,wrong-import-position


def sphere_mesh(n_lat: int = 48, n_lon: int = 96, radii=(0.095, 0.12, 0.1)):
  """A UV ellipsoid (metres, about the head's size): vertices [V, 3], triangles [T, 3] int32.

  Its 2 * n_lon * (n_lat - 1) triangles are wound so (v1 - v0) x (v2 - v0) points outward, like the
  face model's.
  """
  theta = np.linspace(0.0, np.pi, n_lat + 1)[1:-1]
  phi = np.linspace(0.0, 2.0 * np.pi, n_lon, endpoint=False)
  t, p = np.meshgrid(theta, phi, indexing='ij')
  ring = np.stack([np.sin(t) * np.sin(p), np.cos(t), np.sin(t) * np.cos(p)], axis=-1).reshape(-1, 3)
  vertices = np.concatenate([[[0.0, 1.0, 0.0]], ring, [[0.0, -1.0, 0.0]]]) * np.asarray(radii)
  ring_index = lambda i, j: 1 + i * n_lon + j % n_lon
  south = 1 + (n_lat - 1) * n_lon
  faces = []
  for j in range(n_lon):
    faces.append((0, ring_index(0, j + 1), ring_index(0, j)))
    faces.append((south, ring_index(n_lat - 2, j), ring_index(n_lat - 2, j + 1)))
    for i in range(n_lat - 2):
      a, b = ring_index(i, j), ring_index(i, j + 1)
      c, d = ring_index(i + 1, j), ring_index(i + 1, j + 1)
      faces += [(a, b, d), (a, d, c)]
  return np.float32(vertices), np.int32(faces)


def head_mesh():
  """The embedded face model's mean shape: vertices [V, 3], triangles [T, 3] int32."""
  try:
    from faceshop_jax import face_model  # pylint: disable=g-import-not-at-top
    model = face_model.load_embedded()
  except (ImportError, FileNotFoundError) as e:
    sys.exit(f'--mesh=head needs faceshop_jax.face_model and its embedded asset: {e}')
  return np.asarray(model.mean_shape, np.float32), np.asarray(model.triangles, np.int32)


def bench_case(vertices, triangles, size, batch, runs):
  """Median ms per frame of forward and forward+backward for one (size, batch)."""
  rng = np.random.default_rng(0)
  # Small per-frame jitter so the frames differ, as in a training batch.
  jitter = rng.normal(scale=0.01, size=(batch, 1, 3)).astype(np.float32)
  points = jnp.asarray(vertices[None] + jitter)
  colors = jnp.asarray(rng.uniform(size=(batch,) + vertices.shape).astype(np.float32))
  target = jnp.asarray(rng.uniform(size=(batch, size, size, 3)).astype(np.float32))
  camera = geometry.camera_from_yaw_pitch(0.0, 0.0)
  triangles = jnp.asarray(triangles)

  def render(points, colors):
    screen_xy, depth = geometry.project_points(points, camera, size, size)
    fragments = raster.rasterize(screen_xy, depth, triangles, size, size)
    return raster.interpolate(colors, triangles, fragments), fragments

  forward = jax.jit(lambda p, c: render(p, c)[0])
  loss = lambda p, c: jnp.mean((render(p, c)[0] - target) ** 2)
  forward_backward = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
  coverage = float(jnp.mean(render(points, colors)[1].mask))
  return {
      'size': size,
      'batch': batch,
      'triangles': int(triangles.shape[0]),
      'coverage': round(coverage, 3),
      'forward_ms_per_frame': round(1e3 * timing.median_seconds(forward, points, colors, runs=runs) / batch, 2),
      'forward_backward_ms_per_frame': round(
          1e3 * timing.median_seconds(forward_backward, points, colors, runs=runs) / batch, 2),
  }


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--mesh', choices=('sphere', 'head'), default='sphere')
  parser.add_argument('--runs', type=int, default=10)
  parser.add_argument('--sizes', default='224,512')
  parser.add_argument('--batches', default='1,8')
  args = parser.parse_args()
  vertices, triangles = sphere_mesh() if args.mesh == 'sphere' else head_mesh()
  for size in map(int, args.sizes.split(',')):
    for batch in map(int, args.batches.split(',')):
      result = bench_case(vertices, triangles, size, batch, args.runs)
      print(json.dumps({'mesh': args.mesh, 'device': jax.devices()[0].platform, **result}),
            flush=True)


if __name__ == '__main__':
  main()
