"""The synthetic portrait world: the embedded head with hair, neck, clothes and background.

A portrait is deterministic from its seed. The controls (identity, expression, SH light, camera)
come from the structured prior (faceshop_jax.face_model.prior); the scene adds, around the head:
- hair: a shell over the scalp, pushed out along the normals by a random thickness where the
  hairline (a smooth curve through a front, side and back height) says hair grows and tucked under
  the skin elsewhere, so its edge is a clean hairline; long hair adds a curtain hanging around the
  back and sides of the head, of random length;
- clothes: a bust (neck collar widening into shoulders) below the neck, in a random colour with
  optional stripes;
- background: backgrounds.background.
Everything is shaded by the same SH light and rasterized together, so the 19-class parsing map is
exact: head classes from the face model's vertex labels, hair 17, cloth 16, background 0.
The scene needs a full head model (neck, scalp, ears): the embedded one, not BFM's front face.

Two art styles share everything but the colours (same controls, camera, landmarks and parsing):
- 'photo': Lambertian SH shading of the per-vertex albedo, interpolated (the default);
- 'cartoon': flat cel shading: a saturated, painted albedo times the SH irradiance posterised per
  pixel into CEL_BAND-wide bands (the light's colour kept), so the light still shows as a hard
  shadow edge; a flat background of the photo background's mean colour; and dark ink outlines
  wherever the rendered parsing map changes class (silhouette, hairline, eyes, brows, lips, nose,
  collar). The outlines are an edge pass over the renderer's own label buffer at the supersampled
  resolution, before downsampling, not a filter on the finished picture.
"""
import dataclasses
import functools
import math
from typing import Iterator, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from faceshop_jax import classes
from faceshop_jax import face_model
from faceshop_jax.face_model import model as model_lib
from faceshop_jax.face_model import prior as prior_lib
from faceshop_jax.face_model import shading
from faceshop_jax.world import backgrounds

_HAIR_COLOURS = np.array([[0.05, 0.04, 0.035], [0.16, 0.10, 0.06], [0.35, 0.22, 0.12],
                          [0.45, 0.20, 0.08], [0.75, 0.60, 0.35], [0.62, 0.60, 0.58]], np.float32)
ART_STYLES = ('photo', 'cartoon')
CEL_BAND = 0.3  # cartoon: width of the irradiance bands (ambient light alone is ~0.71)
CARTOON_SATURATION = 1.8  # cartoon: albedo's distance from its grey, scaled
INK = 0.06  # cartoon: the outlines' grey level
_CURTAIN_GRID = (24, 8)  # angles around the back × rows down
_TORSO_GRID = (32, 10)  # angles around × rows down


def _grid_triangles(cols: int, rows: int, wrap: bool) -> np.ndarray:
  """Triangles [T, 3] of a cols × rows vertex grid (vertex c·rows + r), optionally closed in cols."""
  tris = []
  for c in range(cols if wrap else cols - 1):
    c1 = (c + 1) % cols
    for r in range(rows - 1):
      a, b, d, e = c * rows + r, c1 * rows + r, c * rows + r + 1, c1 * rows + r + 1
      tris += [(a, d, b), (b, d, e)]
  return np.asarray(tris, np.int32)


@dataclasses.dataclass(frozen=True)
class PortraitScene:
  """Static topology and reference heights of the scene around one face model (host-side numpy).

  Heights are metres in the world frame; angles θ = atan2(x, z − centre_z) go around the vertical
  axis through the head, 0 at the face.
  """
  scalp: np.ndarray  # [S] head vertices that may carry hair
  scalp_triangles: np.ndarray  # [Ts, 3] indices into scalp
  centre_z: float
  brow_y: float
  ear_y: float
  neck_y: float  # bottom of the head mesh
  neck_radii: tuple[float, float]  # (x, z) half-widths of the neck at its bottom
  neck_centre_z: float
  curtain_radius: np.ndarray  # [C] head radius at ear height, per curtain angle
  curtain_angle: np.ndarray  # [C]
  curtain_triangles: np.ndarray
  torso_triangles: np.ndarray


