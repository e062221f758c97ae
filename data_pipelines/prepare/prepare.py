"""Prepares real photos for training (paper §5.2): detect, fit, re-place, align, pose the camera.

    python -m data_pipelines.prepare --images DIR --out DIR [--size 512]

Per photo: RetinaFace finds the face (detect.py) and dlib its 68 landmarks (landmarks.py); a
similarity pre-aligns the photo to the mean face in a FIT_SIZE² crop, where the face model is
fitted (fit.py). The translation is then fixed to the canonical placement (zero), the re-placed
mesh's 5 landmarks are projected by the default portrait camera into the output image, and the
similarity mapping the photo's 5 points onto them (align.py) warps the photo. The head rotation
becomes the camera: camera_from_head_pose(angle, 0).

Output (the portrait_folder layout of data_pipelines/builders/portrait_folder.py), for an input
IMAGES/sub/NAME.ext:
  OUT/sub/NAME.png        the aligned image, size² RGB
  OUT/sub/NAME_lm68.npy   its 68 landmarks [68, 2] float32, pixels (centres at half-integers)
  OUT/sub/NAME.npy        coefficients [D] float32 in the face model's layout, translation zero.
                          The angle is kept (it is the pose the camera encodes): render with
                          the angle zeroed under that camera, or as is under the frontal camera.
  OUT/dataset.json        {"labels": [["sub/NAME.png", [25 floats]], ...]} (EG3D)
  OUT/report.json         what was prepared, reused and skipped (with reasons), and fit errors.

Bad inputs are skipped with a reason (SKIP_REASONS) and the run goes on. A photo is skipped for
"several faces" when a second face is at least 1/DOMINANCE the size of the largest: a clearly
dominant subject with small faces behind is kept, a group photo is not (the issue asks to skip
several faces; taking a dominant one keeps many more usable portraits at no risk of confusion).

Files are written to temporary names and renamed (os.replace), the coefficients last, so a record
is either whole or absent; dataset.json and report.json are written the same way at the end. A
re-run over the same --out reuses complete records (their camera is recomputed from the stored
angle) unless --overwrite; records of photos that are now skipped are removed.
"""
import argparse
import dataclasses
import json
import os
import traceback

import jax.numpy as jnp
import numpy as np
from PIL import Image
from PIL import ImageOps

from data_pipelines.prepare import align
from data_pipelines.prepare import detect
from data_pipelines.prepare import fit as fit_lib
from data_pipelines.prepare import landmarks as landmarks_lib
from faceshop_jax import face_model
from faceshop_jax import geometry

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.webp')
LANDMARKS_SUFFIX = '_lm68.npy'
LABELS_FILE = 'dataset.json'
REPORT_FILE = 'report.json'
MIN_FACE = 64  # pixels: the geometric mean of the detector box's sides
DOMINANCE = 2.0
FIT_SIZE = 224
MAX_FIT_ERROR = 0.2  # landmark NME above which a fit is rejected
_GRAYSCALE_TOLERANCE = 2.0  # mean |R-G|, |G-B| below which an RGB photo is grey (JPEG noise)
_TMP_SUFFIX = '.tmp'
SKIP_REASONS = ('unreadable', 'grayscale', 'no face', 'several faces', 'face too small',
                'fit failed', 'name collision', 'error')


class Skip(Exception):
  """A photo that cannot be prepared: reason (one of SKIP_REASONS) and a detail for people."""

  def __init__(self, reason: str, detail: str = ''):
    super().__init__(f'{reason}: {detail}' if detail else reason)
    self.reason, self.detail = reason, detail


@dataclasses.dataclass(frozen=True)
class Prepared:
  """One aligned portrait.

  Attributes:
    image: [size, size, 3] uint8.
    landmarks: [68, 2] float32 pixels of the aligned image.
    coeffs: [D] float32, translation zero.
    camera: [25] float32 (EG3D layout).
    fit_error: the fit's landmark NME.
  """
  image: np.ndarray
  landmarks: np.ndarray
  coeffs: np.ndarray
  camera: np.ndarray
  fit_error: float


def read_photo(path: str) -> np.ndarray:
  """Decodes a photo to RGB uint8 [H, W, 3], upright per its EXIF orientation.

  Raises:
    Skip: 'unreadable' (not an image, truncated, corrupt) or 'grayscale'.
  """
  try:
    with Image.open(path) as image:
      image.load()  # decodes fully: truncated files fail here, not later
      image = ImageOps.exif_transpose(image)
      mode = image.mode
      rgb = np.asarray(image.convert('RGB'))
  except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
    raise Skip('unreadable', f'{type(e).__name__}: {e}') from e
  channel_difference = np.abs(np.diff(rgb.astype(np.int16), axis=-1)).mean()
  if mode in ('1', 'L', 'LA', 'I', 'I;16', 'F') or channel_difference < _GRAYSCALE_TOLERANCE:
    raise Skip('grayscale', f'mode {mode}, mean channel difference {channel_difference:.2f}')
  return rgb


