"""Marching cubes on a sphere's density field (geometry in metres, winding) and PLY / OBJ files."""
import os

import jax.numpy as jnp
import numpy as np
import pytest

from faceshop_jax import surface

RESOLUTION = 48
HALF_SIZE = 0.25
RADIUS = 0.15
CELL = 2 * HALF_SIZE / (RESOLUTION - 1)


def _sphere_density(center, radius):
  """density_fn of a ball: 100·(radius − |x − center|), so the level-0 surface is the sphere."""
  center = jnp.asarray(center, jnp.float32)
  return lambda points: 100.0 * (radius - jnp.linalg.norm(points - center, axis=-1))


def _sphere_mesh(center=(0.0, 0.0, 0.0), radius=RADIUS):
  density = surface.sample_density(_sphere_density(center, radius), RESOLUTION, HALF_SIZE)
  return surface.marching_cubes(density, 0.0, HALF_SIZE)


@pytest.fixture(scope='module')
def sphere():
  return _sphere_mesh()


def _face_normals(mesh):
  """Unnormalised right-hand normals [F, 3] and centroids [F, 3] of the faces."""
  a, b, c = (mesh.vertices[mesh.faces[:, i]].astype(np.float64) for i in range(3))
  return np.cross(b - a, c - a), (a + b + c) / 3


def _read_ply(path):
  """(vertices float32 [V, 3], colours uint8 [V, 3] or None, faces [F, 3]) of a PLY written by
  write_ply, checking its header and that the file holds nothing else."""
  with open(path, 'rb') as f:
    data = f.read()
  end = data.index(b'end_header\n') + len(b'end_header\n')
  lines = data[:end].decode('ascii').splitlines()
  assert lines[:2] == ['ply', 'format binary_little_endian 1.0'] and lines[-1] == 'end_header'
  counts, vertex_fields = {}, []
  for line in lines[2:-1]:
    words = line.split()
    if words[0] == 'element':
      counts[words[1]] = int(words[2])
    elif words[1] == 'list':
      assert words[2:] == ['uchar', 'int', 'vertex_indices']
    else:
      vertex_fields.append((words[2], {'float': '<f4', 'uchar': 'u1'}[words[1]]))
  vertex_records = np.frombuffer(data, vertex_fields, counts['vertex'], end)
  face_offset = end + vertex_records.nbytes
  face_records = np.frombuffer(data, [('count', 'u1'), ('indices', '<i4', (3,))], counts['face'],
                               face_offset)
  assert face_offset + face_records.nbytes == len(data)
  assert np.all(face_records['count'] == 3)
  vertices = np.stack([vertex_records[name] for name in 'xyz'], axis=1)
  colors = (np.stack([vertex_records[name] for name in ('red', 'green', 'blue')], axis=1)
            if 'red' in vertex_records.dtype.names else None)
  return vertices, colors, face_records['indices']


def _read_obj(path):
  """(vertices [V, 3], colours uint8 [V, 3] or None, 0-based faces [F, 3]) of an OBJ."""
  vertex_rows, faces = [], []
  with open(path) as f:
    for line in f:
      kind, *values = line.split()
      if kind == 'v':
        vertex_rows.append([float(v) for v in values])
      else:
        assert kind == 'f'
        faces.append([int(v) - 1 for v in values])
  vertex_rows = np.array(vertex_rows)
  colors = (np.round(vertex_rows[:, 3:] * 255).astype(np.uint8) if vertex_rows.shape[1] == 6
            else None)
  return vertex_rows[:, :3].astype(np.float32), colors, np.array(faces)


def _colors(count):
  return np.random.default_rng(0).integers(0, 256, (count, 3), dtype=np.uint8)


def test_grid_points_are_the_cube_corners_evenly_spaced():
  points = surface.grid_points(5, 0.2)
  axis = np.array([-0.2, -0.1, 0.0, 0.1, 0.2], np.float32)
  assert points.shape == (5, 5, 5, 3) and points.dtype == np.float32
  np.testing.assert_allclose(points[4, 1, 3], [axis[4], axis[1], axis[3]], atol=1e-7)
  np.testing.assert_allclose(points[..., 0], np.broadcast_to(axis[:, None, None], (5, 5, 5)),
                             atol=1e-7)
  assert surface.grid_spacing(5, 0.2) == pytest.approx(0.1)
  with pytest.raises(ValueError, match='resolution'):
    surface.grid_points(1, 0.2)


def test_sample_density_in_chunks_equals_one_call():
  density_fn = _sphere_density((0.01, -0.02, 0.03), 0.1)
  batch_shapes = []

  def recording_fn(points):
    batch_shapes.append(points.shape)
    return density_fn(points)

  chunked = surface.sample_density(recording_fn, 12, 0.2, chunk=500)
  assert batch_shapes == [(500, 3)] * 4  # 12³ = 1728 points, the last call padded.
  whole = surface.sample_density(density_fn, 12, 0.2, chunk=12**3)
  assert chunked.shape == (12, 12, 12) and chunked.dtype == np.float32
  # XLA may vectorise the two batch sizes differently: equal up to float32 rounding.
  np.testing.assert_allclose(chunked, whole, atol=1e-5)
  np.testing.assert_allclose(whole, density_fn(surface.grid_points(12, 0.2)), atol=1e-5)