def build_scene(model: model_lib.FaceModel) -> PortraitScene:
  """Finds the scalp, neck and head outline of a full head model."""
  v = np.asarray(model.mean_shape)
  labels = np.asarray(model.vertex_labels)
  lmk = v[np.asarray(model.landmarks68)]
  brow_y = float(lmk[17:27, 1].max())
  ear_y = float(lmk[17:27, 1].mean() - 0.01)
  neck_y = float(v[:, 1].min())
  centre_z = float((v[:, 2].max() + v[:, 2].min()) / 2)
  # Scalp candidates: skin (and neck, for the nape) above the lowest hairline we ever draw.
  candidate = np.isin(labels, (classes.SKIN, classes.NECK)) & (v[:, 1] > neck_y + 0.06)
  candidate &= ~((v[:, 1] < brow_y + 0.015) & (v[:, 2] > lmk[36:48, 2].min() - 0.03))  # not the face
  scalp = np.nonzero(candidate)[0]
  local = -np.ones(len(v), np.int64)
  local[scalp] = np.arange(len(scalp))
  tris = np.asarray(model.triangles)
  keep = np.all(candidate[tris], axis=1)
  scalp_triangles = local[tris[keep]].astype(np.int32)
  # The neck at its bottom.
  bottom = v[v[:, 1] < neck_y + 0.01]
  neck_radii = (float(np.abs(bottom[:, 0]).max()), float(np.ptp(bottom[:, 2]) / 2))
  neck_centre_z = float((bottom[:, 2].max() + bottom[:, 2].min()) / 2)
  # Head radius at ear height around the back, for the long-hair curtain.
  cols, rows = _CURTAIN_GRID
  angle = np.linspace(0.35 * np.pi, 1.65 * np.pi, cols)
  band = v[np.abs(v[:, 1] - ear_y) < 0.02]
  band_angle = np.arctan2(band[:, 0], band[:, 2] - centre_z) % (2 * np.pi)
  band_radius = np.hypot(band[:, 0], band[:, 2] - centre_z)
  radius = np.array([band_radius[np.abs((band_angle - a + np.pi) % (2 * np.pi) - np.pi) < 0.2].max()
                     for a in angle], np.float32)
  return PortraitScene(
      scalp=scalp, scalp_triangles=scalp_triangles, centre_z=centre_z, brow_y=brow_y, ear_y=ear_y,
      neck_y=neck_y, neck_radii=neck_radii, neck_centre_z=neck_centre_z,
      curtain_radius=radius, curtain_angle=angle.astype(np.float32),
      curtain_triangles=_grid_triangles(cols, rows, wrap=False),
      torso_triangles=_grid_triangles(*_TORSO_GRID, wrap=True))


def sample_style(key) -> dict[str, jax.Array]:
  """Hair, clothes and background parameters of one portrait."""
  k = jax.random.split(key, 12)
  short = jax.random.bernoulli(k[0], 0.5)
  bald = jax.random.bernoulli(k[1], 0.06)
  return {
      'hair_colour': jnp.asarray(_HAIR_COLOURS)[jax.random.randint(k[2], (), 0, len(_HAIR_COLOURS))]
                     * jax.random.uniform(k[3], (3,), minval=0.85, maxval=1.15),
      'hair_thickness': jax.random.uniform(k[4], (), minval=0.006, maxval=0.02),
      'hairline_front': jnp.where(bald, 1.0, jax.random.uniform(k[5], (), minval=0.02, maxval=0.065)),
      'hairline_side': jax.random.uniform(k[6], (), minval=-0.015, maxval=0.02),
      'hairline_back': jax.random.uniform(k[7], (), minval=0.0, maxval=0.06),
      'hair_length': jnp.where(short | bald, 0.0, jax.random.uniform(k[8], (), minval=0.04,
                                                                     maxval=0.28)),
      'hair_phase': jax.random.uniform(k[9], (3,), maxval=2 * math.pi),
      'cloth_colour': jax.random.uniform(k[10], (3,), minval=0.05, maxval=0.9),
      'cloth_stripes': jax.random.uniform(k[11], (), minval=-6.0, maxval=6.0),
  }


