"""Disentanglement losses (Eq. 18-21): zero for consistent pairs, the paper's norms, exact flow."""
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from faceshop_jax import classes
from faceshop_jax import face_model
from faceshop_jax import geometry
from faceshop_jax import raster
from faceshop_jax.analysis import lpips
from faceshop_jax.analysis import vgg
from faceshop_jax.losses import disentangle
from faceshop_jax.losses import imitative

RENDER_SIZE = 32
VGG = vgg.build({})
render = jax.jit(face_model.render_face, static_argnums=3)


def _images(seed, shape=(2, 8, 8, 3)):
  return jax.random.uniform(jax.random.PRNGKey(seed), shape, minval=-1, maxval=1)


def _assert_finite_grads(fn, *args):
  for grad in jax.tree.leaves(jax.grad(fn, argnums=tuple(range(len(args))))(*args)):
    assert np.all(np.isfinite(np.asarray(grad)))


def test_class_probability_sums_class_masses_and_nonface_counts_transparency():
  # One pixel of alpha 0.9: skin 0.5, upper lip 0.1, lower lip 0.1, hair 0.2.
  names = classes.NAMES
  semantics = jnp.zeros((1, 1, 1, len(names)))
  for name, mass in (('skin', 0.5), ('u_lip', 0.1), ('l_lip', 0.1), ('hair', 0.2)):
    semantics = semantics.at[..., names.index(name)].set(mass)
  np.testing.assert_allclose(disentangle.class_probability(semantics, classes.LIPS),
                             [[[0.2]]], rtol=1e-6)
  # Face 0.7, so 0.3 is non-face: the hair and the transparent 0.1.
  np.testing.assert_allclose(disentangle.nonface_probability(semantics), [[[0.3]]], rtol=1e-5)
  # Resized to an image 4x the rendering: a uniform map stays uniform.
  upsampled = disentangle.nonface_probability(jnp.tile(semantics, (2, 4, 4, 1)), (16, 16))
  assert upsampled.shape == (2, 16, 16)
  np.testing.assert_allclose(upsampled, 0.3, rtol=1e-5)


def test_nonface_consistency_loss_ignores_the_face_and_is_the_mean_pixel_l2():
  image, other = _images(0), _images(1)
  face = jnp.zeros((2, 8, 8)).at[:, 2:6, 2:6].set(1.0)
  assert disentangle.nonface_consistency_loss(image, image, 1 - face, 1 - face) == 0.0
  # Anything may change on the face.
  edited = image * (1 - face[..., None]) + other * face[..., None]
  assert disentangle.nonface_consistency_loss(edited, image, 1 - face, 1 - face) == 0.0
  # Image 0: one background pixel off by (0.3, 0.4, 0) -> 0.5 / 64 pixels; image 1: one pixel of
  # colour (0, 0.6, 0.8) turns to face in the edit -> 1.0 · 1 / 64. Batch mean: 0.75 / 64.
  image = jnp.zeros((2, 8, 8, 3)).at[1, 0, 0].set(jnp.array([0.0, 0.6, 0.8]))
  edited = image.at[0, 7, 7].set(jnp.array([0.3, 0.4, 0.0]))
  nonface = jnp.ones((2, 8, 8))
  np.testing.assert_allclose(
      disentangle.nonface_consistency_loss(edited, image, nonface.at[1, 0, 0].set(0.0), nonface),
      0.75 / 64, rtol=1e-4)
  _assert_finite_grads(disentangle.nonface_consistency_loss, image, image, nonface, nonface)


def test_illumination_consistency_loss_is_identity_plus_landmark_loss():
  e = jax.random.normal(jax.random.PRNGKey(0), (2, 16))
  e = e / jnp.linalg.norm(e, axis=-1, keepdims=True)
  points = jax.random.uniform(jax.random.PRNGKey(1), (2, 68, 2)) * 64
  np.testing.assert_allclose(disentangle.illumination_consistency_loss(e, e, points, points, 64),
                             0.0, atol=1e-6)
  moved = points.at[:, 20, 1].add(6.4)  # a brow point, weight 100, off by 0.1 image side
  np.testing.assert_allclose(disentangle.illumination_consistency_loss(-e, e, moved, points, 64),
                             2.0 + 100 * 0.1, rtol=1e-4)
  _assert_finite_grads(lambda a, b: disentangle.illumination_consistency_loss(a, e, b, points, 64),
                       e, points)


