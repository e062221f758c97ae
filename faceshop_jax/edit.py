"""Editing portraits with a trained generator: per-factor edits, renders, mattes and meshes.

  bundle = inference.load('/tmp/gan_export')          # an export or a training run
  portrait = edit.from_seeds(bundle, [0, 1])          # controls + cameras, nothing rendered yet
  portrait = edit.with_expression(bundle, portrait, units={'jawOpen': 0.8})
  portrait = edit.with_light(bundle, portrait, yaw=0.5, pitch=0.3, intensity=0.8)
  portrait = edit.with_pose(portrait, yaw=0.3)
  rendered = edit.render(bundle, portrait)            # image, semantic labels, depth, alpha
  matted = edit.render(bundle, portrait, transparent_background=True)
  over_beach = edit.composite(matted, edit.load_background('beach.jpg', 512))   # paper §6.1
  shape, colours = edit.extract_mesh(bundle, portrait, index=0)   # surface.write_mesh(path, ...)

A Portrait is its controls, ε (noise) and κ, β, γ (in the face model's coefficients), plus two
cameras: the one it is rendered through and the one the generator's mapping is conditioned on.
The conditioning camera stays where `from_seeds` put it (frontal) unless asked, so turning the
head (`with_pose`) shows the same person from another side. Every edit returns a new Portrait
whose other parts are the same arrays.

An expression edit remembers the expression the portrait had before it (`base_expression`); with
`blend` (the default) `render` then draws the edit volume-blended into the unedited portrait
(paper §4.4: the edited field on the face, the original's elsewhere), so hair, clothes and
background do not move when the expression does. Identity and light edits apply to both.
"""
import functools
import os
from typing import NamedTuple

import chex
import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from faceshop_jax import classes
from faceshop_jax import face_model as face_model_lib
from faceshop_jax import geometry
from faceshop_jax import inference
from faceshop_jax import surface
from faceshop_jax import models
from faceshop_jax import nerf
from faceshop_jax import visualize
from faceshop_jax.face_model import prior as prior_lib
from faceshop_jax.face_model import shading

# A light set by direction: one white directional light plus this RGB ambient irradiance (inside
# the control prior's ambient range, 0.15 to 0.6), as SH coefficients.
LIGHT_AMBIENT = 0.3
# Mesh extraction (EG3D's shape extraction): the density level of the surface, and the sample grid.
MESH_LEVEL = 10.0
MESH_RESOLUTION = 128
MESH_VIEW_YAWS = (-0.5, 0.5)  # mesh_views' two cameras
MESH_BACKGROUND = 0.5  # what mesh_views draws behind the mesh, on [0, 1]
MESH_VIEW_SIZE = 256
# The depth picture shades the rays at least this opaque (the expected depth of fainter rays is
# mostly the far bound).
DEPTH_MIN_ALPHA = 0.1


@flax.struct.dataclass
class Portrait:
  """N portraits as controls and cameras (a pytree; index with `portrait[i]`).

  Attributes:
    noise: ε [N, noise_dim].
    coeffs: [N, D] the face model's coefficients: κ = (α, δ), β and γ are read; pose is the camera.
    camera: [N, 25] the camera rendered through.
    conditioning_camera: [N, 25] the camera the mapping is conditioned on.
    base_expression: [N, n_exp] the expression before the first expression edit (the portrait a
      blended edit keeps off the face), or None if the expression was never edited.
    z_offset: [N, num_ws, control_dim] per-layer offsets added to the control vector z before
      mapping (the paper's Z+, what inversion optimises; edits change z and keep the offsets), or
      None for one z for every layer.
  """
  noise: jax.Array
  coeffs: jax.Array
  camera: jax.Array
  conditioning_camera: jax.Array
  base_expression: jax.Array | None = None
  z_offset: jax.Array | None = None

  def __len__(self) -> int:
    return self.coeffs.shape[0]

  def __getitem__(self, index) -> 'Portrait':
    """The portraits at `index` (an int keeps a batch of one)."""
    index = slice(index, index + 1) if isinstance(index, int) else index
    return jax.tree.map(lambda x: x[index], self)