def _hair_shell(scene: PortraitScene, head: jax.Array, normals: jax.Array, style) -> jax.Array:
  """Hair shell vertices [S, 3] over the scalp of head vertices [N, 3]."""
  p, n = head[scene.scalp], normals[scene.scalp]
  theta = jnp.arctan2(p[:, 0], p[:, 2] - scene.centre_z)
  front, back = jnp.maximum(jnp.cos(theta), 0) ** 2, jnp.maximum(-jnp.cos(theta), 0) ** 2
  hairline = (front * (scene.brow_y + style['hairline_front'])
              + back * (scene.neck_y + 0.06 + style['hairline_back'])
              + (1 - front - back) * (scene.ear_y + style['hairline_side']))
  phase = style['hair_phase']
  hairline += 0.004 * (jnp.sin(3 * theta + phase[0]) + jnp.sin(7 * theta + phase[1]))
  covered = jax.nn.sigmoid((p[:, 1] - hairline) / 0.003)
  volume = style['hair_thickness'] * (1 + 0.25 * jnp.sin(5 * theta + 40 * p[:, 1] + phase[2]))
  offset = covered * volume - (1 - covered) * 0.004
  return p + offset[:, None] * n


def _curtain(scene: PortraitScene, style) -> jax.Array:
  """Long-hair curtain vertices [C·R, 3]; without long hair it shrinks inside the head, unseen."""
  cols, rows = _CURTAIN_GRID
  t = jnp.linspace(0.0, 1.0, rows)
  angle = jnp.asarray(scene.curtain_angle)[:, None]
  radius = jnp.where(style['hair_length'] > 0,
                     jnp.asarray(scene.curtain_radius)[:, None] + style['hair_thickness'] + 0.03 * t,
                     0.5 * jnp.asarray(scene.curtain_radius)[:, None])
  y = scene.ear_y + 0.03 - style['hair_length'] * t
  x, z = radius * jnp.sin(angle), scene.centre_z + radius * jnp.cos(angle)
  return jnp.stack([x, jnp.broadcast_to(y, x.shape), z], axis=-1).reshape(cols * rows, 3)


def _torso(scene: PortraitScene, style) -> jax.Array:
  """Bust vertices [32·10, 3]: a collar around the neck bottom widening into shoulders."""
  cols, rows = _TORSO_GRID
  theta = jnp.linspace(0.0, 2 * math.pi, cols, endpoint=False)[:, None]
  t = jnp.linspace(0.0, 1.0, rows)[None, :]
  shoulder = jnp.clip(t / 0.3, 0.0, 1.0)
  shoulder = shoulder * shoulder * (3 - 2 * shoulder)  # smoothstep
  half_x = scene.neck_radii[0] + 0.006 + shoulder * 0.13
  half_z = scene.neck_radii[1] + 0.006 + shoulder * 0.05
  y = scene.neck_y + 0.025 - 0.06 * shoulder - 0.35 * t
  x = half_x * jnp.sin(theta)
  z = scene.neck_centre_z - 0.01 * shoulder + half_z * jnp.cos(theta)
  return jnp.stack([x, jnp.broadcast_to(y, x.shape), z], axis=-1).reshape(cols * rows, 3)


def _scene_topology(model: model_lib.FaceModel, scene: PortraitScene):
  """Triangles [T, 3] and vertex labels [V] of head + hair shell + curtain + torso."""
  n, s = model.n_vertices, len(scene.scalp)
  c = _CURTAIN_GRID[0] * _CURTAIN_GRID[1]
  k = _TORSO_GRID[0] * _TORSO_GRID[1]
  triangles = np.concatenate([np.asarray(model.triangles), scene.scalp_triangles + n,
                              scene.curtain_triangles + n + s, scene.torso_triangles + n + s + c])
  labels = np.concatenate([np.asarray(model.vertex_labels), np.full(s + c, classes.HAIR),
                           np.full(k, classes.CLOTH)]).astype(np.int32)
  return jnp.asarray(triangles), jnp.asarray(labels)


def _painted(albedo: jax.Array) -> jax.Array:
  """Cartoon albedo [..., 3]: albedo [..., 3] pushed CARTOON_SATURATION times further from its
  grey, clipped to [0, 1]."""
  grey = albedo.mean(axis=-1, keepdims=True)
  return jnp.clip(grey + CARTOON_SATURATION * (albedo - grey), 0.0, 1.0)