def test_warp_by_zero_flow_is_the_identity():
  image = _images(2)
  np.testing.assert_allclose(raster.warp(image, jnp.zeros((2, 8, 8, 2))), image, atol=1e-6)


@pytest.fixture(scope='module')
def head_renders():
  """The embedded head, and renders of it before and after translating it (a 'rigid edit')."""
  model = face_model.load('embedded')
  coeffs = model.zero_coeffs((1,))
  parts = model.split_coeffs(coeffs)
  shift = jnp.float32([[0.02, 0.01, 0.0]])  # metres: about 3 px right and 1.5 px up
  moved = model.merge_coeffs(parts._replace(translation=parts.translation + shift))
  camera = geometry.camera_from_yaw_pitch(0.0, 0.0)
  return (model, render(model, coeffs, camera, RENDER_SIZE),
          render(model, moved, camera, RENDER_SIZE))


def test_expression_flow_is_zero_for_identical_renders_and_off_the_face(head_renders):
  model, original, edited = head_renders
  ones = jnp.ones(original.mask.shape)
  np.testing.assert_allclose(disentangle.expression_flow(original, original, model.triangles, ones),
                             0.0, atol=1e-4)
  np.testing.assert_array_equal(
      disentangle.expression_flow(edited, original, model.triangles, jnp.zeros_like(ones)), 0.0)
  # Weighted by the face mass: zero wherever the weight is.
  flow = disentangle.expression_flow(edited, original, model.triangles, edited.face_mask)
  assert np.all(np.asarray(flow)[np.asarray(edited.face_mask) == 0] == 0.0)


def test_expression_flow_warps_the_original_render_onto_the_edited_one(head_renders):
  model, original, edited = head_renders
  flow = disentangle.expression_flow(edited, original, model.triangles,
                                     jnp.ones(original.mask.shape))
  face = np.asarray(edited.face_mask[0]) > 0
  assert face.sum() > 100
  # Each face pixel of the edit fetches the pixel where the landmarks' shift brings it back; the
  # head moves nearly parallel to the image plane, so the flow is nearly uniform.
  shift = np.asarray(original.landmarks - edited.landmarks)[0].mean(axis=0)
  assert np.linalg.norm(shift) > 2.0
  np.testing.assert_allclose(np.asarray(flow[0])[face], np.broadcast_to(shift, (face.sum(), 2)),
                             atol=0.2)
  # The translation leaves the shading unchanged, so W(R) is the edited render up to resampling.
  warped = raster.warp(original.image, flow)
  warped_error = np.abs(np.asarray(warped - edited.image)[0])[face].mean()
  unwarped_error = np.abs(np.asarray(original.image - edited.image)[0])[face].mean()
  assert warped_error < 0.25 * unwarped_error, (warped_error, unwarped_error)
  assert disentangle.flow_texture_loss(edited.image, warped, edited.face_mask) < 0.25 * (
      disentangle.flow_texture_loss(edited.image, original.image, edited.face_mask))


def test_flow_texture_loss_is_the_texture_loss_over_the_image_or_a_mask():
  image, other = _images(3), _images(4)
  assert disentangle.flow_texture_loss(image, image) == 0.0
  whole = jnp.ones((2, 8, 8))
  np.testing.assert_allclose(disentangle.flow_texture_loss(image, other),
                             imitative.texture_loss(image, other, whole), rtol=1e-6)
  mask = whole.at[:, :4].set(0.0)
  edited = image.at[:, :4].set(other[:, :4])
  assert disentangle.flow_texture_loss(edited, image, mask) == 0.0
  assert disentangle.flow_texture_loss(edited, image) > 0.0
  flow = jnp.full((2, 8, 8, 2), 0.3)
  _assert_finite_grads(lambda a, b: disentangle.flow_texture_loss(a, raster.warp(b, flow)),
                       image, image)


