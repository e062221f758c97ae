"""Inference with a trained 3D-aware generator: load it, export it, sample controls, render.

  bundle = inference.load_from_workdir('/tmp/gan')     # the newest checkpoint of a training run
  inference.save_export(bundle, '/tmp/gan_export')    # EMA generator + config, no training state
  bundle = inference.load_export('/tmp/gan_export')
  portraits = inference.generate(bundle, seeds=[0, 1], yaw=0.3, pitch=0.0,
                                 expression={'jawOpen': 0.8}, light=(0.5, 0.3, 0.8))
  noise, coeffs = inference.seed_controls(bundle, [0, 1])   # ε [2, noise_dim], coefficients [2, D]
  portraits = inference.render_controls(bundle, coeffs, noise, cameras)   # cameras [2, 25]
  for sweep in inference.control_sweeps(bundle, seeds=[0, 1], identity_seeds=range(100, 107)):
    renders = inference.render_sweep(bundle, sweep)   # generated | 3DMM render R, [S, C, R, R, 3]

Any stage whose train state keeps the EMA generator at ema_params['generator'] and the generator's
other collections (w_avg, constant noise) at constants['generator_state'], and whose config
describes the generator by config.model and config.data.face_model (the gan and imitative stages),
can be loaded. Control vectors follow the generator stages' layout z = [ε | α | δ | β | γ]
(models.control_vector). An export directory holds

  export.json        format version, the run's stage, step and config, the face-model spec
  generator/         orbax StandardCheckpointer: {'params': EMA params, 'stats', 'noise_const'}
  face_model.npz     the face model (face_model.save_npz), unless the run used the embedded one
  control_space/     the control space (control.save_control_space), if one was attached
"""
import dataclasses
import functools
import json
import math
import os
import shutil
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from faceshop_jax import control
from faceshop_jax import face_model as face_model_lib
from faceshop_jax import geometry
from faceshop_jax import models
from faceshop_jax import visualize
from faceshop_jax.face_model import prior as prior_lib
from faceshop_jax.train import checkpoints

EXPORT_FORMAT = 1
EXPORT_FILE = 'export.json'
GENERATOR_DIR = 'generator'
FACE_MODEL_FILE = 'face_model.npz'
CONTROL_SPACE_DIR = 'control_space'
# The --light override: one white directional light of the given intensity plus this RGB ambient
# irradiance (inside the control prior's ambient range, 0.15 to 0.6), as SH coefficients.
LIGHT_AMBIENT = 0.3


@dataclasses.dataclass(frozen=True, eq=False)
class GeneratorBundle:
  """Everything generation needs, and nothing of training.

  Attributes:
    config: the run's config (rebuilt from its saved JSON); config.model and
      config.data.face_model describe the generator.
    generator: the generator module.
    variables: {'params': EMA parameters, 'stats': {w_avg}, 'noise_const': ...}.
    face_model: the face model whose coefficients κ, β, γ the control vectors hold.
    step: the training step the EMA parameters come from.
    control_space: the trained control space to sample κ, β, γ from; None samples the face
      model's prior (face_model.prior), as the generator stages do in training.
  """
  config: ml_collections.ConfigDict
  generator: models.TriPlaneGenerator
  variables: dict[str, Any]
  face_model: face_model_lib.FaceModel
  step: int
  control_space: control.ControlSpace | None = None

  @property
  def control_dim(self) -> int:
    return self.generator.z_dim


class Portraits(NamedTuple):
  """What `generate` renders, as numpy arrays.

  Attributes:
    images: uint8 [N, R, R, 3], the super-resolved images.
    labels: int32 [N, r, r] semantic classes (faceshop_jax.classes; 0 = background).
    depth: float32 [N, r, r] expected ray depth, metres from the camera.
  """
  images: np.ndarray
  labels: np.ndarray
  depth: np.ndarray


def _single_device(tree):
  """ShapeDtypeStructs of tree's leaves on the default device (a restore target)."""
  sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  return jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sharding), tree)


