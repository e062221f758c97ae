"""Meshes of a density field by marching cubes, and PLY / OBJ mesh files.

EG3D's shape extraction (gen_samples.py): the density is sampled on the corners of a regular grid
over the cube [-half_size, half_size]³ (in metres), and the surface where it crosses `level` is
extracted with scikit-image's marching cubes. EG3D uses level 10 on its own density scale; pick the
level from the range of the field at hand.

Grid convention: `resolution` samples per axis at -half_size + i·spacing, i = 0 … resolution − 1,
spacing = 2·half_size / (resolution − 1), so the outer samples lie on the faces of the cube. Array
axes 0, 1, 2 are the x, y, z coordinates of the points, and a vertex at fractional grid index
(i, j, k) is at -half_size + (i, j, k)·spacing metres.

Usage:
  density = surface.sample_density(lambda points: field_density(params, points), 256, 0.15)
  shape = surface.marching_cubes(density, level=10.0, half_size=0.15)
  surface.write_mesh('face.ply', shape)
"""
import os
from typing import BinaryIO, Callable, NamedTuple, Optional

import numpy as np
from skimage import measure

from faceshop_jax.media import atomic_output

MESH_EXTENSIONS = ('.ply', '.obj')

# density_fn(points [N, 3] float32, metres) -> densities [N] (a numpy or jax array).
DensityFn = Callable[[np.ndarray], np.ndarray]


class Mesh(NamedTuple):
  """A triangle mesh.

  Attributes:
    vertices: float32 [V, 3] positions in metres.
    faces: int32 [F, 3] vertex indices, counter-clockwise seen from outside (right-hand normals
      point toward lower density).
  """
  vertices: np.ndarray
  faces: np.ndarray


def grid_spacing(resolution: int, half_size: float) -> float:
  """Distance in metres between neighbouring samples of the grid (see the module docstring)."""
  if resolution < 2:
    raise ValueError(f'resolution must be at least 2, got {resolution}')
  if not half_size > 0:
    raise ValueError(f'half_size must be positive, got {half_size}')
  return 2.0 * half_size / (resolution - 1)


def grid_points(resolution: int, half_size: float) -> np.ndarray:
  """The grid's sample points: float32 [R, R, R, 3], points[i, j, k] = (x_i, y_j, z_k).

  Args:
    resolution: R ≥ 2, samples per axis.
    half_size: the cube is [-half_size, half_size]³ metres; its corners are samples.
  """
  axis = _grid_axis(resolution, half_size)
  return np.stack(np.meshgrid(axis, axis, axis, indexing='ij'), axis=-1)


def _grid_axis(resolution: int, half_size: float) -> np.ndarray:
  """The float32 [R] sample coordinates along one axis of the grid."""
  return (-half_size + np.arange(resolution) * grid_spacing(resolution, half_size)).astype(
      np.float32)


def sample_density(density_fn: DensityFn, resolution: int, half_size: float,
                   chunk: int = 1 << 18) -> np.ndarray:
  """Evaluates density_fn over the grid of `grid_points`, `chunk` points per call.

  The points are made chunk by chunk, so the memory besides the result is that of one call. Every
  call gets exactly `chunk` points (the last one is padded by repeating the grid's final point, and
  the padding's densities are dropped), so a jitted density_fn compiles once.

  Args:
    density_fn: points [N, 3] float32 -> densities [N].
    resolution: R, samples per axis.
    half_size: the cube is [-half_size, half_size]³ metres.
    chunk: points per call; bounds the memory of one call.

  Returns:
    float32 [R, R, R], density[i, j, k] at grid_points(R, half_size)[i, j, k].
  """
  if chunk < 1:
    raise ValueError(f'chunk must be positive, got {chunk}')
  axis = _grid_axis(resolution, half_size)
  shape = (resolution,) * 3
  densities = np.empty(resolution**3, np.float32)
  for start in range(0, len(densities), chunk):
    flat_indices = np.minimum(np.arange(start, start + chunk), len(densities) - 1)
    points = axis[np.stack(np.unravel_index(flat_indices, shape), axis=-1)]
    count = min(chunk, len(densities) - start)
    densities[start:start + count] = np.asarray(density_fn(points), np.float32)[:count]
  return densities.reshape(shape)


def marching_cubes(density: np.ndarray, level: float, half_size: float) -> Mesh:
  """The surface where a density sampled on `grid_points` crosses `level`.

  Args:
    density: [R, R, R] densities at grid_points(R, half_size), higher inside the shape.
    level: the density of the surface, strictly between the field's minimum and maximum.
    half_size: the half size in metres of the cube the density was sampled on.

  Returns:
    The Mesh, in metres, with faces wound so that their normals point toward lower density. Where
    the density is above `level` on the faces of the cube the surface is cut open there.

  Raises:
    ValueError: density that is not a finite [R, R, R] cube, or a level outside its range.
  """
  density = np.asarray(density, np.float32)
  if density.ndim != 3 or len(set(density.shape)) != 1:
    raise ValueError(f'density must be a cube [R, R, R], got {list(density.shape)}')
  if not np.all(np.isfinite(density)):
    raise ValueError('density has NaN or infinite values')
  low, high = float(density.min()), float(density.max())
  if not low < level < high:
    raise ValueError(f"level {level} is outside the density field's range [{low:.6g}, {high:.6g}]:"
                     f' there is no surface to extract; try a level in between, e.g. '
                     f'{(low + high) / 2:.6g}')
  spacing = grid_spacing(density.shape[0], half_size)
  vertices, faces, _, _ = measure.marching_cubes(density, level, spacing=(spacing,) * 3,
                                                 allow_degenerate=False)
  # For its default gradient_direction='descent' (the object holds the higher values) scikit-image
  # winds faces clockwise seen from outside (its "left-hand rule"); swapping two corners turns
  # them counter-clockwise, so the right-hand normals point out of the shape.
  return Mesh((vertices - half_size).astype(np.float32), faces[:, ::-1].astype(np.int32))