def test_masked_mean_variance_by_hand():
  # Channel 0 reads 1, 2, 3, 4 and channel 1 reads 0, 0, 0, 8 over the 2x2 pixels.
  features = jnp.float32([[1, 0], [2, 0], [3, 0], [4, 8]]).reshape(1, 2, 2, 2)
  mean, variance = disentangle.masked_mean_variance(features, jnp.float32([[[1, 1], [0, 0]]]))
  np.testing.assert_allclose(mean, [[1.5, 0.0]])
  np.testing.assert_allclose(variance, [[0.25, 0.0]])
  # Soft weights (1, 1, 0, 2) / 4: mean (1 + 2 + 8) / 4, variance of {1, 2, 4, 4} about it.
  mean, variance = disentangle.masked_mean_variance(features, jnp.float32([[[1, 1], [0, 2]]]))
  np.testing.assert_allclose(mean, [[11 / 4, 4.0]], rtol=1e-6)
  np.testing.assert_allclose(variance[0, 0], np.var([1, 2, 4, 4]), rtol=1e-6)
  np.testing.assert_allclose(variance[0, 1], np.var([0, 0, 8, 8]), rtol=1e-6)
  # An empty mask: zero statistics, not NaN.
  mean, variance = disentangle.masked_mean_variance(features, jnp.zeros((1, 2, 2)))
  np.testing.assert_array_equal(mean, 0.0)
  np.testing.assert_array_equal(variance, 0.0)


@pytest.fixture(scope='module')
def lip_case():
  """32x32 images with lips at rows and columns 8-13, masks at a 16x16 rendering resolution."""
  lip = jnp.zeros((2, 16, 16)).at[:, 4:7, 4:7].set(1.0)
  return lpips.load_vgg16(), _images(5, (2, 32, 32, 3)), lip


def test_lip_style_loss_sees_only_the_lips(lip_case):
  variables, image, lip = lip_case
  loss = jax.jit(disentangle.lip_style_loss, static_argnums=0)
  # Zero up to rounding (one VGG pass over both batches: ~1e-7 of the statistics' norms, ~500).
  np.testing.assert_allclose(loss(VGG, variables, image, lip, image, lip), 0.0, atol=1e-4)
  # Another background, beyond the two taps' receptive fields (±7 px) around the lips (and the
  # blur of the mask's resizing).
  far = image.at[:, 24:].set(_images(6, (2, 8, 32, 3)))
  np.testing.assert_allclose(loss(VGG, variables, far, lip, image, lip), 0.0, atol=1e-4)
  recoloured = image.at[:, 8:14, 8:14].set(jnp.clip(image[:, 8:14, 8:14] + 0.5, -1, 1))
  assert loss(VGG, variables, recoloured, lip, image, lip) > 0.1
  # The same lips elsewhere in the edit have the same style: only statistics count (an even shift,
  # so VGG's pools see the same 2x2 blocks).
  moved = jnp.roll(image, (8, 8), axis=(1, 2))
  np.testing.assert_allclose(
      loss(VGG, variables, moved, jnp.roll(lip, (4, 4), axis=(1, 2)), image, lip), 0.0, atol=1e-4)


def test_lip_style_loss_gradients_are_finite_at_zero_and_for_empty_masks(lip_case):
  variables, image, lip = lip_case
  for mask in (lip, jnp.zeros_like(lip)):
    _assert_finite_grads(
        lambda a, m=mask: disentangle.lip_style_loss(VGG, variables, a, m, image, m), image)


def test_lip_style_loss_does_not_compute_the_deep_vgg_stages(lip_case):
  variables, image, lip = lip_case
  compiled = jax.jit(jax.grad(disentangle.lip_style_loss, argnums=2), static_argnums=0).lower(
      VGG, variables, image, lip, image, lip).compile().as_text()
  convolutions = [line for line in compiled.splitlines() if 'convolution(' in line]
  assert convolutions
  assert not any(re.search(r'f32\[\d+,\d+,\d+,(256|512)\]', line) for line in convolutions)


def test_the_two_stage_vgg_gives_the_whole_nets_lip_style(lip_case):
  variables, image, lip = lip_case
  recoloured = image.at[:, 8:14, 8:14].set(jnp.clip(image[:, 8:14, 8:14] + 0.5, -1, 1))
  loss = jax.jit(disentangle.lip_style_loss, static_argnums=0)
  small = vgg.first_stages(variables, 2)
  assert set(small['params']) == {'conv1_1', 'conv1_2', 'conv2_1', 'conv2_2'}
  np.testing.assert_allclose(loss(disentangle.LIP_STYLE_VGG, small, recoloured, lip, image, lip),
                             loss(VGG, variables, recoloured, lip, image, lip), rtol=1e-5)
