"""The editing API: each edit touches its factor only, the conditioning camera, blending, mattes,
compositing, meshes, bad input; and the video command.

The generator is the session's tiny gan run (conftest's gan_workdir); the matte is also checked
on an analytic scene whose head and background are known exactly.
"""
import os

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
import pytest

from faceshop_jax import classes
from faceshop_jax import edit
from faceshop_jax import geometry
from faceshop_jax import inference
from faceshop_jax import media
from faceshop_jax import nerf
from faceshop_jax import video
from tests.cli import run_module

SEEDS = [0, 1]


@pytest.fixture(scope='module')
def bundle(gan_workdir):
  return inference.load_from_workdir(gan_workdir)


@pytest.fixture(scope='module')
def portrait(bundle):
  return edit.from_seeds(bundle, SEEDS)


def _assert_only_changed(bundle, before, after, fields=(), cameras=False):
  """after keeps before's noise, cameras (unless `cameras`) and every coefficient field outside
  `fields` bitwise; each field in `fields` changed."""
  np.testing.assert_array_equal(after.noise, before.noise)
  np.testing.assert_array_equal(after.conditioning_camera, before.conditioning_camera)
  if not cameras:
    np.testing.assert_array_equal(after.camera, before.camera)
  old, new = (bundle.face_model.split_coeffs(p.coeffs) for p in (before, after))
  for name in old._fields:
    if name in fields:
      assert np.any(getattr(new, name) != getattr(old, name)), name
    else:
      np.testing.assert_array_equal(getattr(new, name), getattr(old, name), err_msg=name)


def test_each_edit_changes_its_factor_only(bundle, portrait):
  _assert_only_changed(bundle, portrait, edit.with_identity(bundle, portrait, seed=9),
                       ('identity', 'texture'))
  _assert_only_changed(bundle, portrait, edit.with_identity(bundle, portrait,
                                                            key=jax.random.PRNGKey(4)),
                       ('identity', 'texture'))
  _assert_only_changed(bundle, portrait, edit.with_expression(bundle, portrait,
                                                              units={'jawOpen': 0.7}),
                       ('expression',))
  _assert_only_changed(bundle, portrait, edit.with_expression(bundle, portrait, seed=9),
                       ('expression',))
  _assert_only_changed(bundle, portrait, edit.with_light(bundle, portrait, yaw=0.4, pitch=0.2),
                       ('gamma',))
  _assert_only_changed(bundle, portrait, edit.with_pose(portrait, 0.5, 0.1), cameras=True)


def test_identity_and_expression_from_a_seed_are_that_seeds(bundle, portrait):
  donor = bundle.face_model.split_coeffs(edit.from_seeds(bundle, [9]).coeffs)
  edited = bundle.face_model.split_coeffs(edit.with_identity(bundle, portrait, seed=9).coeffs)
  for name in ('identity', 'texture'):
    np.testing.assert_array_equal(getattr(edited, name),
                                  np.repeat(getattr(donor, name), len(SEEDS), 0))
  expression = edit.with_expression(bundle, portrait, seed=[9, 9])
  np.testing.assert_array_equal(bundle.face_model.split_coeffs(expression.coeffs).expression,
                                np.repeat(donor.expression, len(SEEDS), 0))


def test_expression_edits_remember_the_first_expression(bundle, portrait):
  first = edit.with_expression(bundle, portrait, units={'jawOpen': 0.5})
  second = edit.with_expression(bundle, first, beta=jnp.zeros(bundle.face_model.n_exp))
  original = bundle.face_model.split_coeffs(portrait.coeffs).expression
  assert portrait.base_expression is None
  np.testing.assert_array_equal(first.base_expression, original)
  np.testing.assert_array_equal(second.base_expression, original)
  relit = edit.with_light(bundle, second, yaw=0.3)  # other edits keep the blending base
  np.testing.assert_array_equal(relit.base_expression, original)


def test_a_fixed_conditioning_camera_gives_the_same_w_for_every_view(bundle, portrait):
  ws = {}
  for name, view in (('front', portrait), ('side', edit.with_pose(portrait, 0.6, -0.2)),
                     ('moved', edit.with_pose(portrait, 0.6, -0.2, move_conditioning=True))):
    ws[name] = edit.mapped_ws(bundle, view)
  np.testing.assert_array_equal(ws['side'], ws['front'])
  assert np.any(ws['moved'] != ws['front'])