def _cel_shade(albedo: jax.Array, irradiance: jax.Array) -> jax.Array:
  """Per-pixel cel shading [H, W, 3] of albedo [H, W, 3] under irradiance [H, W, 3]: the
  irradiance's mean over channels posterised into CEL_BAND-wide bands, times its colour."""
  brightness = irradiance.mean(axis=-1, keepdims=True)
  colour = irradiance / jnp.maximum(brightness, 1e-6)
  bands = CEL_BAND * jnp.maximum(jnp.round(brightness / CEL_BAND), 1.0)
  return albedo * colour * bands


def _outlines(labels: jax.Array) -> jax.Array:
  """[H, W] float, 1 on pixels of labels [H, W] whose class differs from a 4-neighbour's (a line
  two pixels wide along every class border, the silhouette included), else 0."""
  padded = jnp.pad(labels, 1, mode='edge')
  centre = padded[1:-1, 1:-1]
  neighbours = (padded[:-2, 1:-1], padded[2:, 1:-1], padded[1:-1, :-2], padded[1:-1, 2:])
  return jnp.any(jnp.stack([n != centre for n in neighbours]), axis=0).astype(jnp.float32)


def _cartoon_composite(mesh: face_model.MeshRender, background: jax.Array) -> jax.Array:
  """The cartoon picture [H, W, 3] of one rendered mesh (a batch of 1; its attributes: painted
  albedo [..., :3] and irradiance [..., 3:]): cel shading over the flat mean colour of background
  [H, W, 3], with ink along the class borders."""
  surface = _cel_shade(mesh.image[0, ..., :3], mesh.image[0, ..., 3:])  # 0 off the mesh
  flat = jnp.broadcast_to(background.mean(axis=(0, 1)), background.shape)
  composite = surface + (1 - mesh.mask[0, ..., None]) * flat
  ink = _outlines(mesh.labels[0])[..., None]
  return (1 - ink) * composite + ink * INK


def render_portrait(key, model: model_lib.FaceModel, scene: PortraitScene, resolution: int,
                    supersample: int = 2, identity_key=None,
                    art_style: str = 'photo') -> dict[str, jax.Array]:
  """One portrait from one key: image [R, R, 3] float in [0, 1], parsing [R, R] int32,
  landmarks [68, 2] (pixels), camera [25], coeffs [D].

  identity_key, when given, draws the identity κ (shape α and albedo δ) from it instead of from
  `key`: portraits sharing an identity_key show one person with different expression, light, pose,
  hair, clothes and background. art_style is one of ART_STYLES (module docstring); it changes the
  image alone.
  """
  k_controls, k_style, k_background = jax.random.split(key, 3)
  coeffs, camera = prior_lib.sample_controls(k_controls, model, 1)
  if identity_key is not None:
    coeffs = prior_lib.with_identity(model, coeffs,
                                     prior_lib.sample_controls(identity_key, model, 1)[0])
  return render_controls(k_style, k_background, model, scene, coeffs[0], camera[0], resolution,
                         supersample, art_style)


