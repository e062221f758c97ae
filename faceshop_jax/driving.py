"""Talking-face driving (paper §6.1): a face's expression and head pose, read from a driving video
frame by frame, animate generated portraits.

  frames = driving.read_frames('talk.mp4')                   # uint8 [T, H, W, 3]
  net = weights.load_role_net('synthetic64', 'reconstructor')
  motion = driving.track(frames, net, bundle.face_model, aligned=False)
  motion = driving.clip(driving.smooth(motion, sigma=1.0), bundle.face_model)
  driven = driving.drive(bundle, [0, 1], motion)            # uint8 [S, T, R, R, 3]
  video = driving.side_by_side(frames, driven[0])            # media.write_video(path, video)

Reading a frame (`track`): the reconstructor reads faces in the portrait framing the synthetic
world is drawn in, where a head's place in the picture follows its pose (the canonical head seen
from a camera on the portrait sphere), and it reads the pose partly from that place. So a frame is
put in that framing exactly as data_pipelines.prepare frames a photo (`prepare.prepare_photo`):
RetinaFace finds the faces and prepare's rules pick one (`prepare.choose_face`: none, several of a
similar size or one too small is no usable face), dlib's 68 landmarks are fitted by the face model
(its pose; a poor fit is no usable face either), and the photo is warped so that its five points
land where the fitted head, placed canonically, shows them. Frames already in the portrait framing
(`aligned`, as the synthetic world renders them) are only resized; the detector still runs on them,
to find frames without a face (any detection will do: the framing says which face it is). The
reconstructor then gives expression β and the camera's (yaw,
pitch) on the portrait sphere.

Missing faces: a frame without a usable face holds the last good frame's values; misses before the
first good frame take its values; a clip without a face anywhere is an error.

Smoothing (`smooth`): a centred Gaussian over time, edges extended with the end values. Its
weights are positive, so a monotone sequence stays monotone (each output step is a positive mix of
input steps), and jitter is damped: an alternation from frame to frame keeps 1.4 % of its
amplitude at σ = 1 frame, a few frames away from the clip's ends (scipy.ndimage.gaussian_filter1d,
mode 'nearest').

Driving (`drive`): each seed's own portrait with β(t) as an expression edit, volume-blended into it
(paper §4.4, edit.render), seen from the camera at (yaw(t), pitch(t)); the conditioning camera
stays frontal, so the person does not change with the view. Motion outside the trained camera
range or the face model's expression range must be clipped first (`clip`).
"""
import os
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
from scipy import ndimage
import tqdm

from data_pipelines.prepare import align
from data_pipelines.prepare import detect
from data_pipelines.prepare import fit as fit_lib
from data_pipelines.prepare import prepare
from faceshop_jax import edit
from faceshop_jax import face_model as face_model_lib
from faceshop_jax import geometry
from faceshop_jax import inference
from faceshop_jax import media
from faceshop_jax import video
from faceshop_jax import visualize
from faceshop_jax.analysis import reconstructor as reconstructor_lib
from faceshop_jax.analysis import weights
from faceshop_jax.face_model import prior as prior_lib
from faceshop_jax.world import portraits

RECONSTRUCT_BATCH = 16  # frames per reconstructor call (the last call padded: one compilation)
# Aligned frames are small (the synthetic world's 64²), where RetinaFace's confidence in a turned
# head drops below its default 0.9 threshold (to 0.7); frames without a face give no detection even
# at 0.3. A second, overlapping detection of the same small face often passes 0.5 too, so aligned
# frames skip prepare's several-faces rule: their framing already says which face is the subject.
ALIGNED_SCORE_THRESHOLD = 0.5
# Unaligned frames are framed as prepare frames photos, from its landmark fit: only the pose matters
# there, so the appearance stage is skipped.
FRAMING_FIT = fit_lib.FitConfig(appearance_steps=0)


class Track(NamedTuple):
  """A face's motion over T frames.

  Attributes:
    expression: float32 [T, n_exp] β, in the face model's units.
    yaw: float32 [T] camera yaw on the portrait sphere, radians (positive: the subject's left).
    pitch: float32 [T] camera pitch, radians (positive: from above).
    found: bool [T] whether the frame had a usable face (else its values are held).
    reasons: T strings: '' where found, else why not (prepare.SKIP_REASONS: 'no face', 'several
      faces', 'face too small', 'fit failed').
  """
  expression: np.ndarray
  yaw: np.ndarray
  pitch: np.ndarray
  found: np.ndarray
  reasons: tuple[str, ...]


def _read_image(path: str) -> np.ndarray:
  try:
    with Image.open(path) as image:
      return np.asarray(image.convert('RGB'))
  except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
    raise ValueError(f'Cannot read the frame {path}: {e}') from None