class Rendered(NamedTuple):
  """What `render` draws, as numpy arrays.

  Attributes:
    image: uint8 [N, R, R, 3], the super-resolved images.
    labels: int32 [N, r, r] semantic classes (faceshop_jax.classes; 0 = background).
    depth: float32 [N, r, r] expected ray depth, metres from the camera (ray far where empty).
    alpha: float32 [N, r, r] accumulated opacity: with a transparent background, the matte.
    transparent_background: whether the background volume was made transparent, so `image` is
      the portrait premultiplied by alpha (over black).
  """
  image: np.ndarray
  labels: np.ndarray
  depth: np.ndarray
  alpha: np.ndarray
  transparent_background: bool


def check_view(yaw: float, pitch: float) -> None:
  """Raises a ValueError unless (yaw, pitch) lies in the control prior's camera range."""
  prior = prior_lib.PriorConfig()
  for name, value, limit in (('yaw', yaw, prior.max_yaw), ('pitch', pitch, prior.max_pitch)):
    if not -limit <= value <= limit:
      raise ValueError(f'{name} = {value} is outside [-{limit}, {limit}] radians, the cameras the '
                       f'generator was trained on (face_model.prior.PriorConfig.max_{name}).')


def _cameras(n: int, yaw: float, pitch: float) -> jax.Array:
  return geometry.camera_from_yaw_pitch(jnp.full(n, yaw), jnp.full(n, pitch))


def from_controls(coeffs: jax.Array, noise: jax.Array, yaw: float = 0.0,
                  pitch: float = 0.0) -> Portrait:
  """Portraits of explicit controls (coeffs [N, D], noise [N, noise_dim]) seen from (yaw, pitch)
  radians, conditioned on the frontal camera."""
  n = coeffs.shape[0]
  chex.assert_shape(noise, (n, None))
  check_view(yaw, pitch)
  return Portrait(noise=noise, coeffs=coeffs, camera=_cameras(n, yaw, pitch),
                  conditioning_camera=_cameras(n, 0.0, 0.0))


def from_seeds(bundle: inference.GeneratorBundle, seeds, yaw: float = 0.0,
               pitch: float = 0.0) -> Portrait:
  """The portraits of the seeds (models.seed_controls with the run's own config)."""
  controls = models.seed_controls(bundle.config, seeds)
  return from_controls(controls.coeffs, controls.noise, yaw, pitch)


def from_bundle(bundle: inference.GeneratorBundle, seeds=None, yaw: float | None = None,
                pitch: float = 0.0) -> Portrait:
  """The portraits of the seeds, or without seeds the bundle's personal portrait (an inverted
  real person's export), seen from (yaw, pitch) if given (else its own camera).

  Raises:
    ValueError: no seeds and no personal portrait in the bundle.
  """
  if seeds is None:
    if bundle.portrait is None:
      raise ValueError('Give seeds: this generator holds no personal portrait (an export written '
                       'by python -m faceshop_jax.invert does).')
    portrait = Portrait(**{name: jnp.asarray(value) for name, value in bundle.portrait.items()})
    return portrait if yaw is None else with_pose(portrait, yaw, pitch)
  return from_seeds(bundle, seeds, yaw or 0.0, pitch)


def _with_parts(bundle, portrait: Portrait, **parts: jax.Array) -> Portrait:
  """portrait with the named coefficient fields replaced (broadcast over the batch)."""
  model = bundle.face_model
  split = model.split_coeffs(portrait.coeffs)
  replaced = {name: jnp.broadcast_to(jnp.asarray(value, portrait.coeffs.dtype),
                                     getattr(split, name).shape) for name, value in parts.items()}
  return portrait.replace(coeffs=model.merge_coeffs(split._replace(**replaced)))


def _seed_coeffs(bundle, seeds, n: int) -> jax.Array:
  """Coefficients [n, D] of seeds: one seed for all n portraits, or n seeds."""
  seeds = np.atleast_1d(np.asarray(seeds))
  if len(seeds) not in (1, n):
    raise ValueError(f'Give one seed or one per portrait ({n}); got {len(seeds)}.')
  return jnp.broadcast_to(models.seed_controls(bundle.config, seeds).coeffs,
                          (n, bundle.face_model.n_coeffs))


