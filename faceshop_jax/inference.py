"""A trained generator for inference: load it from a run, export it, load the export.

  bundle = inference.load_from_workdir('/tmp/gan')     # the newest checkpoint of a training run
  inference.save_export(bundle, '/tmp/gan_export')    # EMA generator + config, no training state
  bundle = inference.load_export('/tmp/gan_export')
  bundle = inference.attach_control_space(bundle, '/tmp/vae')   # sample κ, β, γ from a vae run

What to do with a bundle (edit, render, mesh, video) is faceshop_jax.edit's. Any stage whose train
state keeps the EMA generator at ema_params['generator'] and the generator's other collections
(w_avg, constant noise) at constants['generator_state'], and whose config describes the generator
by config.model and config.data.face_model (gan, imitative, disentangle), can be loaded. An export
directory (faceshop_jax.saved) holds

  export.json        format version, the run's stage, step and config, the face-model file
  generator/         orbax: {'params': EMA params, 'stats', 'noise_const'}
  face_model.npz     the face model (face_model.save_npz), unless the run used the embedded one
  control_space/     the control space config.model.control_space names, if it names one
  portrait.npz       a personal portrait's arrays (an inversion's; edit.Portrait), if any
"""
import dataclasses
import json
import os
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from faceshop_jax import control
from faceshop_jax import face_model as face_model_lib
from faceshop_jax import geometry
from faceshop_jax import models
from faceshop_jax import saved
from faceshop_jax.train import checkpoints

EXPORT_FORMAT = 1
EXPORT_FILE = 'export.json'
GENERATOR_DIR = 'generator'
FACE_MODEL_FILE = 'face_model.npz'
CONTROL_SPACE_DIR = 'control_space'
PORTRAIT_FILE = 'portrait.npz'


@dataclasses.dataclass(frozen=True, eq=False)
class GeneratorBundle:
  """Everything generation needs, and nothing of training.

  Attributes:
    config: the run's config (rebuilt from its saved JSON); config.model and
      config.data.face_model describe the generator, config.model.control_space where its κ, β, γ
      are sampled from ('' for the face model's prior; models.seed_controls).
    generator: the generator module.
    variables: {'params': EMA parameters, 'stats': {w_avg}, 'noise_const': ...}.
    face_model: the face model whose coefficients κ, β, γ the control vectors hold.
    step: the training step the EMA parameters come from.
    portrait: the arrays of a personal portrait (an inversion's, the generator tuned to it;
      faceshop_jax.inversion.portrait_record), or None.
  """
  config: ml_collections.ConfigDict
  generator: models.TriPlaneGenerator
  variables: dict[str, Any]
  face_model: face_model_lib.FaceModel
  step: int
  portrait: dict[str, np.ndarray] | None = None

  @property
  def control_dim(self) -> int:
    return self.generator.z_dim


def _abstract_variables(config, generator: models.TriPlaneGenerator) -> dict[str, Any]:
  """The generator's variables as ShapeDtypeStructs: params plus its other collections."""
  camera = geometry.camera_from_yaw_pitch(jnp.zeros(1), jnp.zeros(1))
  rngs = {name: jax.random.PRNGKey(0) for name in ('params',) + models.RNG_STREAMS}
  z = jnp.zeros((1, models.control_dim(config)))
  return saved.abstract(jax.eval_shape(lambda: generator.init(rngs, z, camera, camera)))


def _bundle(config, variables, step: int, portrait=None) -> GeneratorBundle:
  models.check_control_space(config)
  return GeneratorBundle(config=config, generator=models.make_generator(config),
                         variables=variables, face_model=face_model_lib.load(config.data.face_model),
                         step=step, portrait=portrait)