def read_frames(path: str) -> np.ndarray:
  """uint8 [T, H, W, 3]: the frames of a video (media.VIDEO_EXTENSIONS) or of a directory of
  images (prepare.IMAGE_SUFFIXES, sorted by name, all one size).

  Raises:
    FileNotFoundError: nothing at path.
    ValueError: an unknown extension, a file that does not decode, no frames, or frames of
      different sizes.
  """
  if os.path.isdir(path):
    names = sorted(n for n in os.listdir(path) if n.lower().endswith(prepare.IMAGE_SUFFIXES))
    if not names:
      raise ValueError(f'No frames in {path}: expected images '
                       f'({", ".join(prepare.IMAGE_SUFFIXES)}), read in the order of their names.')
    frames = [_read_image(os.path.join(path, name)) for name in names]
    sizes = sorted({frame.shape for frame in frames})
    if len(sizes) > 1:
      raise ValueError(f'The frames in {path} differ in size ({sizes[0][:2]} and {sizes[1][:2]}); '
                       'a driving clip has one size.')
    return np.stack(frames)
  if not os.path.isfile(path):
    raise FileNotFoundError(f'No driving video or frame directory at {path}.')
  try:  # PyAV's errors are ValueErrors, Pillow's OSErrors; a video without frames fails to stack
    return media.read_video(path)
  except (ValueError, OSError) as e:
    raise ValueError(f'Cannot read the driving video {path}: {e}') from None


def _reconstructor_fn(net: weights.AnalysisNet, model: face_model_lib.FaceModel):
  """read(crops uint8 [N, S, S, 3]) -> (β [N, n_exp], yaw [N], pitch [N]), RECONSTRUCT_BATCH
  crops per call of the jitted reconstructor."""

  @jax.jit
  def reconstruct(images):
    out = reconstructor_lib.reconstruct_faces(net, model, images.astype(jnp.float32) / 127.5 - 1.0)
    yaw, pitch = geometry.yaw_pitch_from_camera(out.camera)
    return model.split_coeffs(out.coeffs).expression, yaw, pitch

  def read(crops):
    parts = []
    for start in range(0, len(crops), RECONSTRUCT_BATCH):
      batch = crops[start:start + RECONSTRUCT_BATCH]
      padded = np.concatenate([batch, np.repeat(batch[-1:], RECONSTRUCT_BATCH - len(batch), 0)])
      parts.append([np.asarray(x)[:len(batch)] for x in reconstruct(jnp.asarray(padded))])
    return [np.concatenate(column) for column in zip(*parts)]

  return read


def hold_missing(values: np.ndarray, found: np.ndarray) -> np.ndarray:
  """values [T, ...] where each frame not found takes the last found frame's values, and frames
  before the first found one take its values (found: bool [T], at least one True)."""
  index = np.where(found, np.arange(len(found)), -1)
  index = np.maximum.accumulate(index)
  index[index < 0] = np.argmax(found)
  return values[index]


def portrait_crop(frame: np.ndarray, model: face_model_lib.FaceModel, size: int,
                  aligned: bool) -> np.ndarray:
  """uint8 [size, size, 3]: the frame's face in the portrait framing (module docstring).

  Raises:
    prepare.Skip: no usable face ('no face', 'several faces', 'face too small', 'fit failed').
    ValueError: unaligned frames without dlib (the 'prepare' extra).
  """
  if aligned:
    if not detect.detect_faces(frame, score_threshold=ALIGNED_SCORE_THRESHOLD):
      raise prepare.Skip('no face')
    height, width = frame.shape[:2]
    return align.warp(frame, np.diag([size / width, size / height, 1.0])[:2], size)
  try:
    return prepare.prepare_photo(model, frame, size, FRAMING_FIT).image
  except ImportError as e:
    raise ValueError(f'Aligning the driving frames needs dlib\'s landmarks ({e}): pip install -e '
                     '".[prepare]", or pass frames already in the portrait framing as aligned.'
                     ) from None