def with_pose(portrait: Portrait, yaw: float, pitch: float = 0.0,
              move_conditioning: bool = False) -> Portrait:
  """The portraits seen from (yaw, pitch) radians (positive yaw: the subject's left; positive
  pitch: from above). The conditioning camera stays unless move_conditioning (EG3D's pose
  conditioning: the generator may then change the person with the view)."""
  check_view(yaw, pitch)
  camera = _cameras(len(portrait), yaw, pitch)
  return portrait.replace(camera=camera,
                          conditioning_camera=camera if move_conditioning
                          else portrait.conditioning_camera)


def with_identity(bundle: inference.GeneratorBundle, portrait: Portrait, seed=None,
                  key: jax.Array | None = None) -> Portrait:
  """The portraits with the identity κ = (α, δ) of another seed (one for all, or one each), or
  resampled from `key`; exactly one of seed and key."""
  if (seed is None) == (key is None):
    raise ValueError('with_identity takes exactly one of seed (take that seed\'s identity) and key '
                     '(resample it).')
  n = len(portrait)
  donors = (_seed_coeffs(bundle, seed, n) if key is None
            else models.sample_coefficients(bundle.config, key, n))
  parts = bundle.face_model.split_coeffs(donors)
  return _with_parts(bundle, portrait, identity=parts.identity, texture=parts.texture)


def expression_vector(model, units: dict[str, float]) -> jax.Array:
  """Expression β [n_exp] from named units in [0, 1], e.g. {'jawOpen': 0.8}; others are 0.

  Raises:
    ValueError: an unknown unit (listing the known ones) or a value outside [0, 1].
  """
  vector = model.expression_coefficients(units)
  for name, value in units.items():
    if not 0.0 <= value <= 1.0:
      raise ValueError(f'Expression unit {name!r} = {value} is outside [0, 1], the range of the '
                       'face model\'s expression units (0 neutral, 1 full).')
  return vector


def with_expression(bundle: inference.GeneratorBundle, portrait: Portrait,
                    units: dict[str, float] | None = None, beta=None, seed=None) -> Portrait:
  """The portraits with a new expression β; exactly one of:

  Args:
    bundle: the generator.
    portrait: the portraits to edit.
    units: named expression units in [0, 1] (the embedded head's ARKit units), all others 0.
    beta: a raw β [n_exp] or [N, n_exp], for any face model.
    seed: take the expression of this seed's controls (or one seed per portrait).

  Returns:
    The edited portraits; base_expression keeps the expression before the first edit.
  """
  if sum(x is not None for x in (units, beta, seed)) != 1:
    raise ValueError('with_expression takes exactly one of units, beta and seed.')
  model = bundle.face_model
  if units is not None:
    beta = expression_vector(model, units)
  elif seed is not None:
    beta = model.split_coeffs(_seed_coeffs(bundle, seed, len(portrait))).expression
  beta = jnp.asarray(beta, jnp.float32)
  if beta.shape not in ((model.n_exp,), (len(portrait), model.n_exp)):
    raise ValueError(f'{model.name} has {model.n_exp} expression coefficients; got β of shape '
                     f'{beta.shape} for {len(portrait)} portrait(s).')
  base = portrait.base_expression
  if base is None:
    base = model.split_coeffs(portrait.coeffs).expression
  return _with_parts(bundle, portrait, expression=beta).replace(base_expression=base)