def _abstract_variables(config, generator: models.TriPlaneGenerator) -> dict[str, Any]:
  """The generator's variables as ShapeDtypeStructs: params plus its other collections."""
  camera = geometry.camera_from_yaw_pitch(jnp.zeros(1), jnp.zeros(1))
  rngs = {name: jax.random.PRNGKey(0) for name in ('params',) + models.RNG_STREAMS}
  z = jnp.zeros((1, models.control_dim(config)))
  return _single_device(jax.eval_shape(lambda: generator.init(rngs, z, camera, camera)))


def load_from_workdir(workdir: str, step: int | None = None) -> GeneratorBundle:
  """The EMA generator of the checkpoint at `step` (default: the newest) in WORKDIR/checkpoints
  (no control space).

  Only the generator's part of the train state is read (orbax partial restore), so neither the
  stage's constants nor its data iterator are rebuilt.

  Raises:
    FileNotFoundError: no such directory, or no checkpoint in it.
    ValueError: the checkpoint holds no generator (e.g. a vae run), or one whose shapes do not
      match its config.
  """
  workdir = os.path.abspath(workdir)
  if not os.path.isdir(workdir):
    raise FileNotFoundError(f'No training run at {workdir}: the directory does not exist.')

  def generator_target(config, saved):
    if 'generator' not in saved.get('ema_params', {}) or 'generator_state' not in saved.get(
        'constants', {}):
      raise ValueError(
          f"(stage {config.get('stage')!r}) holds no generator (ema_params['generator'] and "
          "constants['generator_state']); load a run of a generator stage (gan, imitative, "
          'disentangle).')
    abstract = _abstract_variables(config, models.make_generator(config))
    return {'ema_params': {'generator': abstract['params']},
            'constants': {'generator_state': {k: v for k, v in abstract.items()
                                              if k != 'params'}}}

  step, config, restored = checkpoints.read_run(workdir, generator_target, step)
  variables = {'params': restored['ema_params']['generator'],
               **restored['constants']['generator_state']}
  return GeneratorBundle(config=config, generator=models.make_generator(config),
                         variables=variables, face_model=face_model_lib.load(config.data.face_model),
                         step=step)


def attach_control_space(bundle: GeneratorBundle, directory: str) -> GeneratorBundle:
  """bundle sampling κ, β, γ from the control space in `directory`.

  `directory` is what control.save_control_space wrote, or a vae run's WORKDIR holding it in
  control_space/.

  Raises:
    FileNotFoundError: neither holds a control space.
    ValueError: the control space's factor sizes differ from the bundle's face model.
  """
  space = control.find_control_space(directory, bundle.face_model)
  return dataclasses.replace(bundle, control_space=space)


def _is_export(directory: str) -> bool:
  return os.path.isfile(os.path.join(directory, EXPORT_FILE))


def save_export(bundle: GeneratorBundle, out_dir: str) -> list[str]:
  """Writes bundle to out_dir (see the module docstring); returns the entries written.

  Everything is written to out_dir + '.tmp' and renamed into place at the end, so a crash leaves
  the previous contents of out_dir (or nothing) rather than half an export. An existing export is
  replaced.

  Raises:
    FileExistsError: out_dir exists and is neither an empty directory nor an export.
  """
  out_dir = os.path.abspath(out_dir)  # orbax needs absolute paths
  if os.path.exists(out_dir) and not (
      os.path.isdir(out_dir) and (not os.listdir(out_dir) or _is_export(out_dir))):
    raise FileExistsError(f'{out_dir} exists and is not an export (no {EXPORT_FILE}); refusing to '
                          'overwrite it. Choose another output directory or remove it.')
  staging = out_dir + '.tmp'
  shutil.rmtree(staging, ignore_errors=True)
  os.makedirs(staging)
  try:
    written = [GENERATOR_DIR]
    with ocp.StandardCheckpointer() as checkpointer:
      checkpointer.save(os.path.join(staging, GENERATOR_DIR), bundle.variables)
      checkpointer.wait_until_finished()
    face_model_spec = bundle.config.data.face_model
    if face_model_spec != 'embedded':
      face_model_lib.save_npz(bundle.face_model, os.path.join(staging, FACE_MODEL_FILE))
      written.append(FACE_MODEL_FILE)
    if bundle.control_space is not None:
      control.save_control_space(bundle.control_space, os.path.join(staging, CONTROL_SPACE_DIR))
      written.append(CONTROL_SPACE_DIR)
    metadata = {'format': EXPORT_FORMAT, 'stage': bundle.config.get('stage'), 'step': bundle.step,
                'config': json.loads(bundle.config.to_json_best_effort()),
                'face_model': {'spec': face_model_spec,
                               'file': FACE_MODEL_FILE if FACE_MODEL_FILE in written else None},
                'control_space': bundle.control_space is not None}
    with open(os.path.join(staging, EXPORT_FILE), 'w') as f:
      json.dump(metadata, f, indent=2)
    written.append(EXPORT_FILE)
  except BaseException:
    shutil.rmtree(staging, ignore_errors=True)
    raise
  if os.path.exists(out_dir):
    previous = out_dir + '.old'
    shutil.rmtree(previous, ignore_errors=True)
    os.replace(out_dir, previous)
    os.replace(staging, out_dir)
    shutil.rmtree(previous)
  else:
    os.replace(staging, out_dir)
  return sorted(written)


