"""Video and frame-strip files: MP4 (PyAV, libx264) and GIF (Pillow) writing and reading.

Every file is written atomically (`atomic_output`): it is encoded into a temporary file beside the
target and moved into place only when complete, so a failed write leaves no partial file behind.

Usage:
  frames = visualize.to_uint8(images)               # [T, H, W, 3] uint8
  written = media.write_video('orbit.mp4', frames, fps=24)
  visualize.save_png('orbit_strip.png', media.frame_strip(frames, 5))
"""
import contextlib
import fractions
import os
import secrets
import warnings
from typing import Iterator

import av
import numpy as np
from PIL import Image
from PIL import ImageSequence

from faceshop_jax import visualize

VIDEO_EXTENSIONS = ('.mp4', '.gif')
# H.264 in yuv420p, the format browsers and players decode; CRF 18 is close to visually lossless.
_MP4_CODEC = 'libx264'
_MP4_PIXEL_FORMAT = 'yuv420p'
_MP4_CRF = 18
_GIF_MIN_DURATION_MS = 20


@contextlib.contextmanager
def atomic_output(path: str) -> Iterator[str]:
  """Yields a temporary path beside `path` that replaces `path` when the block completes.

  The temporary name keeps the extension of `path` (for writers that pick the format from it). On
  an exception the temporary file, if any, is removed and `path` is left as it was.

  Args:
    path: the file to write.

  Yields:
    The temporary path to write to (not created yet).
  """
  directory, name = os.path.split(os.path.abspath(path))
  stem, extension = os.path.splitext(name)
  temporary = os.path.join(directory, f'.{stem}.{secrets.token_hex(4)}.tmp{extension}')
  try:
    yield temporary
    os.replace(temporary, path)
  except BaseException:
    with contextlib.suppress(FileNotFoundError):
      os.remove(temporary)
    raise


def _video_extension(path: str) -> str:
  """The lower-case extension of `path`, which must be one of VIDEO_EXTENSIONS."""
  extension = os.path.splitext(path)[1].lower()
  if extension not in VIDEO_EXTENSIONS:
    raise ValueError(f'unknown video extension {extension!r} in {path!r}: '
                     f'supported are {", ".join(VIDEO_EXTENSIONS)}')
  return extension


def _check_frames(frames: np.ndarray) -> np.ndarray:
  """`frames` as a uint8 [T, H, W, 3] array with T, H, W ≥ 1, else a ValueError."""
  frames = np.asarray(frames)
  if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
    raise ValueError(f'frames must be uint8 [T, H, W, 3], got {frames.dtype} {list(frames.shape)}')
  if frames.shape[0] == 0:
    raise ValueError('frames is empty (T == 0): a video needs at least one frame')
  if frames.shape[1] == 0 or frames.shape[2] == 0:
    raise ValueError(f'frames have no pixels: H, W = {frames.shape[1]}, {frames.shape[2]}')
  return frames


def _mp4_encoder_available() -> bool:
  """Whether the FFmpeg inside PyAV has the H.264 encoder."""
  try:
    av.codec.Codec(_MP4_CODEC, 'w')
  except av.codec.codec.UnknownCodecError:
    return False
  return True


def pad_to_even(frames: np.ndarray) -> np.ndarray:
  """Frames [T, H, W, C] with an odd H or W grown by one row / column repeating the last one.

  yuv420p stores colour at half resolution, so H.264 in it needs even sizes.
  """
  _, height, width, _ = frames.shape
  return np.pad(frames, ((0, 0), (0, height % 2), (0, width % 2), (0, 0)), mode='edge')


def _write_mp4(path: str, frames: np.ndarray, fps: float) -> None:
  """Encodes uint8 [T, H, W, 3] frames (even H and W) as H.264 / yuv420p in an MP4 file."""
  _, height, width, _ = frames.shape
  rate = fractions.Fraction(fps).limit_denominator(1001)
  with av.open(path, mode='w', format='mp4', options={'movflags': 'faststart'}) as container:
    stream = container.add_stream(_MP4_CODEC, rate=rate)
    stream.width, stream.height, stream.pix_fmt = width, height, _MP4_PIXEL_FORMAT
    stream.options = {'crf': str(_MP4_CRF)}
    for frame in frames:
      container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format='rgb24')))
    container.mux(stream.encode(None))