def light_gamma(yaw: float, pitch: float, intensity: float, colour=(1.0, 1.0, 1.0),
                ambient=LIGHT_AMBIENT) -> jax.Array:
  """SH illumination γ [27] of one directional light and an ambient term.

  The light stands where a camera at (yaw, pitch) radians would (geometry.camera_position), so
  (0, 0) lights the face frontally; its RGB irradiance at normal incidence is intensity · colour
  (the control prior draws intensities 0.2 to 0.9); ambient is a grey level or an RGB triple.

  Raises:
    ValueError: a negative intensity, colour or ambient.
  """
  colour, ambient = np.broadcast_to(colour, (3,)), np.broadcast_to(ambient, (3,))
  if intensity < 0 or (colour < 0).any() or (ambient < 0).any():
    raise ValueError(f'Light intensity {intensity}, colour {colour.tolist()} and ambient '
                     f'{ambient.tolist()} must not be negative.')
  direction = geometry.camera_position(yaw, pitch)
  return shading.gamma_from_lights(direction[None], jnp.asarray(intensity * colour[None]),
                                   jnp.asarray(ambient, jnp.float32))


def with_light(bundle: inference.GeneratorBundle, portrait: Portrait, yaw: float | None = None,
               pitch: float = 0.0, intensity: float = 0.7, colour=(1.0, 1.0, 1.0),
               ambient=LIGHT_AMBIENT, gamma=None) -> Portrait:
  """The portraits lit by one directional light from (yaw, pitch) (light_gamma), or by a raw SH
  γ [27] or [N, 27]; exactly one of yaw and gamma."""
  if (yaw is None) == (gamma is None):
    raise ValueError('with_light takes exactly one of yaw (a light direction) and gamma (raw SH).')
  if gamma is None:
    gamma = light_gamma(yaw, pitch, intensity, colour, ambient)
  gamma = jnp.asarray(gamma, jnp.float32)
  if gamma.shape not in ((face_model_lib.N_GAMMA,), (len(portrait), face_model_lib.N_GAMMA)):
    raise ValueError(f'γ holds {face_model_lib.N_GAMMA} SH coefficients (9 bands × RGB) per portrait; '
                     f'got shape {gamma.shape} for {len(portrait)} portrait(s).')
  return _with_parts(bundle, portrait, gamma=gamma)


def _generator_inputs(bundle, portrait: Portrait, blend: bool):
  """z [N, control_dim] and, for a blended expression edit, z of the unedited portrait."""
  config = bundle.config
  z = models.control_vector(config, portrait.coeffs, portrait.noise)
  z_original = None
  if blend and portrait.base_expression is not None:
    original = _with_parts(bundle, portrait, expression=portrait.base_expression)
    z_original = models.control_vector(config, original.coeffs, portrait.noise)
  return z, z_original


def layer_ws(generator: models.TriPlaneGenerator, z, z_offset, conditioning_camera,
             truncation_psi: float = 1.0) -> jax.Array:
  """Inside generator.apply: ws [N, num_ws, w_dim] of z [N, control_dim] mapped through the
  conditioning camera; with per-layer offsets z_offset [N, num_ws, control_dim], layer l's w is
  the mapping of z + z_offset[:, l] (Z+)."""
  if z_offset is None:
    return generator.mapping(z, conditioning_camera, truncation_psi=truncation_psi)
  n, layers = z_offset.shape[:2]
  mapped = generator.mapping((z[:, None] + z_offset).reshape(n * layers, -1),
                             jnp.repeat(conditioning_camera, layers, axis=0),
                             truncation_psi=truncation_psi).reshape(n, layers, layers, -1)
  return mapped[:, jnp.arange(layers), jnp.arange(layers)]


def portrait_outputs(generator: models.TriPlaneGenerator, variables, z, z_original, z_offset,
                     conditioning_camera, camera, truncation_psi: float = 1.0,
                     transparent_background: bool = False) -> dict[str, jax.Array]:
  """The generator's outputs (TriPlaneGenerator.__call__'s dict) for z [N, control_dim] with
  optional per-layer offsets, or for z's volume-blended edit of z_original, rendered through
  camera with constant noise and deterministic ray samples; differentiable in variables and z
  (what render draws and inversion optimises)."""
  def draw(module):
    field, ws = _portrait_field(module, z, z_original, z_offset, conditioning_camera,
                                truncation_psi, transparent_background)
    return module.render_field(field, ws, camera, 'const')

  return nn.apply(draw, generator)(variables)