def load_export(out_dir: str) -> GeneratorBundle:
  """The bundle save_export wrote to out_dir (no training state needed).

  A face model shipped in the export replaces config.data.face_model by its path there.

  Raises:
    FileNotFoundError: out_dir holds no export.
    ValueError: an export of another format version.
  """
  out_dir = os.path.abspath(out_dir)
  if not _is_export(out_dir):
    raise FileNotFoundError(f'{out_dir} holds no export ({EXPORT_FILE} is missing); write one with '
                            'python -m faceshop_jax.export --workdir=RUN --out=DIR.')
  with open(os.path.join(out_dir, EXPORT_FILE)) as f:
    metadata = json.load(f)
  if metadata.get('format') != EXPORT_FORMAT:
    raise ValueError(f'{out_dir} holds export format {metadata.get("format")}; this code reads '
                     f'format {EXPORT_FORMAT}.')
  config = ml_collections.ConfigDict(metadata['config'])
  if metadata['face_model']['file']:
    config.data.face_model = os.path.join(out_dir, metadata['face_model']['file'])
  generator = models.make_generator(config)
  with ocp.StandardCheckpointer() as checkpointer:
    variables = checkpointer.restore(os.path.join(out_dir, GENERATOR_DIR),
                                     _abstract_variables(config, generator))
  space = (control.load_control_space(os.path.join(out_dir, CONTROL_SPACE_DIR))
           if metadata['control_space'] else None)
  return GeneratorBundle(config=config, generator=generator, variables=variables,
                         face_model=face_model_lib.load(config.data.face_model),
                         step=metadata['step'], control_space=space)


@functools.partial(jax.jit, static_argnames='noise_dim')
def _sample_seeds(keys: jax.Array, model: face_model_lib.FaceModel,
                  space: control.ControlSpace | None, noise_dim: int):
  """Per key [N, 2]: noise ε [N, noise_dim] and coefficients [N, D] from the control space or the
  prior; each seed's draw is independent of the other seeds."""

  def one_seed(key):
    key_noise, key_controls = jax.random.split(key)
    if space is None:
      coeffs, _ = prior_lib.sample_controls(key_controls, model, 1)
    else:
      coeffs = control.merge_into_coeffs(model, control.sample_controls(space, key_controls, 1))
    return jax.random.normal(key_noise, (noise_dim,)), coeffs[0]

  return jax.vmap(one_seed)(keys)


def expression_vector(model: face_model_lib.FaceModel, expression: dict[str, float]) -> jax.Array:
  """Expression β [n_exp] from named units in [0, 1], e.g. {'jawOpen': 0.8}; others are 0.

  Raises:
    ValueError: an unknown unit (listing the known ones) or a value outside [0, 1].
  """
  vector = model.expression_coefficients(expression)
  for name, value in expression.items():
    if not 0.0 <= value <= 1.0:
      raise ValueError(f'Expression unit {name!r} = {value} is outside [0, 1], the range of the '
                       'face model\'s expression units (0 neutral, 1 full).')
  return vector