def test_an_orbit_moves_the_render_camera_only(bundle, portrait):
  frames = video.orbit(portrait[0], 6)
  assert len(frames) == 6
  yaw, pitch = geometry.yaw_pitch_from_camera(frames.camera)
  np.testing.assert_allclose(np.max(np.abs(yaw)), video.ORBIT_YAW, rtol=0.15)
  np.testing.assert_allclose(pitch[0], video.ORBIT_PITCH, atol=1e-5)
  np.testing.assert_array_equal(frames.conditioning_camera,
                                np.repeat(portrait.conditioning_camera[:1], 6, 0))


def test_keyframes_are_interpolated_between_their_values():
  values = video.keyframe_values({'jawOpen': [0.0, 0.8, 0.0], 'browInnerUp': [1.0, 0.0]}, 5)
  np.testing.assert_allclose([v['jawOpen'] for v in values], [0, 0.4, 0.8, 0.4, 0], atol=1e-6)
  np.testing.assert_allclose([v['browInnerUp'] for v in values], [1, 0.75, 0.5, 0.25, 0])


def test_blending_an_unchanged_expression_renders_the_portrait(bundle, portrait):
  plain = edit.render(bundle, portrait)
  same = edit.with_expression(bundle, portrait,
                              beta=bundle.face_model.split_coeffs(portrait.coeffs).expression)
  np.testing.assert_allclose(edit.render(bundle, same).image, plain.image, atol=1)
  changed = edit.with_expression(bundle, portrait, units={'jawOpen': 1.0})
  blended, whole = edit.render(bundle, changed), edit.render(bundle, changed, blend=False)
  assert np.any(blended.image != whole.image) and np.any(whole.image != plain.image)


def _scene(points, directions):
  """A dense sphere of skin (radius 0.1 m) inside a dense background shell (0.3–0.35 m), which
  lies both in front of the head and behind it."""
  del directions
  radius = jnp.linalg.norm(points, axis=-1)
  head, shell = radius < 0.1, (radius > 0.3) & (radius < 0.35)
  density = jnp.where(head | shell, 500.0, 0.0)
  logits = jnp.where(head[..., None], 30.0 * jax.nn.one_hot(classes.SKIN, classes.NUM_CLASSES),
                     30.0 * jax.nn.one_hot(classes.BACKGROUND, classes.NUM_CLASSES))
  return density, jnp.full(points.shape[:-1] + (3,), 0.5), logits


def test_alpha_is_one_on_the_head_and_zero_on_a_transparent_background():
  camera = geometry.camera_from_yaw_pitch(jnp.zeros(1), jnp.zeros(1), radius=2.0)
  opaque, matted = (nerf.render_image(field, camera, 32, 32, 1.4, 2.6, 48, 48, 1024)
                    for field in (_scene, nerf.transparent_background(_scene)))
  np.testing.assert_allclose(opaque['alpha'], 1.0, atol=1e-3)  # the shell covers every ray
  across, down = np.meshgrid(np.arange(32) - 15.5, np.arange(32) - 15.5)
  alpha = np.asarray(matted['alpha'][0])
  focal = 32 / (2 * np.tan(np.radians(geometry.DEFAULT_FOV_DEGREES) / 2))
  off_axis = np.hypot(across, down) / focal  # tan of each pixel's angle off the optical axis
  inside, outside = off_axis < 0.035, off_axis > 0.065  # the head subtends tan⁻¹(0.1/1.997)
  assert inside.sum() > 4 and outside.sum() > 100
  np.testing.assert_allclose(alpha[inside], 1.0, atol=1e-3)
  np.testing.assert_allclose(alpha[outside], 0.0, atol=1e-3)


def test_composites_over_black_and_white_differ_only_where_alpha_is_below_one(bundle, portrait):
  matted = edit.render(bundle, portrait, transparent_background=True)
  size = matted.image.shape[1]
  black = edit.composite(matted, np.zeros((size, size, 3), np.uint8))
  white = edit.composite(matted, np.full((size, size, 3), 255, np.uint8))
  alpha = edit.upsample_alpha(matted.alpha, size)
  differ = np.any(black != white, axis=-1)
  assert not np.any(differ & (alpha >= 1.0))
  assert np.mean(differ[alpha < 0.9]) > 0.99  # the background shows wherever alpha is low
  np.testing.assert_array_equal(black, matted.image)
  with pytest.raises(ValueError, match='transparent_background=True'):
    edit.composite(edit.render(bundle, portrait), black[0])
  with pytest.raises(ValueError, match=r'uint8 \[\d+, \d+, 3\]'):
    edit.composite(matted, np.zeros((size + 1, size, 3), np.uint8))