def _write_mesh_file(path: str, mesh: Mesh, colors: Optional[np.ndarray],
                     write_to: Callable[[BinaryIO, Mesh, Optional[np.ndarray]], None]) -> None:
  """Checks the colours, then writes the file atomically by write_to(binary file, mesh, colors)."""
  if colors is not None:
    colors = np.asarray(colors)
    expected = [len(mesh.vertices), 3]
    if colors.dtype != np.uint8 or list(colors.shape) != expected:
      raise ValueError(f'colors must be uint8 {expected} (one RGB per vertex), '
                       f'got {colors.dtype} {list(colors.shape)}')
  with atomic_output(path) as temporary, open(temporary, 'wb') as f:
    write_to(f, mesh, colors)


def _write_ply_to(f: BinaryIO, mesh: Mesh, colors: Optional[np.ndarray]) -> None:
  """The PLY of write_ply, into an open binary file."""
  vertex_fields = [('x', '<f4'), ('y', '<f4'), ('z', '<f4')]
  if colors is not None:
    vertex_fields += [('red', 'u1'), ('green', 'u1'), ('blue', 'u1')]
  vertex_records = np.empty(len(mesh.vertices), vertex_fields)
  for axis, name in enumerate('xyz'):
    vertex_records[name] = mesh.vertices[:, axis]
  if colors is not None:
    for channel, name in enumerate(('red', 'green', 'blue')):
      vertex_records[name] = colors[:, channel]
  face_records = np.empty(len(mesh.faces), [('count', 'u1'), ('indices', '<i4', (3,))])
  face_records['count'] = 3
  face_records['indices'] = mesh.faces
  header = ['ply', 'format binary_little_endian 1.0', f'element vertex {len(mesh.vertices)}']
  header += [f'property {"float" if kind == "<f4" else "uchar"} {name}'
             for name, kind in vertex_fields]
  header += [f'element face {len(mesh.faces)}', 'property list uchar int vertex_indices',
             'end_header']
  f.write(('\n'.join(header) + '\n').encode('ascii'))
  f.write(vertex_records.tobytes())
  f.write(face_records.tobytes())


def _write_obj_to(f: BinaryIO, mesh: Mesh, colors: Optional[np.ndarray]) -> None:
  """The OBJ of write_obj, into an open binary file."""
  vertex_rows = mesh.vertices.astype(np.float64)
  vertex_format = 'v %.9g %.9g %.9g'
  if colors is not None:
    vertex_rows = np.concatenate([vertex_rows, colors / 255.0], axis=1)
    vertex_format += ' %.6f %.6f %.6f'
  np.savetxt(f, vertex_rows, fmt=vertex_format)
  np.savetxt(f, mesh.faces.astype(np.int64) + 1, fmt='f %d %d %d')


def write_ply(path: str, mesh: Mesh, colors: Optional[np.ndarray] = None) -> None:
  """Writes a binary little-endian PLY: float x, y, z (+ uchar red, green, blue), int faces.

  The faces are `list uchar int vertex_indices`, 0-based.

  Args:
    path: the .ply file to write (atomically).
    mesh: the Mesh.
    colors: optional uint8 [V, 3] vertex colours, stored as they are.

  Raises:
    ValueError: colours that are not uint8 [V, 3].
  """
  _write_mesh_file(path, mesh, colors, _write_ply_to)


def write_obj(path: str, mesh: Mesh, colors: Optional[np.ndarray] = None) -> None:
  """Writes a Wavefront OBJ: `v x y z` lines (`v x y z r g b` with colours), then `f a b c`.

  Positions are written with 9 significant digits, which round-trip float32 exactly; faces are
  1-based as OBJ requires.

  Args:
    path: the .obj file to write (atomically).
    mesh: the Mesh.
    colors: optional uint8 [V, 3] vertex colours, stored as r, g, b in [0, 1] (colour / 255).

  Raises:
    ValueError: colours that are not uint8 [V, 3].
  """
  _write_mesh_file(path, mesh, colors, _write_obj_to)


def write_mesh(path: str, mesh: Mesh, colors: Optional[np.ndarray] = None) -> None:
  """Writes the mesh as PLY or OBJ, chosen by the extension of `path` (see write_ply, write_obj).

  Raises:
    ValueError: an extension other than MESH_EXTENSIONS (any case), or colours that are not
      uint8 [V, 3].
  """
  extension = os.path.splitext(path)[1].lower()
  if extension == '.ply':
    write_ply(path, mesh, colors)
  elif extension == '.obj':
    write_obj(path, mesh, colors)
  else:
    raise ValueError(f'unknown mesh extension {extension!r} in {path!r}: '
                     f'supported are {", ".join(MESH_EXTENSIONS)}')