def load_from_workdir(workdir: str, step: int | None = None) -> GeneratorBundle:
  """The EMA generator of the checkpoint at `step` (default: the newest) in WORKDIR/checkpoints.

  Only the generator's part of the train state is read (orbax partial restore), so neither the
  stage's constants nor its data iterator are rebuilt.

  Raises:
    FileNotFoundError: no such directory, or no checkpoint in it.
    ValueError: the checkpoint holds no generator (e.g. a vae run), or one whose shapes do not
      match its config, or its config names a control space that cannot be read.
  """
  workdir = os.path.abspath(workdir)
  if not os.path.isdir(workdir):
    raise FileNotFoundError(f'No training run at {workdir}: the directory does not exist.')

  def generator_target(config, saved_state):
    if 'generator' not in saved_state.get('ema_params', {}) or 'generator_state' not in (
        saved_state.get('constants', {})):
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
  return _bundle(config, variables, step)


def attach_control_space(bundle: GeneratorBundle, directory: str) -> GeneratorBundle:
  """bundle sampling κ, β, γ from the control space in `directory` (a saved control space, or a
  vae run's WORKDIR holding one in control_space/).

  Raises:
    FileNotFoundError: neither holds a control space.
    ValueError: the control space's factor sizes differ from the bundle's face model.
  """
  control.find_control_space(directory, bundle.face_model)
  config = bundle.config.copy_and_resolve_references()
  config.model.control_space = os.path.abspath(directory)
  return dataclasses.replace(bundle, config=config)


def is_export(directory: str) -> bool:
  return saved.is_saved(directory, EXPORT_FILE)


def save_export(bundle: GeneratorBundle, out_dir: str) -> list[str]:
  """Writes bundle to out_dir (see the module docstring), atomically; returns the entries written.

  The face model (unless embedded), the control space the config names and the bundle's personal
  portrait are copied in, so the export needs nothing outside it. An existing export is replaced.

  Raises:
    FileExistsError: out_dir exists and is neither an empty directory nor an export.
  """
  config = bundle.config
  written = [GENERATOR_DIR, EXPORT_FILE]
  face_model_file = None if config.data.face_model == 'embedded' else FACE_MODEL_FILE
  space_dir = config.model.get('control_space') or None

  def write_assets(staging):
    if bundle.portrait is not None:
      np.savez(os.path.join(staging, PORTRAIT_FILE), **bundle.portrait)
    if face_model_file:
      face_model_lib.save_npz(bundle.face_model, os.path.join(staging, face_model_file))
    if space_dir:
      control.save_control_space(control.find_control_space(space_dir, bundle.face_model),
                                 os.path.join(staging, CONTROL_SPACE_DIR))

  saved.write(out_dir, EXPORT_FILE,
              {'stage': config.get('stage'), 'step': bundle.step,
               'config': json.loads(config.to_json_best_effort()), 'face_model_file': face_model_file,
               'control_space': bool(space_dir), 'portrait': bundle.portrait is not None},
              EXPORT_FORMAT, {GENERATOR_DIR: bundle.variables}, extra=write_assets)
  return sorted(written + [f for f, used in ((FACE_MODEL_FILE, face_model_file),
                                               (CONTROL_SPACE_DIR, space_dir),
                                               (PORTRAIT_FILE, bundle.portrait is not None))
                            if used])


def load_export(out_dir: str) -> GeneratorBundle:
  """The bundle save_export wrote to out_dir (no training state needed).

  A face model or control space shipped in the export replaces the config's paths by theirs there.

  Raises:
    FileNotFoundError: out_dir holds no export.
    ValueError: an export of another format version.
  """
  out_dir = os.path.abspath(out_dir)
  manifest = saved.read_manifest(out_dir, EXPORT_FILE, EXPORT_FORMAT, 'export',
                                 'write one with python -m faceshop_jax.export --workdir=RUN '
                                 '--out=DIR')
  config = ml_collections.ConfigDict(manifest['config'])
  if manifest['face_model_file']:
    config.data.face_model = os.path.join(out_dir, manifest['face_model_file'])
  config.model.control_space = (os.path.join(out_dir, CONTROL_SPACE_DIR)
                                if manifest['control_space'] else '')
  variables = saved.restore(out_dir, GENERATOR_DIR,
                            _abstract_variables(config, models.make_generator(config)))
  portrait = None
  if manifest.get('portrait'):
    with np.load(os.path.join(out_dir, PORTRAIT_FILE)) as arrays:
      portrait = dict(arrays)
  return _bundle(config, variables, manifest['step'], portrait)