def track(frames: np.ndarray, reconstructor: weights.AnalysisNet, model: face_model_lib.FaceModel,
          aligned: bool, progress: tqdm.tqdm | None = None) -> Track:
  """The face's expression and pose in every frame (module docstring), misses held.

  Args:
    frames: uint8 [T, H, W, 3] RGB frames.
    reconstructor: a 'yaw_pitch' reconstructor net for `model` (one that reads the portrait
      framing; a 'deep3d' one reads Deep3DFaceRecon's crops, which this does not make).
    model: the face model of the reconstructor's heads (and of the generator it will drive).
    aligned: the frames are square and already in the portrait framing: only resize them.
    progress: a tqdm bar advanced by one per frame put in the portrait framing.

  Raises:
    ValueError: frames that are not uint8 [T, H, W, 3], aligned frames that are not square, a
      reconstructor of another layout or face model, or no usable face in any frame.
  """
  layout = reconstructor.config.get('pose', 'deep3d')
  if layout != 'yaw_pitch':
    raise ValueError(f'Driving reads faces in the portrait framing, which a \'yaw_pitch\' '
                     f'reconstructor reads (synthetic64, judge64); this one has {layout!r} heads.')
  frames = np.asarray(frames)
  if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or not len(frames):
    raise ValueError(f'frames must be uint8 [T, H, W, 3] with T >= 1; got {frames.dtype} '
                     f'{list(frames.shape)}.')
  n, height, width = frames.shape[:3]
  if aligned and height != width:
    raise ValueError(f'Aligned frames are square, as the portrait framing is; got {height}x{width}.'
                     ' Without aligned the face is detected and aligned.')
  size = reconstructor.config['input_size']
  crops, reasons = {}, []
  for i, frame in enumerate(frames):
    try:
      crops[i] = portrait_crop(frame, model, size, aligned)
      reasons.append('')
    except prepare.Skip as skip:
      reasons.append(skip.reason)
    if progress is not None:
      progress.update(1)
  if not crops:
    counts = {reason: reasons.count(reason) for reason in sorted(set(reasons))}
    raise ValueError(f'No usable face in any of the {n} driving frames ('
                     + ', '.join(f'{reason}: {count}' for reason, count in counts.items()) + ').')
  kept = np.asarray(sorted(crops))
  expression, yaw, pitch = _reconstructor_fn(reconstructor, model)(
      np.stack([crops[i] for i in kept]))
  found = np.zeros(n, bool)
  found[kept] = True

  def held(values):
    every_frame = np.zeros((n,) + values.shape[1:], np.float32)
    every_frame[kept] = values
    return hold_missing(every_frame, found)

  return Track(expression=held(expression), yaw=held(yaw), pitch=held(pitch), found=found,
               reasons=tuple(reasons))


def smooth(motion: Track, sigma: float) -> Track:
  """The motion smoothed over time by a centred Gaussian of `sigma` frames (0: unchanged), the
  clip's ends extended by their values (module docstring: monotone stays monotone)."""
  if not sigma >= 0:
    raise ValueError(f'The smoothing sigma must be >= 0 frames; got {sigma}.')
  if sigma == 0:
    return motion

  def blur(values):
    return ndimage.gaussian_filter1d(values, sigma, axis=0, mode='nearest')

  return motion._replace(expression=blur(motion.expression), yaw=blur(motion.yaw),
                         pitch=blur(motion.pitch))


def clip(motion: Track, model: face_model_lib.FaceModel) -> Track:
  """The motion inside what the generator was trained on: yaw and pitch within the control
  prior's camera range (PriorConfig.max_yaw / max_pitch), β within the face model's expression
  bounds (fit.expression_bounds: [0, 1] for named units, none for PCA bases)."""
  prior = prior_lib.PriorConfig()
  low, high = fit_lib.expression_bounds(model)
  return motion._replace(expression=np.clip(motion.expression, low, high),
                         yaw=np.clip(motion.yaw, -prior.max_yaw, prior.max_yaw),
                         pitch=np.clip(motion.pitch, -prior.max_pitch, prior.max_pitch))


def _check_motion(motion: Track, model: face_model_lib.FaceModel) -> None:
  """Checks the motion's shapes (chex) and raises a ValueError unless it has frames and lies
  inside `clip`'s range."""
  frames = len(motion.yaw)
  chex.assert_shape([motion.yaw, motion.pitch, motion.found], (frames,))
  chex.assert_shape(motion.expression, (frames, model.n_exp))
  if frames == 0:
    raise ValueError('The motion has no frames.')
  clipped = clip(motion, model)
  for name in ('expression', 'yaw', 'pitch'):
    if not np.array_equal(getattr(clipped, name), getattr(motion, name)):
      raise ValueError(f'The motion\'s {name} leaves the range the generator was trained on; '
                       'pass it through driving.clip first.')


def driven_portrait(bundle: inference.GeneratorBundle, seed: int | None,
                    motion: Track) -> edit.Portrait:
  """One seed's portrait (None: the bundle's personal portrait, an inverted person) as T frames
  moved by the motion: frame t has the expression edit β(t)
  (so a blended render keeps the seed's own portrait off the face) and the render camera at
  (yaw(t), pitch(t)); the conditioning camera stays frontal.

  Raises:
    ValueError: motion without frames or outside the trained range (`clip`).
  """
  _check_motion(motion, bundle.face_model)
  frames = len(motion.yaw)
  portrait = jax.tree.map(lambda x: jnp.repeat(x, frames, axis=0),
                          edit.from_bundle(bundle, None if seed is None else [seed]))
  camera = geometry.camera_from_yaw_pitch(jnp.asarray(motion.yaw), jnp.asarray(motion.pitch))
  return edit.with_expression(bundle, portrait, beta=motion.expression).replace(camera=camera)


