"""`portrait_folder`: real portraits from a folder, with EG3D cameras and face-model coefficients.

Expected layout (FFHQ as EG3D ships it; subfolders optional):

  FOLDER/dataset.json                  {"labels": [["00000/img00000000.png", [25 floats]], ...]}
  FOLDER/00000/img00000000.png         image (.png / .jpg / .jpeg)
  FOLDER/00000/img00000000.npy         coefficients [D] (or .npz with key `coeffs`, or
                                       Deep3DFaceRecon's .mat with id/exp/tex/angle/gamma/trans)
  FOLDER/00000/img00000000_lm68.npy    landmarks [68, 2] in pixels (with_landmarks; or
                                       FOLDER/landmarks.json {"00000/img00000000.png": [[x, y], ...]})
  FOLDER/00000/img00000000_parsing.png parsing map [H, W], classes 0..18 (with_parsing)

Images that lack a camera, coefficients or an asked-for landmark/parsing file are skipped and
listed (a warning, and `info.metadata['skipped']` of the built dataset): never misaligned.

  config = PortraitFolderConfig(name='ffhq128', folder='/data/ffhq', resolution=128)
  PortraitFolder(data_dir=..., config=config).download_and_prepare()
"""
import dataclasses
import json
import os

from absl import logging
import numpy as np
from PIL import Image
import tensorflow_datasets as tfds

from data_pipelines.builders import common

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg')
LABELS_FILE = 'dataset.json'
LANDMARKS_FILE = 'landmarks.json'
LANDMARKS_SUFFIX = '_lm68.npy'
PARSING_SUFFIX = '_parsing.png'
_SKIPPED_SHOWN = 20  # The warning names this many; the dataset's metadata keeps them all.


@dataclasses.dataclass
class PortraitFolderConfig(tfds.core.BuilderConfig):
  """Where the portraits are and how to store them.

  Attributes:
    folder: the folder laid out as the module docstring says.
    resolution: resize square images (and their landmarks and parsing) to R×R; None keeps sizes.
    n_coeffs: coefficient dimension D; None takes the first portrait's (all must agree).
    with_landmarks: records carry `landmarks`; images without them are skipped.
    with_parsing: records carry `parsing`; images without it are skipped.
    test_fraction: share of the portraits held out as `test` (chosen by a hash of the name).
  """
  folder: str = ''
  resolution: int | None = None
  n_coeffs: int | None = None
  with_landmarks: bool = False
  with_parsing: bool = False
  test_fraction: float = 0.0


@dataclasses.dataclass(frozen=True)
class PortraitFiles:
  """One usable portrait: where its parts are.

  Attributes:
    key: the image path relative to the folder, '/'-separated (the name in dataset.json).
    image: image file.
    camera: [25] (EG3D layout).
    coeffs: coefficient file.
    landmarks: [68, 2] from landmarks.json, a NAME_lm68.npy path, or None when not asked for.
    parsing: parsing file, or None when not asked for.
  """
  key: str
  image: str
  camera: np.ndarray
  coeffs: str
  landmarks: np.ndarray | str | None = None
  parsing: str | None = None


def scan_folder(folder: str, *, with_landmarks: bool = False,
                with_parsing: bool = False) -> tuple[list[PortraitFiles], dict[str, str]]:
  """Matches every image in `folder` with its camera, coefficients and the asked-for extras.

  Returns:
    (usable portraits sorted by key, {key: why it was skipped} for the others).

  Raises:
    ValueError: if no image is usable, naming the folder, what was expected and why images failed.
  """
  cameras = _read_json(os.path.join(folder, LABELS_FILE), 'labels')
  no_camera = f'camera in {LABELS_FILE}' if cameras is not None else f'{LABELS_FILE} (no labels)'
  cameras = {name: np.asarray(camera, np.float32) for name, camera in (cameras or [])}
  landmarks_json = _read_json(os.path.join(folder, LANDMARKS_FILE)) if with_landmarks else None
  portraits, skipped = [], {}
  for key in _image_keys(folder):
    image = os.path.join(folder, *key.split('/'))
    stem = os.path.splitext(image)[0]
    coeffs = next((stem + s for s in common.COEFFICIENT_SUFFIXES if os.path.exists(stem + s)), None)
    landmarks = parsing = None
    if with_landmarks:
      if landmarks_json and key in landmarks_json:
        landmarks = np.asarray(landmarks_json[key], np.float32)
      elif os.path.exists(stem + LANDMARKS_SUFFIX):
        landmarks = stem + LANDMARKS_SUFFIX
    if with_parsing and os.path.exists(stem + PARSING_SUFFIX):
      parsing = stem + PARSING_SUFFIX
    missing = [what for what, absent in (
        (no_camera, key not in cameras),
        ('coefficients (' + '/'.join(common.COEFFICIENT_SUFFIXES) + ')', coeffs is None),
        (f'landmarks ({LANDMARKS_SUFFIX} or {LANDMARKS_FILE})', with_landmarks and landmarks is None),
        (f'parsing ({PARSING_SUFFIX})', with_parsing and parsing is None),
    ) if absent]
    if missing:
      skipped[key] = 'no ' + ', no '.join(missing)
    else:
      portraits.append(PortraitFiles(key, image, cameras[key], coeffs, landmarks, parsing))
  if not portraits:
    expected = (f'images ({"/".join(IMAGE_SUFFIXES)}, subfolders allowed), each with a camera '
                f'in {LABELS_FILE} ({{"labels": [[name, [25 floats]], ...]}}) and a coefficient '
                f'file NAME.npy/.npz/.mat beside it')
    if with_landmarks:
      expected += f', landmarks NAME{LANDMARKS_SUFFIX} or {LANDMARKS_FILE}'
    if with_parsing:
      expected += f', a parsing map NAME{PARSING_SUFFIX}'
    found = f'found {len(skipped)} images, none usable' if skipped else 'found no image'
    raise ValueError(f'No usable portrait in {folder}: expected {expected}; {found}.'
                     + _list_skipped(skipped))
  return portraits, skipped