def test_a_background_file_is_cropped_and_resized(tmp_path):
  image = np.zeros((30, 50, 3), np.uint8)
  image[:, 10:40] = 200  # the centre square
  Image.fromarray(image).save(tmp_path / 'bg.png')
  loaded = edit.load_background(str(tmp_path / 'bg.png'), 16)
  assert loaded.shape == (16, 16, 3) and loaded.dtype == np.uint8
  assert np.all(loaded[:, 2:-2] == 200)
  with pytest.raises(FileNotFoundError, match='No background image'):
    edit.load_background(str(tmp_path / 'missing.png'), 16)
  (tmp_path / 'bad.jpg').write_bytes(b'not a jpeg')
  with pytest.raises(ValueError, match='Cannot read the background image'):
    edit.load_background(str(tmp_path / 'bad.jpg'), 16)


def test_bad_edits_name_the_problem(bundle, portrait):
  with pytest.raises(ValueError, match=r"\['jawOpn'\].*known units: .*jawOpen"):
    edit.with_expression(bundle, portrait, units={'jawOpn': 0.5})
  with pytest.raises(ValueError, match=r"'jawOpen' = 1.5 is outside \[0, 1\]"):
    edit.with_expression(bundle, portrait, units={'jawOpen': 1.5})
  with pytest.raises(ValueError, match='exactly one of units, beta and seed'):
    edit.with_expression(bundle, portrait, units={}, seed=3)
  with pytest.raises(ValueError, match=r'expression coefficients; got β of shape \(3,\)'):
    edit.with_expression(bundle, portrait, beta=np.zeros(3))
  with pytest.raises(ValueError, match='must not be negative'):
    edit.with_light(bundle, portrait, yaw=0.0, intensity=-1.0)
  with pytest.raises(ValueError, match=r'27 SH coefficients .*shape \(9,\)'):
    edit.with_light(bundle, portrait, gamma=np.zeros(9))
  with pytest.raises(ValueError, match=r'yaw = 3.0 is outside \[-0.8, 0.8\]'):
    edit.with_pose(portrait, 3.0)
  with pytest.raises(ValueError, match='exactly one of seed'):
    edit.with_identity(bundle, portrait)
  with pytest.raises(ValueError, match='one per portrait'):
    edit.with_identity(bundle, portrait, seed=[1, 2, 3])


def test_a_mesh_of_the_generators_field(bundle, portrait, tmp_path):
  shape, colours = edit.extract_mesh(bundle, portrait, 1, resolution=24, level=0.5)
  assert len(shape.vertices) > 100 and colours.shape == (len(shape.vertices), 3)
  assert np.all(np.abs(shape.vertices) <= bundle.generator.box_half_size + 1e-6)
  views = edit.mesh_views(shape, colours, 32)
  assert views.shape == (32, 64, 3) and np.any(views != 128)  # the mesh shows in both views
  assert np.any(views[:, :32] != 128) and np.any(views[:, 32:] != 128)
  with pytest.raises(ValueError, match='level'):
    edit.extract_mesh(bundle, portrait, 0, resolution=16, level=1e9)
  with pytest.raises(ValueError, match='outside the batch'):
    edit.extract_mesh(bundle, portrait, 2)


def test_video_command_writes_the_frames_asked_for(gan_workdir, tmp_path):
  out = tmp_path / 'videos'
  result = run_module('faceshop_jax.video', f'--workdir={gan_workdir}', '--seeds=3', '--orbit',
                      '--expression=jawOpen=0:1', '--frames=5', '--batch=2', f'--out={out}')
  assert result.returncode == 0, result.stderr[-3000:]
  assert sorted(os.listdir(out)) == ['seed3_expression.mp4', 'seed3_expression_strip.png',
                                     'seed3_orbit.mp4', 'seed3_orbit_strip.png']
  frames = media.read_video(str(out / 'seed3_orbit.mp4'))
  assert frames.shape[0] == 5
  assert np.any(frames[0] != frames[2])
  assert 'python -m faceshop_jax.serve' in result.stdout.splitlines()[-1]


@pytest.mark.parametrize('args, message', [
    (['--orbit', '--workdir={tmp}/missing'], 'video: No training run at'),
    (['--expression=jawOpn=0:1'], "Unknown expression unit(s) ['jawOpn']"),
    (['--expression=jawOpen=0:2'], "'jawOpen' = 2.0 is outside [0, 1]"),
    (['--expression=jawOpen=1'], 'at least two keyframes'),
    ([], 'nothing to render'),
])
def test_video_command_errors_write_nothing(gan_workdir, args, message, tmp_path):
  args = [a.format(tmp=tmp_path) for a in args]
  if not any(a.startswith('--workdir') for a in args):
    args.append(f'--workdir={gan_workdir}')
  result = run_module('faceshop_jax.video', f'--out={tmp_path}/out', *args)
  assert result.returncode != 0
  assert message in result.stderr, result.stderr[-2000:]
  assert not os.path.exists(tmp_path / 'out')