def test_sphere_vertices_lie_on_the_sphere(sphere):
  assert sphere.vertices.dtype == np.float32 and sphere.faces.dtype == np.int32
  distances = np.linalg.norm(sphere.vertices, axis=1)
  assert np.max(np.abs(distances - RADIUS)) < CELL / 2


def test_sphere_faces_point_outward(sphere):
  normals, centroids = _face_normals(sphere)
  assert np.mean(np.sum(normals * centroids, axis=1) > 0) >= 0.99


def test_sphere_area_is_four_pi_r_squared(sphere):
  normals, _ = _face_normals(sphere)
  area = 0.5 * np.sum(np.linalg.norm(normals, axis=1))
  assert area == pytest.approx(4 * np.pi * RADIUS**2, rel=0.03)


def test_off_centre_sphere_keeps_its_centre_in_metres():
  center = np.array([0.04, -0.03, 0.06])
  shape = _sphere_mesh(center, 0.12)
  distances = np.linalg.norm(shape.vertices - center, axis=1)
  assert np.max(np.abs(distances - 0.12)) < CELL / 2
  np.testing.assert_allclose(shape.vertices.mean(axis=0), center, atol=0.05 * CELL)


@pytest.mark.parametrize('level', [-100.0, 15.0, 1000.0])
def test_level_outside_the_field_range_is_an_error(level):
  density = np.linspace(-10, 15, 8**3).reshape(8, 8, 8)
  with pytest.raises(ValueError, match=r'range \[-10, 15\].*e\.g\. 2\.5'):
    surface.marching_cubes(density, level, HALF_SIZE)


def test_non_cube_or_non_finite_density_is_an_error():
  with pytest.raises(ValueError, match='cube'):
    surface.marching_cubes(np.zeros((8, 8, 9)), 0.5, HALF_SIZE)
  density = np.zeros((8, 8, 8))
  density[0, 0, 0] = np.nan
  with pytest.raises(ValueError, match='NaN'):
    surface.marching_cubes(density, 0.5, HALF_SIZE)


@pytest.mark.parametrize('with_colors', [False, True])
@pytest.mark.parametrize('write, read, name', [
    (surface.write_ply, _read_ply, 'sphere.ply'),
    (surface.write_obj, _read_obj, 'sphere.obj'),
], ids=['ply', 'obj'])
def test_file_round_trip(tmp_path, sphere, write, read, name, with_colors):
  colors = _colors(len(sphere.vertices)) if with_colors else None
  write(str(tmp_path / name), sphere, colors)
  vertices, read_colors, faces = read(str(tmp_path / name))
  np.testing.assert_array_equal(vertices, sphere.vertices)
  np.testing.assert_array_equal(faces, sphere.faces)
  if with_colors:
    np.testing.assert_array_equal(read_colors, colors)
  else:
    assert read_colors is None
  assert os.listdir(tmp_path) == [name]


def test_write_mesh_picks_the_format_by_extension(tmp_path, sphere):
  surface.write_mesh(str(tmp_path / 'a.PLY'), sphere)
  surface.write_mesh(str(tmp_path / 'b.obj'), sphere)
  assert _read_ply(str(tmp_path / 'a.PLY'))[0].shape == sphere.vertices.shape
  assert _read_obj(str(tmp_path / 'b.obj'))[0].shape == sphere.vertices.shape
  with pytest.raises(ValueError, match=r"'\.stl'.*\.ply, \.obj"):
    surface.write_mesh(str(tmp_path / 'c.stl'), sphere)
  assert sorted(os.listdir(tmp_path)) == ['a.PLY', 'b.obj']


@pytest.mark.parametrize('extension', ['.ply', '.obj'])
@pytest.mark.parametrize('make_colors', [
    lambda v: np.zeros((v, 3), np.float32),
    lambda v: np.zeros((v, 4), np.uint8),
    lambda v: np.zeros((v - 1, 3), np.uint8),
], ids=['float', 'rgba', 'too_few'])
def test_bad_colors_are_an_error_and_write_nothing(tmp_path, sphere, extension, make_colors):
  with pytest.raises(ValueError, match='colors must be uint8'):
    surface.write_mesh(str(tmp_path / f'sphere{extension}'), sphere,
                        make_colors(len(sphere.vertices)))
  assert os.listdir(tmp_path) == []


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, sphere):
  path = tmp_path / 'sphere.obj'
  path.write_text('previous')
  # The vertices are written before the faces fail to convert to integers.
  broken = surface.Mesh(sphere.vertices, np.array([['0', '1', 'not an index']]))
  with pytest.raises(ValueError, match='not an index'):
    surface.write_obj(str(path), broken)
  assert os.listdir(tmp_path) == ['sphere.obj'] and path.read_text() == 'previous'