def choose_face(faces: list[detect.Detection], min_face: float = MIN_FACE,
                dominance: float = DOMINANCE) -> detect.Detection:
  """The face to prepare among detections sorted largest first (see the module docstring).

  Raises:
    Skip: 'no face', 'several faces' or 'face too small'.
  """
  if not faces:
    raise Skip('no face')
  if len(faces) > 1 and faces[1].size * dominance >= faces[0].size:
    raise Skip('several faces', f'{len(faces)} faces, sizes ' +
               ', '.join(f'{f.size:.0f}' for f in faces[:4]) + ' px')
  if faces[0].size < min_face:
    raise Skip('face too small', f'{faces[0].size:.0f} px < {min_face} px')
  return faces[0]


def prepare_photo(model: face_model.FaceModel, photo: np.ndarray, size: int,
                  config: fit_lib.FitConfig = fit_lib.FitConfig(),
                  fit_size: int = FIT_SIZE) -> Prepared:
  """Aligns one RGB uint8 photo [H, W, 3] into a size² portrait with its camera and coefficients.

  Raises:
    Skip: when no single face is found or the fit is poor.
  """
  face = choose_face(detect.detect_faces(photo))
  landmarks = landmarks_lib.detect_landmarks(photo, face.box)
  points = np.asarray(face_model.five_points(landmarks))
  to_crop = align.umeyama(points, fit_lib.mean_face_points(model, fit_size))
  crop = align.warp(photo, to_crop, fit_size).astype(np.float32) / 255
  result = fit_lib.fit(model, crop[None], align.transform_points(to_crop, landmarks)[None], config)
  fit_error = float(result.landmark_error[0])
  if not fit_error <= MAX_FIT_ERROR:  # also catches NaN
    raise Skip('fit failed', f'landmark NME {fit_error:.3f} > {MAX_FIT_ERROR}')
  parts = model.split_coeffs(result.coeffs[0])
  coeffs = model.merge_coeffs(parts._replace(translation=jnp.zeros(3)))
  template = face_model.five_points(
      fit_lib.project_landmarks(model, coeffs, fit_lib.portrait_camera(), size))
  to_output = align.umeyama(points, np.asarray(template))
  return Prepared(
      image=align.warp(photo, to_output, size),
      landmarks=align.transform_points(to_output, landmarks).astype(np.float32),
      coeffs=np.asarray(coeffs, np.float32),
      camera=pose_camera(model, coeffs),
      fit_error=fit_error)


def pose_camera(model: face_model.FaceModel, coeffs) -> np.ndarray:
  """The camera [25] of a prepared portrait: its head rotation as the camera."""
  angle = model.split_coeffs(jnp.asarray(coeffs)).angle
  return np.asarray(geometry.camera_from_head_pose(angle, jnp.zeros(3)), np.float32)


def _write_atomic(path: str, write) -> None:
  """Calls write(file) on a temporary file beside path, then renames it to path."""
  directory, base = os.path.split(path)
  tmp = os.path.join(directory, f'.{base}.{os.getpid()}{_TMP_SUFFIX}')
  try:
    with open(tmp, 'wb') as f:
      write(f)
    os.replace(tmp, path)
  except BaseException:
    os.unlink(tmp)
    raise


def _write_json(path: str, value) -> None:
  _write_atomic(path, lambda f: f.write(json.dumps(value, indent=1).encode()))


def _record_paths(out: str, name: str) -> tuple[str, str, str]:
  """(image, landmarks, coefficients) paths of record `name` ('/'-separated, no suffix)."""
  stem = os.path.join(out, *name.split('/'))
  return stem + '.png', stem + LANDMARKS_SUFFIX, stem + '.npy'


def write_record(out: str, name: str, prepared: Prepared) -> None:
  """Writes one record; the coefficients go last, so their presence marks a whole record."""
  image_path, landmarks_path, coeffs_path = _record_paths(out, name)
  os.makedirs(os.path.dirname(image_path), exist_ok=True)
  _write_atomic(image_path, lambda f: Image.fromarray(prepared.image).save(f, format='PNG'))
  _write_atomic(landmarks_path, lambda f: np.save(f, prepared.landmarks))
  _write_atomic(coeffs_path, lambda f: np.save(f, prepared.coeffs))


def _remove_record(out: str, name: str) -> None:
  for path in reversed(_record_paths(out, name)):  # coefficients first: never a "whole" remnant
    if os.path.exists(path):
      os.remove(path)