def _portrait_field(module, z, z_original, z_offset, conditioning_camera, truncation_psi,
                    transparent_background):
  """Inside generator.apply: (field_fn, ws for the super-resolution) of portrait_outputs."""
  ws = layer_ws(module, z, z_offset, conditioning_camera, truncation_psi)
  field = module.field(ws, 'const')
  if z_original is not None:
    ws = layer_ws(module, z_original, z_offset, conditioning_camera, truncation_psi)
    field = nerf.blended_field(field, module.field(ws, 'const'))
  if transparent_background:
    field = nerf.transparent_background(field)
  return field, ws


@functools.partial(jax.jit, static_argnames=('generator', 'truncation_psi',
                                             'transparent_background'))
def _render(generator, variables, z, z_original, z_offset, conditioning_camera, camera,
            truncation_psi, transparent_background):
  out = portrait_outputs(generator, variables, z, z_original, z_offset, conditioning_camera,
                         camera, truncation_psi, transparent_background)
  labels = jnp.argmax(out['semantics'], axis=-1).astype(jnp.int32)
  return out['image'], labels, out['depth'], out['alpha']


def render(bundle: inference.GeneratorBundle, portrait: Portrait, blend: bool = True,
           transparent_background: bool = False, truncation_psi: float = 1.0) -> Rendered:
  """The portraits through the EMA generator (constant noise, deterministic ray samples).

  Args:
    bundle: the generator.
    portrait: N portraits.
    blend: render an expression edit volume-blended into the unedited portrait (module docstring);
      False renders the edited controls whole.
    transparent_background: make the background volume transparent (paper §6.1), so alpha is the
      portrait's matte (composite).
    truncation_psi: < 1 pulls w toward the tracked average w (one compilation per value).
  """
  n = len(portrait)
  chex.assert_shape(portrait.coeffs, (n, bundle.face_model.n_coeffs))
  chex.assert_shape(portrait.noise, (n, bundle.config.model.noise_dim))
  chex.assert_shape([portrait.camera, portrait.conditioning_camera], (n, geometry.CAMERA_SIZE))
  z, z_original = _generator_inputs(bundle, portrait, blend)
  image, labels, depth, alpha = jax.device_get(_render(
      bundle.generator, bundle.variables, z, z_original, portrait.z_offset,
      portrait.conditioning_camera, portrait.camera, float(truncation_psi),
      bool(transparent_background)))
  return Rendered(image=visualize.to_uint8(image, -1, 1), labels=np.asarray(labels),
                  depth=np.asarray(depth, np.float32), alpha=np.asarray(alpha, np.float32),
                  transparent_background=bool(transparent_background))


@functools.partial(jax.jit, static_argnames=('generator', 'truncation_psi'))
def _mapped_ws(generator, variables, z, z_offset, conditioning_camera, truncation_psi):
  return nn.apply(lambda module: layer_ws(module, z, z_offset, conditioning_camera,
                                          truncation_psi), generator)(variables)


def mapped_ws(bundle: inference.GeneratorBundle, portrait: Portrait,
              truncation_psi: float = 1.0) -> np.ndarray:
  """float32 [N, num_ws, w_dim]: the portraits' w (their unblended controls mapped through the
  conditioning camera), what the synthesis network is modulated by."""
  z = models.control_vector(bundle.config, portrait.coeffs, portrait.noise)
  return np.asarray(_mapped_ws(bundle.generator, bundle.variables, z, portrait.z_offset,
                               portrait.conditioning_camera, float(truncation_psi)))


def upsample_alpha(alpha: np.ndarray, size: int) -> np.ndarray:
  """[N, r, r] mattes -> [N, size, size] by bilinear resampling (values stay in [0, 1])."""
  n = alpha.shape[0]
  return np.clip(np.asarray(jax.image.resize(jnp.asarray(alpha), (n, size, size), 'linear')), 0, 1)