def drive(bundle: inference.GeneratorBundle, seeds, motion: Track, batch: int = 8,
          blend: bool = True, progress: tqdm.tqdm | None = None) -> np.ndarray:
  """uint8 [S, T, R, R, 3]: each seed's portrait moved by the motion (module docstring).

  Args:
    bundle: the generator.
    seeds: S seeds (models.seed_controls), or [None] for the bundle's personal portrait.
    motion: T frames of motion inside the trained range (`clip`).
    batch: frames rendered at a time.
    blend: volume-blend each frame's expression into the seed's own portrait (edit.render).
    progress: a tqdm bar advanced by one per rendered frame.
  """
  return np.stack([video.render_frames(bundle, driven_portrait(bundle, seed, motion), batch, blend,
                                       progress) for seed in seeds])


def _resize(frames: np.ndarray, width: int, height: int) -> np.ndarray:
  return np.stack([np.asarray(Image.fromarray(frame).resize((width, height), Image.LANCZOS))
                   for frame in frames])


def side_by_side(driving_frames: np.ndarray, driven: np.ndarray) -> np.ndarray:
  """uint8 [T, R, W' + R, 3]: each driving frame [T, H, W, 3], resized to the driven height R
  (W' = round(W·R/H)), beside its driven frame [T, R, R, 3]."""
  frames, size = driven.shape[:2]
  chex.assert_shape(driven, (frames, size, size, 3))
  chex.assert_shape(driving_frames, (frames, None, None, 3))
  height, width = driving_frames.shape[1:3]
  resized = _resize(driving_frames, max(1, round(width * size / height)), size)
  return np.concatenate([resized, driven], axis=2)


def frame_strip(driving_frames: np.ndarray, driven: np.ndarray, count: int) -> np.ndarray:
  """A picture of `count` evenly spaced moments: the driving frames above (fitted into R² and
  centred on black), then a row per seed of driven [S, T, R, R, 3] (visualize.image_grid)."""
  _, frames, size = driven.shape[:3]
  chex.assert_shape(driven, (None, frames, size, size, 3))
  chex.assert_shape(driving_frames, (frames, None, None, 3))
  chosen = np.round(np.linspace(0, frames - 1, min(count, frames))).astype(int)
  height, width = driving_frames.shape[1:3]
  scale = size / max(height, width)
  fitted = _resize(driving_frames[chosen], max(1, round(width * scale)),
                   max(1, round(height * scale)))
  top, left = (size - fitted.shape[1]) // 2, (size - fitted.shape[2]) // 2
  row = np.zeros((len(chosen), size, size, 3), np.uint8)
  row[:, top:top + fitted.shape[1], left:left + fitted.shape[2]] = fitted
  return visualize.image_grid(np.concatenate([row[None], driven[:, chosen]]))


def synthetic_clip(model: face_model_lib.FaceModel, expression, yaw, pitch, size: int,
                   seed: int = 0) -> np.ndarray:
  """uint8 [T, size, size, 3]: a driving clip whose motion is known exactly (for tests and
  benchmarks): one person of the synthetic world (identity, light, hair, clothes and background
  drawn from `seed`) with expression β(t) [T, n_exp], seen from (yaw(t), pitch(t)) [T] radians, in
  the portrait framing (so `track(..., aligned=True)` reads it as it is)."""
  expression = jnp.asarray(expression, jnp.float32)
  frames = expression.shape[0]
  chex.assert_shape(expression, (frames, model.n_exp))
  key_controls, key_style, key_background = jax.random.split(jax.random.PRNGKey(seed), 3)
  person, _ = prior_lib.sample_controls(key_controls, model, 1)
  coeffs = model.merge_coeffs(model.split_coeffs(person)._replace(expression=expression))
  camera = geometry.camera_from_yaw_pitch(jnp.asarray(yaw, jnp.float32),
                                          jnp.asarray(pitch, jnp.float32))
  chex.assert_shape(camera, (frames, geometry.CAMERA_SIZE))
  scene = portraits.build_scene(model)
  render = jax.jit(jax.vmap(lambda c, view: portraits.render_controls(
      key_style, key_background, model, scene, c, view, size)['image']))
  return visualize.to_uint8(jax.device_get(render(coeffs, camera)))