def _write_gif(path: str, frames: np.ndarray, fps: float) -> None:
  """Writes uint8 [T, H, W, 3] frames as a GIF that loops forever.

  GIF stores frame durations in hundredths of a second, so 1/fps is rounded to 10 ms, and at least
  20 ms (browsers play shorter delays at 100 ms): fps above 50 play at 50. Each frame gets its own
  256-colour palette. Pillow merges consecutive identical frames into one longer frame.
  """
  duration_ms = max(_GIF_MIN_DURATION_MS, 10 * round(100 / fps))
  images = [Image.fromarray(frame) for frame in frames]
  images[0].save(path, format='GIF', save_all=True, append_images=images[1:], loop=0,
                 duration=duration_ms)


def write_video(path: str, frames: np.ndarray, fps: float = 24) -> str:
  """Writes frames as an MP4 (H.264) or a GIF, chosen by the extension of `path`.

  MP4 frames with an odd height or width are padded to even sizes by `pad_to_even` (yuv420p needs
  them), so the file then holds [H + H mod 2, W + W mod 2] frames. Where the installed FFmpeg has no
  H.264 encoder, a GIF is written beside `path` instead (same name, `.gif`), with a warning.

  Args:
    path: the file to write, ending in one of VIDEO_EXTENSIONS (any case).
    frames: uint8 [T, H, W, 3] RGB frames, T ≥ 1.
    fps: frames per second, > 0.

  Returns:
    The path actually written: `path`, or the GIF beside it after the fallback.

  Raises:
    ValueError: frames that are not uint8 [T, H, W, 3] with T ≥ 1, fps ≤ 0, or an unknown extension.
  """
  extension = _video_extension(path)
  frames = _check_frames(frames)
  if not fps > 0:
    raise ValueError(f'fps must be positive, got {fps}')
  if extension == '.mp4' and not _mp4_encoder_available():
    fallback = os.path.splitext(path)[0] + '.gif'
    warnings.warn(f'the FFmpeg in PyAV {av.__version__} has no {_MP4_CODEC} encoder: '
                  f'writing {fallback} instead of {path}')
    path, extension = fallback, '.gif'
  with atomic_output(path) as temporary:
    if extension == '.mp4':
      _write_mp4(temporary, pad_to_even(frames), fps)
    else:
      _write_gif(temporary, frames, fps)
  return path


def read_video(path: str) -> np.ndarray:
  """Decodes every frame of an MP4 (PyAV) or GIF (Pillow) file.

  Args:
    path: a file ending in one of VIDEO_EXTENSIONS.

  Returns:
    uint8 [T, H, W, 3] RGB frames.

  Raises:
    ValueError: an unknown extension.
  """
  if _video_extension(path) == '.mp4':
    with av.open(path) as container:
      frames = [frame.to_ndarray(format='rgb24') for frame in container.decode(video=0)]
  else:
    with Image.open(path) as image:
      frames = [np.asarray(frame.convert('RGB')) for frame in ImageSequence.Iterator(image)]
  return np.stack(frames)


def frame_strip(frames: np.ndarray, count: int, pad: int = 0) -> np.ndarray:
  """`count` evenly spaced frames, the first and the last included, side by side.

  Args:
    frames: uint8 [T, H, W, 3].
    count: how many frames to show, 1 ≤ count ≤ T (1 shows the first frame).
    pad: white pixels around and between the frames.

  Returns:
    uint8 [H + 2·pad, count·(W + pad) + pad, 3].

  Raises:
    ValueError: frames that are not uint8 [T, H, W, 3] with T ≥ 1, or count outside [1, T].
  """
  frames = _check_frames(frames)
  if not 1 <= count <= len(frames):
    raise ValueError(f'count must be in [1, {len(frames)}] (the number of frames), got {count}')
  chosen = np.round(np.linspace(0, len(frames) - 1, count)).astype(int)
  return visualize.image_grid(frames[None, chosen], pad=pad)