def light_gamma(yaw: float, pitch: float, intensity: float) -> jax.Array:
  """SH illumination γ [27] of one white directional light and a LIGHT_AMBIENT ambient term.

  The light stands where a camera at (yaw, pitch) radians would (geometry.camera_position), so
  (0, 0, 1) lights the face frontally; intensity is the light's irradiance at normal incidence
  (the control prior draws 0.2 to 0.9).

  Raises:
    ValueError: a negative intensity.
  """
  if intensity < 0:
    raise ValueError(f'Light intensity {intensity} is negative; use 0 (ambient only) or more.')
  direction = geometry.camera_position(yaw, pitch)
  return face_model_lib.gamma_from_lights(direction[None], jnp.full((1, 3), intensity, jnp.float32),
                                          jnp.full((3,), LIGHT_AMBIENT, jnp.float32))


def _check_seeds(seeds) -> np.ndarray:
  seeds = np.asarray(seeds)
  if seeds.ndim != 1 or not seeds.size or seeds.dtype.kind not in 'iu':
    raise ValueError(f'Seeds must be a non-empty list of integers; got {seeds.tolist()!r}.')
  if seeds.min() < 0 or seeds.max() >= 2**32:
    raise ValueError(f'Seeds must lie in [0, 2^32); got {seeds.tolist()}.')
  return seeds.astype(np.uint32)


def parse_seeds(text: str) -> list[int]:
  """'0-7', '1,5,9', '3' or a mix ('0-3,9') -> the seeds, in order, without repeats."""
  seeds = []
  try:
    for part in text.split(','):
      first, _, last = part.strip().partition('-')
      low, high = int(first), int(last or first)
      if low > high:
        raise ValueError
      seeds += range(low, high + 1)
  except ValueError:
    raise ValueError(f'expected seeds like 0-7, 1,5,9 or 3; got {text!r}') from None
  return list(dict.fromkeys(seeds))


def seed_controls(bundle: GeneratorBundle, seeds, expression: dict[str, float] | None = None,
                  light: tuple[float, float, float] | None = None) -> tuple[jax.Array, jax.Array]:
  """Noise and coefficients of the seeds, with optional overrides.

  For each seed: ε ~ N(0, I) and κ, β, γ from the bundle's control space, or from the face model's
  prior without one. `expression` ({unit: value in [0, 1]}) replaces β entirely; `light`
  (yaw, pitch, intensity; see light_gamma) replaces γ.

  Args:
    bundle: the generator.
    seeds: N non-negative integers.
    expression: named expression units, or None to keep the sampled β.
    light: (yaw, pitch, intensity), or None to keep the sampled γ.

  Returns:
    Noise ε [N, noise_dim] and the face model's coefficients [N, D] (angle and translation zero).
  """
  seeds = _check_seeds(seeds)
  model = bundle.face_model
  keys = jax.vmap(jax.random.PRNGKey)(jnp.asarray(seeds))
  noise, coeffs = _sample_seeds(keys, model, bundle.control_space,
                                noise_dim=bundle.config.model.noise_dim)
  parts = model.split_coeffs(coeffs)
  if expression is not None:
    parts = parts._replace(expression=jnp.broadcast_to(expression_vector(model, expression),
                                                       parts.expression.shape))
  if light is not None:
    parts = parts._replace(gamma=jnp.broadcast_to(light_gamma(*light), parts.gamma.shape))
  return noise, model.merge_coeffs(parts)


def control_vectors(bundle: GeneratorBundle, seeds, expression: dict[str, float] | None = None,
                    light: tuple[float, float, float] | None = None):
  """Control vectors of the seeds, with optional overrides (as seed_controls).

  Returns:
    z [N, control_dim] = models.control_vector of [ε | α | δ | β | γ] and the face model's
    coefficients [N, D] (angle and translation zero).
  """
  noise, coeffs = seed_controls(bundle, seeds, expression, light)
  z = models.control_vector(bundle.config, coeffs, noise)
  chex.assert_shape(z, (coeffs.shape[0], bundle.control_dim))
  return z, coeffs


@functools.partial(jax.jit, static_argnames=('generator', 'truncation_psi'))
def _render(generator: models.TriPlaneGenerator, variables, z, camera, truncation_psi: float,
            z_original=None):
  if z_original is None:
    out = generator.apply(variables, z, camera, camera, truncation_psi=truncation_psi,
                          noise_mode='const')
  else:
    out = generator.apply(variables, z, z_original, camera, camera, truncation_psi=truncation_psi,
                          noise_mode='const', method=generator.edit)
  return out['image'], out['semantics'], out['depth']