def composite(rendered: Rendered, background: np.ndarray) -> np.ndarray:
  """The portraits over a background image (paper §6.1): image + (1 − alpha) · background.

  Args:
    rendered: a render with transparent_background=True (its image is premultiplied by alpha).
    background: uint8 [R, R, 3] (one for all) or [N, R, R, 3] at the image size.

  Returns:
    uint8 [N, R, R, 3].
  """
  if not rendered.transparent_background:
    raise ValueError('composite needs a render with transparent_background=True: only then is the '
                     'image the portrait alone and alpha its matte.')
  n, size = rendered.image.shape[:2]
  background = np.asarray(background)
  if background.dtype != np.uint8 or background.shape[-3:] != (size, size, 3):
    raise ValueError(f'The background must be uint8 [{size}, {size}, 3] (the image size); got '
                     f'{background.dtype} {background.shape}. load_background resizes a file.')
  alpha = upsample_alpha(rendered.alpha, size)[..., None]
  over = rendered.image.astype(np.float32) + (1.0 - alpha) * background.astype(np.float32)
  return np.clip(np.round(over), 0, 255).astype(np.uint8)


def load_background(path: str, size: int) -> np.ndarray:
  """uint8 [size, size, 3]: the image file at path, centre-cropped to a square and resized.

  Raises:
    FileNotFoundError / ValueError: no such file, or not an image Pillow can read.
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(f'No background image at {path}.')
  try:
    with Image.open(path) as image:
      image = image.convert('RGB')
  except (OSError, Image.DecompressionBombError) as e:
    raise ValueError(f'Cannot read the background image {path}: {e}') from None
  side = min(image.size)
  left, top = (image.width - side) // 2, (image.height - side) // 2
  image = image.crop((left, top, left + side, top + side)).resize((size, size), Image.LANCZOS)
  return np.asarray(image, np.uint8)


@functools.partial(jax.jit, static_argnames=('generator', 'truncation_psi',
                                             'transparent_background'))
def _field_at(generator, variables, z, z_original, z_offset, conditioning_camera, points,
              truncation_psi, transparent_background):
  """Density [1, P] and colour [1, P, 3] in [0, 1] of one portrait's field at points [1, P, 3]."""
  def sample(module):
    field, _ = _portrait_field(module, z, z_original, z_offset, conditioning_camera,
                               truncation_psi, transparent_background)
    density, features, _ = field(points, None)
    return density, features[..., :3]

  return nn.apply(sample, generator)(variables)