def _image_keys(folder: str) -> list[str]:
  keys = []
  for root, _, files in os.walk(folder):
    for name in files:
      if name.lower().endswith(IMAGE_SUFFIXES) and not name.endswith(PARSING_SUFFIX):
        keys.append(os.path.relpath(os.path.join(root, name), folder).replace(os.sep, '/'))
  return sorted(keys)


def _read_json(path: str, field: str | None = None):
  if not os.path.exists(path):
    return None
  with open(path) as f:
    data = json.load(f)
  return data[field] if field else data


def _list_skipped(skipped: dict[str, str]) -> str:
  lines = [f'\n  {key}: {why}' for key, why in list(skipped.items())[:_SKIPPED_SHOWN]]
  more = len(skipped) - _SKIPPED_SHOWN
  return ''.join(lines) + (f'\n  ... and {more} more' if more > 0 else '')


class PortraitFolder(common.ArrayRecordBuilder):
  """Real portraits with EG3D cameras and per-image face-model coefficients.

  No named configs: every dataset is a folder of its own, `config=PortraitFolderConfig(...)`.
  """

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'First release.'}

  def _info(self) -> tfds.core.DatasetInfo:
    config = self.builder_config
    features = common.portrait_features(config.resolution, config.n_coeffs,
                                        landmarks=config.with_landmarks,
                                        parsing=config.with_parsing)
    features['source'] = tfds.features.Text()
    return tfds.core.DatasetInfo(builder=self, description=__doc__,
                                 features=tfds.features.FeaturesDict(features),
                                 metadata=tfds.core.MetadataDict())

  def _split_generators(self, dl_manager):
    del dl_manager  # The data is already on disk.
    config = self.builder_config
    portraits, skipped = scan_folder(config.folder, with_landmarks=config.with_landmarks,
                                     with_parsing=config.with_parsing)
    if skipped:
      logging.warning('portrait_folder: skipped %d of %d images in %s:%s', len(skipped),
                      len(skipped) + len(portraits), config.folder, _list_skipped(skipped))
    self.info.metadata['skipped'] = skipped
    n_coeffs = config.n_coeffs or common.load_coefficients(portraits[0].coeffs).shape[-1]
    by_key = {p.key: p for p in portraits}
    return {split: self._generate_examples([by_key[k] for k in keys], n_coeffs)
            for split, keys in common.hash_split(list(by_key), config.test_fraction).items()}

  def _generate_examples(self, portraits: list[PortraitFiles], n_coeffs: int):
    resolution = self.builder_config.resolution
    for p in portraits:
      coeffs = common.load_coefficients(p.coeffs)
      if coeffs.shape != (1, n_coeffs):
        raise ValueError(f'{p.coeffs}: expected one vector of {n_coeffs} coefficients (D comes '
                         f'from the config, else the first portrait), got shape {coeffs.shape}.')
      with Image.open(p.image) as image:
        image = image.convert('RGB')
      landmarks = np.load(p.landmarks) if isinstance(p.landmarks, str) else p.landmarks
      parsing = None
      if p.parsing:
        with Image.open(p.parsing) as parsing_image:
          parsing = parsing_image.copy()
      if resolution is not None and image.size != (resolution, resolution):
        if image.width != image.height:
          raise ValueError(f'{p.image} is {image.width}×{image.height}: only square images can be '
                           f'resized to {resolution}² (crop the folder first, or set resolution=None).')
        if landmarks is not None:  # Pixel i covers [i, i+1): coordinates scale with the image.
          landmarks = np.asarray(landmarks, np.float32) * (resolution / image.width)
        image = image.resize((resolution, resolution), Image.Resampling.LANCZOS)
        if parsing is not None:
          parsing = parsing.resize((resolution, resolution), Image.Resampling.NEAREST)
      example = common.portrait_example(np.asarray(image), p.camera, coeffs[0], landmarks,
                                        None if parsing is None else np.asarray(parsing))
      yield p.key, {**example, 'source': p.key}