def check_view(yaw: float, pitch: float) -> None:
  """Raises a ValueError unless (yaw, pitch) lies in the control prior's camera range."""
  prior = prior_lib.PriorConfig()
  for flag, value, limit in (('yaw', yaw, prior.max_yaw), ('pitch', pitch, prior.max_pitch)):
    if not -limit <= value <= limit:
      raise ValueError(f'--{flag} = {value} is outside [-{limit}, {limit}] radians, the cameras '
                       f'the generator was trained on (face_model.prior.PriorConfig.max_{flag}).')


def generate(bundle: GeneratorBundle, seeds, yaw: float = 0.0, pitch: float = 0.0,
             expression: dict[str, float] | None = None,
             light: tuple[float, float, float] | None = None,
             truncation_psi: float = 1.0, blend: bool = True) -> Portraits:
  """Portraits of the seeds through one camera at (yaw, pitch) radians.

  The EMA generator is run with constant noise and deterministic ray samples, conditioned on and
  rendered through the same camera; seeds, expression and light as in control_vectors.
  `truncation_psi` < 1 pulls w toward the tracked average w (compiled once per value). An
  expression is an edit of each seed's own portrait: with `blend` it is volume-blended into it
  (paper §4.4), so hair, clothes and background stay the seed's.

  Raises:
    ValueError: a view outside the trained range (check_view), or a bad override.
  """
  check_view(yaw, pitch)
  noise, coeffs = seed_controls(bundle, seeds, expression, light)
  originals = None
  if expression is not None and blend:
    originals = seed_controls(bundle, seeds, None, light)[1]
  n = coeffs.shape[0]
  camera = geometry.camera_from_yaw_pitch(jnp.full(n, yaw), jnp.full(n, pitch))
  return render_controls(bundle, coeffs, noise, camera, truncation_psi, blend_from=originals)


def render_controls(bundle: GeneratorBundle, coeffs: jax.Array, noise: jax.Array,
                    camera: jax.Array, truncation_psi: float = 1.0,
                    blend_from: jax.Array | None = None) -> Portraits:
  """Portraits of explicit controls, each conditioned on and rendered through its own camera.

  The EMA generator runs with constant noise and deterministic ray samples on
  z = models.control_vector(config, coeffs, noise); one compilation per batch size and
  truncation_psi (and per blend or not).

  Args:
    bundle: the generator.
    coeffs: [N, D] the face model's coefficients (κ, β, γ are read; angle and translation not).
    noise: [N, noise_dim] ε.
    camera: [N, 25] cameras.
    truncation_psi: < 1 pulls w toward the tracked average w.
    blend_from: [N, D] coefficients of the portraits coeffs edit, or None: the edits are then
      volume-blended into them (TriPlaneGenerator.edit: coeffs' field on the face, theirs off it).
  """
  n = coeffs.shape[0]
  chex.assert_shape(coeffs, (n, bundle.face_model.n_coeffs))
  chex.assert_shape(noise, (n, bundle.config.model.noise_dim))
  chex.assert_shape(camera, (n, geometry.CAMERA_SIZE))
  z = models.control_vector(bundle.config, coeffs, noise)
  z_original = None
  if blend_from is not None:
    chex.assert_equal_shape([blend_from, coeffs])
    z_original = models.control_vector(bundle.config, blend_from, noise)
  image, semantics, depth = jax.device_get(
      _render(bundle.generator, bundle.variables, z, camera, truncation_psi=float(truncation_psi),
              z_original=z_original))
  return Portraits(images=visualize.to_uint8(image, -1, 1),
                   labels=np.argmax(semantics, axis=-1).astype(np.int32),
                   depth=np.asarray(depth, np.float32))


