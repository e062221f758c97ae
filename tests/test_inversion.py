"""Inversion and pivotal tuning on the session's tiny generator, the personalised export, and the
invert command. The targets are the generator's own renders, so the truth is known."""
import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
import pytest
import skimage.data

from faceshop_jax import edit
from faceshop_jax import inference
from faceshop_jax import inversion
from faceshop_jax.analysis import weights
from tests.cli import run_module

# The command's defaults but for the step counts, so the command test reuses the compilations.
CONFIG = inversion.InversionConfig(latent_steps=40, tuning_steps=25, locality_portraits=2)


@pytest.fixture(scope='module')
def bundle(gan_workdir):
  return inference.load_from_workdir(gan_workdir)


@pytest.fixture(scope='module')
def judges():
  return inversion.load_judges()


@pytest.fixture(scope='module')
def truth(bundle):
  """Seed 3 at yaw 0.2: its portrait and render."""
  portrait = edit.from_seeds(bundle, [3], yaw=0.2)
  return portrait, edit.render(bundle, portrait).image[0]


@pytest.fixture(scope='module')
def inverted(bundle, judges, truth):
  """The latent inversion of seed 3's render from its own controls plus N(0, I) per-layer noise."""
  portrait, target = truth
  layers = bundle.generator.apply(bundle.variables, method=lambda g: g.synthesis.num_ws)
  noisy = portrait.replace(z_offset=jax.random.normal(jax.random.PRNGKey(1),
                                                       (1, layers, bundle.control_dim)))
  result, history = inversion.invert_latent(bundle, noisy, target, judges, CONFIG)
  return noisy, result, history


def test_zero_offsets_are_the_plain_portrait(bundle, truth):
  portrait, _ = truth
  layers = bundle.generator.apply(bundle.variables, method=lambda g: g.synthesis.num_ws)
  zero = portrait.replace(z_offset=jnp.zeros((1, layers, bundle.control_dim)))
  np.testing.assert_allclose(edit.mapped_ws(bundle, zero), edit.mapped_ws(bundle, portrait),
                             atol=1e-5)


def test_inverting_a_generated_image_recovers_it(bundle, judges, truth, inverted):
  _, target = truth
  noisy, result, history = inverted
  before = inversion.scores(edit.render(bundle, noisy).image, target[None], judges)
  after = inversion.scores(edit.render(bundle, result).image, target[None], judges)
  assert history[-1]['loss'] < 0.5 * history[0]['loss']
  assert after.psnr[0] > 24.0 and after.psnr[0] > before.psnr[0] + 5.0, (before, after)
  assert after.lpips[0] < before.lpips[0]
  # Only the offsets moved: the controls are the ones it started from; the noise was undone.
  np.testing.assert_array_equal(result.coeffs, noisy.coeffs)
  np.testing.assert_array_equal(result.noise, noisy.noise)


def test_pivotal_tuning_lowers_the_loss_on_its_image(bundle, judges, truth, inverted):
  _, target = truth
  _, result, _ = inverted
  tuned, history = inversion.pivotal_tuning(bundle, result, target, judges, CONFIG)
  assert history[-1]['lpips'] + history[-1]['l2'] < history[0]['lpips'] + history[0]['l2']
  latent_only = inversion.scores(edit.render(bundle, result).image, target[None], judges)
  after = inversion.scores(edit.render(tuned, result).image, target[None], judges)
  assert after.lpips[0] <= latent_only.lpips[0] and after.psnr[0] > latent_only.psnr[0]
  assert not jax.tree.all(jax.tree.map(np.array_equal, tuned.variables['params'],
                                       bundle.variables['params']))


def test_the_personalised_export_renders_the_person(bundle, judges, truth, inverted, tmp_path):
  _, result, _ = inverted
  personal = dataclasses.replace(bundle, portrait=inversion.portrait_record(result))
  assert 'portrait.npz' in inference.save_export(personal, str(tmp_path / 'me'))
  loaded = inference.load_export(str(tmp_path / 'me'))
  again = edit.from_bundle(loaded)
  np.testing.assert_array_equal(edit.render(loaded, again).image,
                                edit.render(bundle, result).image)
  relit = edit.with_light(loaded, again, yaw=0.5)  # edits keep the person's offsets
  np.testing.assert_array_equal(relit.z_offset, again.z_offset)
  with pytest.raises(ValueError, match='holds no personal portrait'):
    edit.from_bundle(bundle)


def test_initial_portrait_reads_the_image(bundle, truth):
  _, target = truth
  reconstructor = weights.load_role_net('synthetic64', 'reconstructor')
  start = inversion.initial_portrait(bundle, target, reconstructor, jax.random.PRNGKey(0))
  assert start.z_offset.shape[0] == 1 and np.all(start.z_offset == 0)
  parts = bundle.face_model.split_coeffs(start.coeffs)
  assert np.all(parts.angle == 0) and np.all(parts.translation == 0)
  with pytest.raises(ValueError, match=r'uint8 \[32, 32, 3\]'):
    inversion.initial_portrait(bundle, target[:16], reconstructor, jax.random.PRNGKey(0))


def test_invert_command_writes_an_export_the_editing_commands_take(gan_workdir, truth, tmp_path):
  _, target = truth
  Image.fromarray(target).save(tmp_path / 'photo.png')
  out = tmp_path / 'me'
  result = run_module('faceshop_jax.invert', f'--image={tmp_path / "photo.png"}', '--aligned',
                      f'--workdir={gan_workdir}', f'--out={out}', '--latent_steps=2',
                      '--tuning_steps=2', '--locality_portraits=2')
  assert result.returncode == 0, result.stderr[-3000:]
  assert os.path.isfile(out / 'portrait.npz') and os.path.isfile(out / 'export.json')
  assert sorted(os.listdir(f'{out}_report')) == ['inversion.json', 'inversion.png']
  edits = tmp_path / 'edits'
  result = run_module('faceshop_jax.generate', f'--workdir={out}', '--expression=jawOpen=0.6',
                      f'--out={edits}')
  assert result.returncode == 0, result.stderr[-3000:]
  assert os.path.isfile(edits / 'portrait.png')


@pytest.mark.parametrize('make, args, message', [
    (None, [], 'no image at'),
    ('text', ['--aligned'], 'unreadable'),
    ('blank', [], 'no face'),
    ('two people', [], 'several faces'),
])
def test_invert_command_errors_write_nothing(gan_workdir, make, args, message, tmp_path):
  photo = tmp_path / 'photo.png'
  if make == 'text':
    photo.write_text('not an image')
  elif make == 'blank':
    colours = np.random.default_rng(0).integers(0, 255, (128, 128, 3), dtype=np.uint8)
    Image.fromarray(colours).save(photo)
  elif make == 'two people':
    face = skimage.data.astronaut()[:256, 64:320]
    Image.fromarray(np.concatenate([face, face], axis=1)).save(photo)
  result = run_module('faceshop_jax.invert', f'--image={photo}', f'--workdir={gan_workdir}',
                      f'--out={tmp_path / "me"}', *args)
  assert result.returncode != 0
  assert message in result.stderr, result.stderr[-2000:]
  assert not os.path.exists(tmp_path / 'me') and not os.path.exists(f'{tmp_path / "me"}_report')