def render_controls(k_style, k_background, model: model_lib.FaceModel, scene: PortraitScene,
                    coeffs: jax.Array, camera: jax.Array, resolution: int,
                    supersample: int = 2, art_style: str = 'photo') -> dict[str, jax.Array]:
  """The portrait of given controls coeffs [D] and camera [25], hair and clothes drawn from
  k_style and the background from k_background (render_portrait's outputs): the exact render of
  what a generator given the same controls should show (the floor of control accuracy).

  Raises:
    ValueError: if art_style is not one of ART_STYLES.
  """
  if art_style not in ART_STYLES:
    raise ValueError(f'Unknown art style {art_style!r}; the world renders {list(ART_STYLES)}.')
  camera = camera[None]
  style = sample_style(k_style)
  parts = model.split_coeffs(coeffs)
  head = model_lib.shape(model, parts.identity, parts.expression)
  head_normals = model_lib.vertex_normals(head, model.triangles)
  hair = jnp.concatenate([_hair_shell(scene, head, head_normals, style), _curtain(scene, style)])
  vertices = jnp.concatenate([head, hair, _torso(scene, style)])
  triangles, vertex_labels = _scene_topology(model, scene)
  normals = model_lib.vertex_normals(vertices, triangles)
  # Albedo: the face model's, then hair with strand-like streaks, then cloth with stripes.
  hair_streaks = 1 + 0.2 * jnp.sin(90 * jnp.arctan2(hair[:, 0], hair[:, 2] - scene.centre_z))
  torso = vertices[len(head) + len(hair):]
  stripes = 1 + 0.25 * jnp.sign(jnp.sin(style['cloth_stripes'] * 40 * torso[:, 1]))
  albedo = jnp.concatenate([
      model_lib.albedo(model, parts.texture),
      style['hair_colour'] * hair_streaks[:, None],
      jnp.clip(style['cloth_colour'] * stripes[:, None], 0, 1)])
  big = resolution * supersample
  background = backgrounds.background(k_background, big)
  if art_style == 'photo':
    colours = face_model.shade(albedo, normals, parts.gamma)
    mesh = face_model.render_mesh(vertices[None], colours[None], vertex_labels, triangles, camera,
                                  big)
    composite = mesh.image[0] + (1 - mesh.mask[0, ..., None]) * background
  else:  # cartoon: albedo and irradiance interpolated apart, shaded per pixel
    attributes = jnp.concatenate([_painted(albedo), shading.irradiance(normals, parts.gamma)], -1)
    mesh = face_model.render_mesh(vertices[None], attributes[None], vertex_labels, triangles,
                                  camera, big)
    composite = _cartoon_composite(mesh, background)
  image = composite.reshape(resolution, supersample, resolution, supersample, 3).mean(axis=(1, 3))
  votes = jax.nn.one_hot(mesh.labels[0], classes.NUM_CLASSES).reshape(
      resolution, supersample, resolution, supersample, -1).sum(axis=(1, 3))
  landmarks = mesh.screen_xy[0, model.landmarks68] / supersample
  return {'image': jnp.clip(image, 0.0, 1.0), 'parsing': jnp.argmax(votes, axis=-1),
          'landmarks': landmarks, 'camera': camera[0], 'coeffs': coeffs}


@functools.lru_cache(maxsize=4)
def _batch_renderer(resolution: int, art_style: str):
  model = face_model.load_embedded()
  scene = build_scene(model)

  @jax.jit
  def render(seeds):
    keys = jax.vmap(jax.random.PRNGKey)(seeds)
    return jax.vmap(lambda k: render_portrait(k, model, scene, resolution,
                                              art_style=art_style))(keys)

  return render


@functools.lru_cache(maxsize=4)
def identity_group_renderer(resolution: int, views: int):
  """A jitted render(seeds uint32[G]) of G identities seen `views` times each, for identity losses.

  Returns dicts of [G * views, ...] arrays as render_portrait's, plus identity int32 [G * views]
  (the group index); view v of group g is row g * views + v. Deterministic from the seeds.
  """
  model = face_model.load_embedded()
  scene = build_scene(model)

  def group(seed):
    identity_key, views_key = jax.random.split(jax.random.PRNGKey(seed))
    return jax.vmap(lambda k: render_portrait(k, model, scene, resolution, identity_key=identity_key)
                    )(jax.random.split(views_key, views))

  @jax.jit
  def render(seeds):
    out = jax.vmap(group)(seeds)
    out = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), out)
    out['identity'] = jnp.repeat(jnp.arange(seeds.shape[0], dtype=jnp.int32), views)
    return out

  return render


def generate_records(seeds: Sequence[int], resolution: int, batch_size: int = 8,
                     art_style: str = 'photo') -> Iterator[dict]:
  """Portrait records of the embedded head, one per seed, deterministic from the seed.

  Yields dicts: image uint8 [R, R, 3], parsing uint8 [R, R], landmarks float32 [68, 2] (pixels),
  camera float32 [25], coeffs float32 [D], seed int64. Every art style (ART_STYLES) gives a seed
  the same record but for the image.
  """
  render = _batch_renderer(resolution, art_style)
  seeds = list(seeds)
  for start in range(0, len(seeds), batch_size):
    chunk = seeds[start:start + batch_size]
    padded = np.asarray(chunk + [chunk[-1]] * (batch_size - len(chunk)), np.uint32)
    out = jax.device_get(render(padded))
    for i, seed in enumerate(chunk):
      yield {
          'image': np.round(out['image'][i] * 255).astype(np.uint8),
          'parsing': out['parsing'][i].astype(np.uint8),
          'landmarks': out['landmarks'][i].astype(np.float32),
          'camera': out['camera'][i].astype(np.float32),
          'coeffs': out['coeffs'][i].astype(np.float32),
          'seed': np.int64(seed),
      }