# Control sweeps: one factor swept over columns, everything else of each base seed held fixed.
SWEEP_YAW = 0.6  # the pose sweep's camera yaw runs from -SWEEP_YAW to SWEEP_YAW radians
# The light sweep's light turns from the subject's right (azimuth -π/2) to their left (π/2), in the
# horizontal plane, at a fixed intensity (the control prior draws azimuths within ±0.6π).
SWEEP_LIGHT_AZIMUTH = math.pi / 2
SWEEP_LIGHT_INTENSITY = 0.7
# The expression sweep from neutral: each (title, units) in turn, its units together 0 → 1.
SWEEP_EXPRESSIONS = (('jawOpen', ('jawOpen',)), ('smile', ('mouthSmileLeft', 'mouthSmileRight')))
# 3DMM renders R are drawn over this grey (on [0, 1]) so the face's silhouette shows.
GUIDANCE_BACKGROUND = 0.5


class Sweep(NamedTuple):
  """S base seeds × C columns of controls in which one factor changes from column to column.

  Attributes:
    name: the factor swept: 'pose', 'light', 'expression' or 'identity'.
    titles: C column titles, e.g. 'yaw -0.60'.
    noise: ε [S, C, noise_dim].
    coeffs: [S, C, D] the face model's coefficients.
    cameras: [S, C, 25] cameras (conditioning and rendering).
  """
  name: str
  titles: tuple[str, ...]
  noise: jax.Array
  coeffs: jax.Array
  cameras: jax.Array


class SweepRenders(NamedTuple):
  """A sweep rendered by the generator and by the face model, uint8 [S, C, R, R, 3] each.

  Attributes:
    generated: the generator's super-resolved images.
    guidance: the 3DMM renders R of the same controls and cameras over GUIDANCE_BACKGROUND.
  """
  generated: np.ndarray
  guidance: np.ndarray


def _sweep(name: str, titles, noise: jax.Array, coeffs: jax.Array, yaw=0.0) -> Sweep:
  """A Sweep of coeffs [S, C, D] with the base noise [S, noise_dim] in every column and cameras
  at yaw (radians; a scalar or [C]) and pitch 0."""
  s, c = coeffs.shape[:2]
  chex.assert_shape(noise, (s, None))
  chex.assert_equal(len(titles), c)
  cameras = geometry.camera_from_yaw_pitch(jnp.broadcast_to(yaw, (c,)), jnp.zeros(c))
  return Sweep(name=name, titles=tuple(titles),
               noise=jnp.broadcast_to(noise[:, None], (s, c, noise.shape[-1])), coeffs=coeffs,
               cameras=jnp.broadcast_to(cameras, (s, c, geometry.CAMERA_SIZE)))


def _columns(model: face_model_lib.FaceModel, coeffs: jax.Array, **parts: jax.Array) -> jax.Array:
  """coeffs [S, D] repeated over columns [S, C, D], the named factors set to parts [C, size]."""
  base = model.split_coeffs(coeffs[:, None])
  return model.merge_coeffs(base._replace(**{name: part[None] for name, part in parts.items()}))


def pose_sweep(noise: jax.Array, coeffs: jax.Array, columns: int = 7) -> Sweep:
  """Camera yaw from -SWEEP_YAW to SWEEP_YAW (pitch 0) of noise [S, noise_dim], coeffs [S, D]."""
  yaw = np.linspace(-SWEEP_YAW, SWEEP_YAW, columns)
  repeated = jnp.broadcast_to(coeffs[:, None], (coeffs.shape[0], columns, coeffs.shape[-1]))
  return _sweep('pose', [f'yaw {y:+.2f}' for y in yaw], noise, repeated, yaw=yaw)


def light_sweep(model: face_model_lib.FaceModel, noise: jax.Array, coeffs: jax.Array,
                columns: int = 7) -> Sweep:
  """γ of one directional light (light_gamma) whose azimuth runs from the subject's right to their
  left, frontal camera; noise [S, noise_dim], coeffs [S, D]."""
  azimuth = np.linspace(-SWEEP_LIGHT_AZIMUTH, SWEEP_LIGHT_AZIMUTH, columns)
  gamma = jnp.stack([light_gamma(a, 0.0, SWEEP_LIGHT_INTENSITY) for a in azimuth])
  return _sweep('light', [f'light azimuth {a:+.2f}' for a in azimuth], noise,
                _columns(model, coeffs, gamma=gamma))


