"""The `imitative` stage (paper §4.3.1): the 3D-aware GAN learns to imitate the 3DMM.

  python -m faceshop_jax.main --config=configs/imitative.py:cpu --workdir=/tmp/imitative

Each step is the gan stage's (adversarial loss, lazy R1 and density regulariser, blur fade,
pose-conditioning swap, EMA) plus, on the generator, the imitation terms of losses/imitative.py:
the controls (κ, β, γ) that condition the generator also drive the 3DMM, rendered by our
rasterizer through the same camera into R, its mask B and landmarks; the analysis nets
(reconstructor, parser, identity; trained by the `analysis` stage or converted from PyTorch, saved
under config.imitative.analysis_dir) read the generated image I. CoPo's schedule: adversarial only
until `imitative_start`, then L_tex + L_id + L_lmk + L_ill, then also L_ce from `semantic_start`.
The weights switch inside one compiled step (no recompilation at phase changes).
The analysis nets' variables ride, frozen, in state.constants['analysis']. At the end the EMA
generator's control accuracy is read by config.imitative.evaluation.judge, a reconstructor that no
loss uses (eval/control_accuracy.generator_report) -> WORKDIR/eval.json.
"""
import dataclasses
import functools
import json
import os

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from faceshop_jax import classes
from faceshop_jax import face_model
from faceshop_jax import models
from faceshop_jax import visualize
from faceshop_jax.analysis import bisenet
from faceshop_jax.analysis import iresnet
from faceshop_jax.analysis import reconstructor as reconstructor_lib
from faceshop_jax.analysis import weights
from faceshop_jax.eval import control_accuracy as control_accuracy_lib
from faceshop_jax.losses import imitative as imitative_losses
from faceshop_jax.train import stage as stage_lib
from faceshop_jax.train.stages import gan

TERMS = ('texture', 'identity', 'landmarks', 'illumination', 'semantic')


@functools.lru_cache(maxsize=4)
def analysis_nets(directory: str) -> dict[str, weights.AnalysisNet]:
  """The role nets saved under `directory` (see weights.load_role_net)."""
  return {role: weights.load_role_net(directory, role) for role in weights.ROLE_KINDS}


def check_config(config) -> None:
  gan.check_config(config)
  try:
    analysis_nets(config.imitative.analysis_dir)
  except (FileNotFoundError, ValueError) as e:
    raise ValueError(
        f'config.imitative.analysis_dir = {config.imitative.analysis_dir!r} holds no analysis nets '
        f'({e}). Train them with `python -m faceshop_jax.main --config=configs/analysis.py:cpu '
        '--workdir=DIR` and pass DIR/analysis, or convert PyTorch checkpoints with '
        '`python -m faceshop_jax.analysis.convert` into DIR/{reconstructor,parser,identity}.') from e
  evaluation = config.imitative.evaluation
  if evaluation.identities:
    if evaluation.judge == config.imitative.analysis_dir:
      raise ValueError(f'config.imitative.evaluation.judge = {evaluation.judge!r} is also the '
                       'analysis_dir whose nets give the losses their gradients: a net a loss uses '
                       "cannot judge the result. Use another (e.g. 'judge64').")
    try:
      weights.load_role_net(evaluation.judge, 'reconstructor')
    except (FileNotFoundError, ValueError) as e:
      raise ValueError(
          f'config.imitative.evaluation.judge = {evaluation.judge!r} holds no reconstructor ({e}). '
          'Train one with `python -m faceshop_jax.main --config=configs/analysis.py:judge '
          '--workdir=DIR` and pass DIR/analysis, or set evaluation.identities=0.') from e


def init_constants(config) -> dict:
  nets = analysis_nets(config.imitative.analysis_dir)
  return {'analysis': {role: net.variables for role, net in nets.items()}}


def identity_embeddings(config, state, images: jax.Array) -> jax.Array:
  """Unit identity embeddings [B, F] of images [B, H, W, 3] by the stage's identity net."""
  net = analysis_nets(config.imitative.analysis_dir)['identity']
  return iresnet.embed(net.module, state.constants['analysis']['identity'], images)


def reconstruct(config, state, images: jax.Array) -> reconstructor_lib.Reconstruction:
  """The stage's reconstructor's reading (coefficients, camera, landmarks) of images."""
  net = dataclasses.replace(analysis_nets(config.imitative.analysis_dir)['reconstructor'],
                            variables=state.constants['analysis']['reconstructor'])
  return reconstructor_lib.reconstruct_faces(net, face_model.load(config.data.face_model), images)