def extract_mesh(bundle: inference.GeneratorBundle, portrait: Portrait, index: int = 0,
                 resolution: int = MESH_RESOLUTION, level: float = MESH_LEVEL, blend: bool = True,
                 truncation_psi: float = 1.0, transparent_background: bool = True,
                 chunk: int = 65_536):
  """The surface of portrait[index]'s density field (EG3D's shape extraction) with vertex colours.

  The field (blended as `render` would draw it; by default with its background volume made
  transparent, so the mesh is the portrait's, not the backdrop's) is sampled on a resolution³ grid
  over the generator's tri-plane box; marching cubes cuts it at `level` (density per metre).

  Returns:
    (surface.Mesh with vertices in metres in the head's frame, uint8 [V, 3] vertex colours: the
    field's colour at each vertex).

  Raises:
    ValueError: an index outside the batch, or a level the field never crosses.
  """
  if not 0 <= index < len(portrait):
    raise ValueError(f'Portrait index {index} is outside the batch of {len(portrait)}.')
  one = portrait[index]
  z, z_original = _generator_inputs(bundle, one, blend)

  def field_at(points):
    return _field_at(bundle.generator, bundle.variables, z, z_original, one.z_offset,
                     one.conditioning_camera,
                     jnp.asarray(points, jnp.float32)[None], float(truncation_psi),
                     bool(transparent_background))

  half_size = bundle.generator.box_half_size
  density = surface.sample_density(lambda p: field_at(p)[0][0], resolution, half_size, chunk)
  density[[0, -1]], density[:, [0, -1]], density[:, :, [0, -1]] = 0.0, 0.0, 0.0  # closed at the box
  shape = surface.marching_cubes(density, level, half_size)
  colours = np.concatenate([np.asarray(field_at(part)[1][0]) for part in
                            np.array_split(shape.vertices, max(1, len(shape.vertices) // chunk))])
  return shape, visualize.to_uint8(colours)


def output_pictures(rendered: Rendered, composites: dict[str, np.ndarray] | None = None
                    ) -> dict[str, np.ndarray]:
  """Each output of the portraits as uint8 [N, R, R, 3] pictures at the image size, by name.

  'image'; 'semantics' (class colours, nearest-neighbour upsampled); 'depth' (the nearest opaque
  point white, the farthest black, empty rays black); 'alpha' (the accumulated opacity: the matte,
  for a render with a transparent background); and each of `composites` ({name: uint8 [N, R, R, 3]},
  e.g. composite's output) as given.
  """
  size = rendered.image.shape[1]
  rows = np.arange(size) * rendered.labels.shape[1] // size

  def grey(x):
    return np.repeat(visualize.to_uint8(upsample_alpha(x, size))[..., None], 3, axis=-1)

  return {'image': rendered.image,
          'semantics': classes.colorize(rendered.labels[:, rows][:, :, rows]),
          'depth': grey(_depth_shade(rendered.depth, rendered.alpha)),
          'alpha': grey(rendered.alpha), **(composites or {})}


def save_pictures(pictures: dict[str, np.ndarray], directory: str, names) -> list[str]:
  """Writes DIRECTORY/<name>.png (the 'image') and <name>_<output>.png for every other output of
  output_pictures, one per portrait name; returns the paths."""
  if any(len(images) != len(names) for images in pictures.values()):
    raise ValueError(f'{len(names)} names for pictures of {len(pictures["image"])} portraits.')
  os.makedirs(directory, exist_ok=True)
  written = []
  for output, images in pictures.items():
    for name, image in zip(names, images):
      path = os.path.join(directory, f'{name}.png' if output == 'image' else f'{name}_{output}.png')
      visualize.save_png(path, image)
      written.append(path)
  return written


def mesh_views(shape: surface.Mesh, colours: np.ndarray, size: int = MESH_VIEW_SIZE,
               yaws=MESH_VIEW_YAWS) -> np.ndarray:
  """uint8 [size, len(yaws)·size, 3]: the mesh drawn by the JAX rasterizer from cameras at these
  yaws (pitch 0), its vertex colours lit by a frontal light (Lambertian, plus ambient) over grey."""
  vertices = jnp.asarray(shape.vertices)[None]
  triangles = jnp.asarray(shape.faces)
  normals = face_model_lib.vertex_normals(vertices, triangles)
  light = jnp.asarray([0.0, 0.3, 1.0]) / np.sqrt(1.09)
  shade = 0.35 + 0.65 * jnp.clip(normals @ light, 0.0, 1.0)[..., None]
  lit = jnp.asarray(colours, jnp.float32)[None] / 255.0 * shade
  views = []
  for yaw in yaws:
    camera = geometry.camera_from_yaw_pitch(jnp.asarray([yaw]), jnp.zeros(1))
    drawn = face_model_lib.render_mesh(vertices, lit, jnp.zeros(len(shape.vertices), jnp.int32),
                                       triangles, camera, size)
    mask = drawn.mask[..., None]
    views.append(visualize.to_uint8(drawn.image * mask + MESH_BACKGROUND * (1.0 - mask))[0])
  return np.concatenate(views, axis=1)


def _depth_shade(depth: np.ndarray, alpha: np.ndarray) -> np.ndarray:
  """[N, r, r] in [0, 1]: of the rays with alpha > DEPTH_MIN_ALPHA, the nearest expected depth
  of each portrait 1 and the farthest 0; the other rays 0."""
  opaque = alpha > DEPTH_MIN_ALPHA
  near = np.where(opaque, depth, np.inf).min(axis=(1, 2), keepdims=True)
  far = np.where(opaque, depth, -np.inf).max(axis=(1, 2), keepdims=True)
  shade = (far - depth) / np.maximum(far - near, 1e-6)
  return np.where(opaque & np.isfinite(shade), np.clip(shade, 0, 1), 0.0)