def expression_sweep(model: face_model_lib.FaceModel, noise: jax.Array, coeffs: jax.Array,
                     columns: int = 7) -> Sweep:
  """β from neutral through SWEEP_EXPRESSIONS: jawOpen 0 → 1 over columns // 2 columns, then the
  smile 0 → 1 over the rest; frontal camera; noise [S, noise_dim], coeffs [S, D].

  Raises:
    ValueError: fewer than 3 columns, or a face model without the units (listing its own).
  """
  if columns < 3:
    raise ValueError(f'The expression sweep needs at least 3 columns (neutral, jaw, smile); got '
                     f'{columns}.')
  steps = (columns // 2, columns - 1 - columns // 2)
  settings = [('neutral', {})]
  for (title, units), count in zip(SWEEP_EXPRESSIONS, steps):
    settings += [(f'{title} {v:.2f}', dict.fromkeys(units, float(v)))
                 for v in np.linspace(0.0, 1.0, count + 1)[1:]]
  expression = jnp.stack([expression_vector(model, units) for _, units in settings])
  return _sweep('expression', [title for title, _ in settings], noise,
                _columns(model, coeffs, expression=expression))


def identity_sweep(model: face_model_lib.FaceModel, noise: jax.Array, coeffs: jax.Array,
                   identities: jax.Array, titles) -> Sweep:
  """κ = (α, δ) of identities [C, D] with each base seed's ε, β, γ and a frontal camera; noise
  [S, noise_dim], coeffs [S, D]; titles: C column titles."""
  return _sweep('identity', titles, noise,
                prior_lib.with_identity(model, coeffs[:, None], identities[None]))


def control_sweeps(bundle: GeneratorBundle, seeds, identity_seeds,
                   columns: int = 7) -> tuple[Sweep, ...]:
  """The pose, light, expression and identity sweeps of the base seeds (seed_controls).

  The identity sweep's columns are the identities κ of identity_seeds (the same for every base
  seed); the others have `columns` columns.
  """
  noise, coeffs = seed_controls(bundle, seeds)
  _, identities = seed_controls(bundle, identity_seeds)
  model = bundle.face_model
  return (pose_sweep(noise, coeffs, columns), light_sweep(model, noise, coeffs, columns),
          expression_sweep(model, noise, coeffs, columns),
          identity_sweep(model, noise, coeffs, identities,
                         [f'identity of seed {s}' for s in identity_seeds]))


_render_face = jax.jit(face_model_lib.render_face, static_argnums=3)


def render_guidance(model: face_model_lib.FaceModel, coeffs: jax.Array, camera: jax.Array,
                    size: int) -> np.ndarray:
  """uint8 [N, size, size, 3]: the 3DMM renders R (face_model.render_face) of coeffs [N, D]
  through cameras [N, 25], over GUIDANCE_BACKGROUND."""
  chex.assert_shape(camera, (coeffs.shape[0], geometry.CAMERA_SIZE))
  render = jax.device_get(_render_face(model, coeffs, camera, size))
  mask = render.mask[..., None]
  return visualize.to_uint8(render.image * mask + GUIDANCE_BACKGROUND * (1.0 - mask))


def render_sweep(bundle: GeneratorBundle, sweep: Sweep, blend: bool = True) -> SweepRenders:
  """The sweep through the generator (render_controls) and the face model (render_guidance), both
  at the generator's output size. With `blend`, the expression sweep's columns are edits of its
  first (neutral) column, volume-blended into it (paper §4.4)."""
  s, c = sweep.coeffs.shape[:2]

  def flat(x):
    return x.reshape(s * c, x.shape[-1])

  coeffs, noise, cameras = flat(sweep.coeffs), flat(sweep.noise), flat(sweep.cameras)
  originals = None
  if blend and sweep.name == 'expression':
    originals = flat(jnp.broadcast_to(sweep.coeffs[:, :1], sweep.coeffs.shape))
  generated = render_controls(bundle, coeffs, noise, cameras, blend_from=originals).images
  size = generated.shape[1]
  guidance = render_guidance(bundle.face_model, coeffs, cameras, size)
  return SweepRenders(generated=generated.reshape(s, c, size, size, 3),
                      guidance=guidance.reshape(s, c, size, size, 3))
