"""The `disentangle` stage (paper §4.3.2): pairs that differ in one control agree in the rest.

  python -m faceshop_jax.main --config=configs/disentangle.py:cpu --workdir=/tmp/disentangle \
      --config.init_from=/tmp/imitative

It starts from an imitative run (config.init_from) and keeps that stage's step: the adversarial
loss, R1, the density regulariser and every imitation term on the base batch I. Each base sample
also gets three partners with the same ε, camera, per-layer noise and ray samples that differ in
exactly one factor, redrawn from the control prior (or control space):
  I^κ  identity      L^κ_dis (Eq. 18): the non-face regions agree
  I^γ  illumination  L^γ_dis (Eq. 19): identity and landmarks agree
  I^β  expression    L^β_dis (Eq. 22): identity agrees (λ^β_id), I^β matches I warped along the
                     3DMM's flow R → R^β, zeroed off I^β's face (λ_flow, Eq. 20), and the lips keep
                     their style (λ_lip, Eq. 21)
so Eq. 23's L_dis = L^κ_dis + L^γ_dis + L^β_dis, each part weighted by config.disentangle.weights
(0 leaves a part out: the ablations). Every pair pulls the partner towards the base: the base's
image, readings and semantic masks are held fixed (stop-gradient), so no term can be lowered by
relabelling pixels as face. At the end: control accuracy (as the imitative stage) and the
disentanglement scores (eval/disentanglement.py), both read by the independent judge.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np

from faceshop_jax import classes
from faceshop_jax import face_model
from faceshop_jax import models
from faceshop_jax import raster
from faceshop_jax import visualize
from faceshop_jax.analysis import lpips
from faceshop_jax.analysis import vgg
from faceshop_jax.eval import disentanglement as disentanglement_lib
from faceshop_jax.face_model import prior as prior_lib
from faceshop_jax.losses import disentangle as losses
from faceshop_jax.losses import imitative as imitative_losses
from faceshop_jax.train import stage as stage_lib
from faceshop_jax.train.stages import gan
from faceshop_jax.train.stages import imitative

PARTNERS = ('identity', 'illumination', 'expression')  # κ, γ, β
TERMS = ('identity', 'illumination', 'expression_identity', 'expression_flow', 'expression_lip')


def check_config(config) -> None:
  imitative.check_config(config)
  if not config.init_from:
    raise ValueError('The disentangle stage refines a trained generator: set '
                     '--config.init_from=WORKDIR of an imitative run (e.g. one of '
                     'configs/imitative.py:cpu).')
  unknown = set(config.disentangle.weights) - set(TERMS)
  if unknown:
    raise ValueError(f'config.disentangle.weights has unknown terms {sorted(unknown)}; the terms '
                     f'are {list(TERMS)}.')


def init_constants(config) -> dict:
  stages = losses.LIP_STYLE_VGG.stages
  return {**imitative.init_constants(config),
          'lip_vgg': vgg.first_stages(lpips.load_vgg16(), stages)}


def partner_controls(config, controls: models.Controls, key) -> dict[str, models.Controls]:
  """Per PARTNERS factor, controls with that factor redrawn and everything else (ε too) kept."""
  model = face_model.load(config.data.face_model)
  donors = models.sample_coefficients(config, key, controls.coeffs.shape[0])
  partners = {}
  for factor in PARTNERS:
    coeffs = prior_lib.with_factor(model, controls.coeffs, donors, factor)
    partners[factor] = models.Controls(coeffs, controls.noise,
                                    models.control_vector(config, coeffs, controls.noise))
  return partners


def disentangle_terms(config, state, out, controls, camera, key, render):
  """The imitative stage's terms on the base batch plus the weighted L_dis of its partners
  (gan.train_step's generator_terms; `render(z)` generates the partners like the base). The base's
  identity embeddings, landmarks and 3DMM render are those its imitation terms took, held fixed."""
  values, base = imitative.imitation_values(config, state, out, controls, camera)
  total, metrics = imitative.weighted_imitation(config, state, values)
  model = face_model.load(config.data.face_model)
  partners = partner_controls(config, controls, jax.random.split(key)[1])
  edits = {factor: render(partners[factor].z) for factor in PARTNERS}
  fixed = jax.lax.stop_gradient
  image, size = fixed(out['image']), out['image'].shape[1:3]

  def mask(semantics, class_ids=None):
    if class_ids is None:
      return fixed(losses.nonface_probability(semantics, size))
    return fixed(losses.class_probability(semantics, class_ids, size))

  # One pass of each analysis net over the partners it reads.
  embedding_light, embedding_expression = jnp.split(imitative.identity_embeddings(
      config, state, jnp.concatenate([edits['illumination']['image'],
                                      edits['expression']['image']])), 2)
  landmarks_light = imitative.reconstruct(config, state, edits['illumination']['image']).landmarks
  embedding, landmarks_base = fixed(base['embedding']), fixed(base['landmarks'])

  expression = edits['expression']
  render_base = base['render']
  render_edit = face_model.render_face(model, partners['expression'].coeffs, camera, size)
  flow = losses.expression_flow(render_edit, render_base, model.triangles,
                                mask(expression['semantics'], classes.FACE))
  lips = classes.LIPS
  values = {
      'identity': losses.nonface_consistency_loss(
          edits['identity']['image'], image, mask(edits['identity']['semantics']),
          mask(out['semantics'])),
      'illumination': losses.illumination_consistency_loss(
          embedding_light, embedding, landmarks_light, landmarks_base, size[0]),
      'expression_identity': imitative_losses.identity_loss(embedding_expression, embedding),
      'expression_flow': losses.flow_texture_loss(expression['image'], raster.warp(image, flow)),
      'expression_lip': losses.lip_style_loss(
          losses.LIP_STYLE_VGG, state.constants['lip_vgg'], expression['image'],
          mask(expression['semantics'], lips), image, mask(out['semantics'], lips)),
  }
  weights = config.disentangle.weights
  total += sum(weights.get(name, 0.0) * values[name] for name in TERMS)
  return total, {**metrics, **{f'disentangle/{name}': value for name, value in values.items()}}


def train_step(config, state, batch, key, variant: gan.Regularizers | None = None):
  return gan.train_step(config, state, batch, key, variant,
                        generator_terms=functools.partial(disentangle_terms, config, state))


def summaries(config, state, batch) -> dict:
  """The imitative stage's grid, and the EMA generator's fixed samples beside their partners:
  base | identity | illumination | expression | expression volume-blended into the base."""
  variables = gan.ema_generator_variables(state)
  camera = state.constants['samples_camera']
  # The summary grid's samples (gan.init_state) and their partners.
  controls = models.sample_controls(config, jax.random.PRNGKey(gan.SAMPLES_SEED), camera.shape[0])
  partners = partner_controls(config, controls, jax.random.PRNGKey(2))
  sample = models.sampler(config)
  rows = [sample(variables, controls.z, camera)['image']]
  rows += [sample(variables, partners[factor].z, camera)['image'] for factor in PARTNERS]
  rows.append(models.blended_sampler(config)(variables, partners['expression'].z, controls.z,
                                             camera)['image'])
  grid = visualize.image_grid(visualize.to_uint8(np.stack(jax.device_get(rows)), -1, 1))
  images = imitative.summaries(config, state, batch)['images']
  return {'images': {**images, 'base_identity_light_expression_blended': grid}}


def finish(config, workdir: str, state) -> None:
  """Control accuracy (imitative.finish -> WORKDIR/eval.json) and the disentanglement scores
  (-> WORKDIR/disentanglement.json) of the EMA generator, read by the judge (primary host only;
  config.disentangle.evaluation.bases = 0 skips the second)."""
  imitative.finish(config, workdir, state)
  evaluation = config.disentangle.evaluation
  if jax.process_index() != 0 or not evaluation.bases:
    return
  judge = config.imitative.evaluation.judge
  report = disentanglement_lib.generator_report(
      config, jax.device_get(gan.ema_generator_variables(state)), judge, evaluation.bases,
      evaluation.variations, evaluation.seed)
  imitative.write_report(workdir, 'disentanglement.json', 'Disentanglement', int(state.step), judge,
                         report, disentanglement_lib.format_report)


# What the console's last line tells a person to run next.
NEXT_STEPS = ('python -m faceshop_jax.evaluate --workdir={workdir} --disentanglement; python -m '
              'faceshop_jax.generate --workdir={workdir} --seeds=0-3 --expression=jawOpen=0.8 '
              '--out={workdir}/portraits')


STAGE = stage_lib.Stage(name='disentangle', check_config=check_config, make_data=gan.make_data,
                        init_constants=init_constants, init_state=gan.init_state,
                        train_step=train_step, summaries=summaries, finish=finish,
                        step_variant=gan.step_variant, next_steps=NEXT_STEPS)