def _reusable_camera(model: face_model.FaceModel, out: str, name: str) -> np.ndarray | None:
  """The camera of a whole record written earlier for this model, else None."""
  paths = _record_paths(out, name)
  if not all(os.path.exists(p) for p in paths):
    return None
  coeffs = np.load(paths[2])
  return pose_camera(model, coeffs) if coeffs.shape == (model.n_coeffs,) else None


def find_photos(images: str, exclude: str) -> list[str]:
  """Photos under `images`, recursively, as sorted '/'-separated relative paths; skips `exclude`."""
  found = []
  exclude = os.path.realpath(exclude)
  for root, dirs, files in os.walk(images):
    dirs[:] = sorted(d for d in dirs if os.path.realpath(os.path.join(root, d)) != exclude)
    for file in files:
      if file.lower().endswith(IMAGE_SUFFIXES):
        found.append(os.path.relpath(os.path.join(root, file), images).replace(os.sep, '/'))
  return sorted(found)


def _remove_stale_temporaries(out: str) -> None:
  """Deletes temporary files a killed run of ours left behind."""
  for root, _, files in os.walk(out):
    for file in files:
      if file.startswith('.') and file.endswith(_TMP_SUFFIX):
        os.remove(os.path.join(root, file))


def run(images: str, out: str, size: int = 512, model: face_model.FaceModel | None = None,
        config: fit_lib.FitConfig = fit_lib.FitConfig(), fit_size: int = FIT_SIZE,
        overwrite: bool = False) -> dict:
  """Prepares every photo under `images` into `out`; returns the report (also in report.json)."""
  model = model or face_model.load_embedded()
  os.makedirs(out, exist_ok=True)
  _remove_stale_temporaries(out)
  cameras, prepared, reused, skipped, fit_errors, names = {}, [], [], [], {}, set()
  for file in find_photos(images, exclude=out):
    name = os.path.splitext(file)[0]
    try:
      if name in names:
        raise Skip('name collision', f'another photo is also prepared as {name}.png')
      names.add(name)
      camera = None if overwrite else _reusable_camera(model, out, name)
      if camera is not None:
        reused.append(file)
      else:
        record = prepare_photo(model, read_photo(os.path.join(images, *file.split('/'))), size,
                               config, fit_size)
        write_record(out, name, record)
        camera, fit_errors[file] = record.camera, round(record.fit_error, 4)
        prepared.append(file)
      cameras[name + '.png'] = [float(v) for v in camera]
    except Exception as e:  # pylint: disable=broad-except  (one bad photo must not stop the run)
      skip = e if isinstance(e, Skip) else Skip('error', ''.join(
          traceback.format_exception_only(type(e), e)).strip())
      if skip.reason != 'name collision':
        _remove_record(out, name)
      skipped.append({'file': file, 'reason': skip.reason, 'detail': skip.detail})
  _write_json(os.path.join(out, LABELS_FILE), {'labels': sorted(cameras.items())})
  report = {'images': images, 'size': size, 'face_model': model.name, 'prepared': prepared,
            'reused': reused, 'skipped': skipped, 'fit_error': fit_errors}
  _write_json(os.path.join(out, REPORT_FILE), report)
  return report


def summary(report: dict) -> str:
  """One line: how many photos were prepared, reused and skipped, and why."""
  reasons = {}
  for entry in report['skipped']:
    reasons[entry['reason']] = reasons.get(entry['reason'], 0) + 1
  total = len(report['prepared']) + len(report['reused']) + len(report['skipped'])
  line = f'prepared {len(report["prepared"])}, reused {len(report["reused"])} of {total} photos'
  if reasons:
    line += '; skipped ' + ', '.join(f'{n} {r}' for r, n in sorted(reasons.items()))
  return line


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--images', required=True, help='Folder of photos (searched recursively).')
  parser.add_argument('--out', required=True, help='Output folder (portrait_folder layout).')
  parser.add_argument('--size', type=int, default=512, help='Output image size.')
  parser.add_argument('--face-model', help='A face model .npz (default: the embedded head), or '
                      "Deep3DFaceRecon's BFM_model_front.mat.")
  parser.add_argument('--fit-size', type=int, default=FIT_SIZE, help='Fitting crop size.')
  parser.add_argument('--appearance-steps', type=int, default=fit_lib.FitConfig().appearance_steps,
                      help='Adam steps fitting texture and illumination.')
  parser.add_argument('--overwrite', action='store_true', help='Redo records already in --out.')
  args = parser.parse_args(argv)
  model = None
  if args.face_model:
    model = (face_model.load_bfm(args.face_model) if args.face_model.endswith('.mat')
             else face_model.load_npz(args.face_model))
  config = fit_lib.FitConfig(appearance_steps=args.appearance_steps)
  report = run(args.images, args.out, args.size, model, config, args.fit_size, args.overwrite)
  print(summary(report))