def imitation_values(config, state, out, controls, camera):
  """The unweighted imitation losses of generated outputs `out` (TriPlaneGenerator's dict) of
  controls (models.Controls), and the readings of out['image'] they took, for other terms to reuse:
  {'render': the 3DMM render of the controls (face_model.render_face), 'embedding': the identity
  embeddings [B, D], 'landmarks': the reconstructed landmarks [B, L, 2]} (with their gradients)."""
  coeffs = controls.coeffs
  model = face_model.load(config.data.face_model)
  image = out['image']
  size = image.shape[1]
  render = face_model.render_face(model, coeffs, camera, size)
  rendered = render.image * 2.0 - 1.0
  target = imitative_losses.guidance_target(rendered, render.face_mask, image)
  generated_embedding, target_embedding = jnp.split(
      identity_embeddings(config, state, jnp.concatenate([image, target])), 2)
  reconstruction = reconstruct(config, state, image)
  parser_net = analysis_nets(config.imitative.analysis_dir)['parser']
  parsed = jax.nn.softmax(bisenet.parse(parser_net.module, state.constants['analysis']['parser'],
                                        jax.lax.stop_gradient(image)), axis=-1)
  values = {
      'texture': imitative_losses.texture_loss(image, target, render.face_mask),
      'identity': imitative_losses.identity_loss(generated_embedding,
                                                 jax.lax.stop_gradient(target_embedding)),
      'landmarks': imitative_losses.landmark_loss(reconstruction.landmarks, render.landmarks, size),
      'illumination': imitative_losses.illumination_loss(model.split_coeffs(reconstruction.coeffs).gamma,
                                                         model.split_coeffs(coeffs).gamma),
      'semantic': imitative_losses.semantic_loss(out['semantics'], parsed),
  }
  readings = {'render': render, 'embedding': generated_embedding,
              'landmarks': reconstruction.landmarks}
  return values, readings


def weighted_imitation(config, state, values):
  """(Σ weight · phase · value over TERMS, {'imitation/<term>': value}) of imitation_values."""
  schedule = config.imitative
  on = imitative_losses.phase_weight(state.step, schedule.imitative_start)
  semantic_on = imitative_losses.phase_weight(state.step, schedule.semantic_start)
  total = sum(schedule.weights[name] * values[name] * (semantic_on if name == 'semantic' else on)
              for name in TERMS)
  return total, {f'imitation/{name}': value for name, value in values.items()}


def imitation_terms(config, state, out, controls, camera, key, render_fn=None):
  """Weighted imitation losses of generated outputs `out` of controls and their metrics
  (gan.train_step's generator_terms; key and render_fn are unused)."""
  del key, render_fn
  return weighted_imitation(config, state, imitation_values(config, state, out, controls,
                                                            camera)[0])


def train_step(config, state, batch, key, variant: gan.Regularizers | None = None):
  return gan.train_step(config, state, batch, key, variant,
                        generator_terms=functools.partial(imitation_terms, config, state))


def write_report(workdir: str, filename: str, title: str, step: int, judge: str, report: dict,
                 format_report) -> None:
  """A stage's evaluation report -> WORKDIR/filename (with its step and judge), and to the log."""
  with open(os.path.join(workdir, filename), 'w') as f:
    json.dump({'step': step, 'judge': judge, **report}, f, indent=2, sort_keys=True)
  logging.info('%s at step %d (judge %s):\n%s', title, step, judge, format_report(report))


def finish(config, workdir: str, state) -> None:
  """Control accuracy of the EMA generator -> WORKDIR/eval.json (primary host only; skipped when
  config.imitative.evaluation.identities is 0)."""
  if jax.process_index() != 0 or not config.imitative.evaluation.identities:
    return
  evaluation = config.imitative.evaluation
  report = control_accuracy_lib.generator_report(
      config, jax.device_get(gan.ema_generator_variables(state)), evaluation.judge,
      evaluation.identities, evaluation.variations, evaluation.seed)
  write_report(workdir, 'eval.json', 'Control accuracy', int(state.step), evaluation.judge, report,
               control_accuracy_lib.format_report)


def summaries(config, state, batch) -> dict:
  """The EMA generator on fixed controls: generated | 3DMM guidance R | R' | rendered semantics."""
  del batch
  model = face_model.load(config.data.face_model)
  variables = gan.ema_generator_variables(state)
  z, camera = state.constants['samples_z'], state.constants['samples_camera']
  out = jax.device_get(models.sampler(config)(variables, z, camera))
  coeffs = state.constants['samples_coeffs']
  size = out['image'].shape[1]
  render = jax.device_get(face_model.render_face(model, coeffs, camera, size))
  rendered = render.image * 2.0 - 1.0
  target = imitative_losses.guidance_target(rendered, render.face_mask, out['image'])
  semantics = np.argmax(out['semantics'], axis=-1)
  scale = size // semantics.shape[1]
  rows = [visualize.to_uint8(out['image'], -1, 1), visualize.to_uint8(rendered, -1, 1),
          visualize.to_uint8(target, -1, 1),
          classes.colorize(semantics.repeat(scale, 1).repeat(scale, 2))]
  return {'images': {'generated_guidance_blend_semantics': visualize.image_grid(np.stack(rows))}}


# What the console's last line tells a person to run next.
NEXT_STEPS = ('python -m faceshop_jax.sweep --workdir={workdir} --out={workdir}/sweeps; stage 2: '
              'python -m faceshop_jax.main --config=configs/disentangle.py:cpu --workdir=RUN '
              '--config.init_from={workdir}')


STAGE = stage_lib.Stage(name='imitative', check_config=check_config, make_data=gan.make_data,
                        init_constants=init_constants, init_state=gan.init_state,
                        train_step=train_step, summaries=summaries, finish=finish,
                        step_variant=gan.step_variant, next_steps=NEXT_STEPS)
