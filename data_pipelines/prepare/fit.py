"""Fits face-model coefficients to photos, in JAX: geometry from landmarks, then appearance.

The photo is a square crop of S pixels seen by the default portrait camera (frontal, 1 m, focal
4.531 widths); prepare.py pre-aligns each photo to the mean face (mean_face_points) so the fit
starts near its answer. Coefficients follow the model's layout (id | exp | tex | angle | gamma |
trans); the fitted head is posed by angle and translation in front of that camera.

Two stages, each one jitted loop, batched over photos:
  1. Geometry (α, β, angle, translation): Levenberg–Marquardt on the 68 landmark residuals plus
     Gaussian priors on α and β. β is projected into the model's bounds after each step (ARKit
     weights in [0, 1] for the embedded model). Landmarks alone pin pose and shape robustly, and an
     iteration costs 68 vertices, not a rendering, so a full Jacobian is cheap.
  2. Appearance (δ, γ): Adam on the photometric loss inside the rendered face mask plus Gaussian
     priors on δ and γ. The geometry is fixed, so the mesh is rasterized once; visibility does not
     depend on δ or γ, and each step only re-shades and re-interpolates.
Fitting appearance photometrically but not pose is deliberate: the embedded model's albedo is
synthetic, and letting its mismatch with real skin pull on the pose would bias the cameras,
which matter more for the GAN than the texture coefficients.
"""
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from faceshop_jax import face_model
from faceshop_jax import geometry
from faceshop_jax import raster

# The jaw contour (iBUG 0-16) marks the silhouette, which slides over the face as it turns, while
# the model's contour points are fixed vertices: they get less weight.
_CONTOUR = slice(0, 17)
_CONTOUR_WEIGHT = 0.3


class FitConfig(NamedTuple):
  """Fitting settings (hashable: it is a static argument of the jitted fit).

  Attributes:
    landmark_iterations: Levenberg–Marquardt iterations of the geometry stage.
    appearance_steps: Adam steps of the appearance stage.
    learning_rate: Adam's learning rate (coefficient units per step).
    identity_prior, expression_prior, translation_prior: weights of ‖α‖², ‖β‖², ‖t‖² (metres)
      against the landmark residuals, which are in units of the image width (one landmark off by
      1% of the image costs 1e-4). The translation prior holds the pre-aligned head near the
      canonical placement: landmarks barely see depth, and without it a nearer, smaller head (t_z
      against an identity that shrinks it) fits as well.
    texture_prior, gamma_prior: weights of ‖δ‖², ‖γ‖² against the photometric loss (mean per-pixel
      RGB distance inside the face mask, colours in [0, 1]).
  """
  landmark_iterations: int = 100
  appearance_steps: int = 100
  learning_rate: float = 0.03
  identity_prior: float = 1e-5
  expression_prior: float = 1e-6
  translation_prior: float = 0.1
  texture_prior: float = 1e-4
  gamma_prior: float = 1e-3


class FitResult(NamedTuple):
  """What fit returns; every field is batched.

  Attributes:
    coeffs: [B, D] fitted coefficients in the model's layout (pose: angle and translation).
    landmarks: [B, 68, 2] the fitted model's projected landmarks, pixels of the crop.
    landmark_error: [B] normalised mean error of the fitted landmarks: mean distance to the target
      landmarks over the outer-eye-corner distance (300-W's inter-ocular NME).
    photo_error: [B] mean RGB distance between the render and the photo inside the face mask.
  """
  coeffs: jax.Array
  landmarks: jax.Array
  landmark_error: jax.Array
  photo_error: jax.Array


def expression_bounds(model: face_model.FaceModel) -> tuple[float, float]:
  """Bounds of β: [0, 1] for named (ARKit blendshape) units, unbounded for PCA expression bases."""
  return (0.0, 1.0) if model.expression_names else (-np.inf, np.inf)


def portrait_camera() -> jax.Array:
  """The default frontal portrait camera [25] (its intrinsics are normalised: any image size)."""
  return geometry.camera_from_yaw_pitch(0.0, 0.0)


def project_landmarks(model: face_model.FaceModel, coeffs: jax.Array, camera: jax.Array,
                      size: int) -> jax.Array:
  """The 68 landmarks [..., 68, 2] (pixels of a size² image) of coefficients [..., D] under camera.

  Only the 68 landmark vertices are computed, so this is cheap enough for Jacobians.
  """
  parts = model.split_coeffs(coeffs)
  rows = model.landmarks68
  points = (model.mean_shape[rows]
            + jnp.einsum('nck,...k->...nc', model.id_basis[rows], parts.identity)
            + jnp.einsum('nck,...k->...nc', model.exp_basis[rows], parts.expression))
  points = face_model.pose(points, parts.angle, parts.translation)
  return geometry.project_points(points, camera, size, size)[0]


def mean_face_points(model: face_model.FaceModel, size: int) -> np.ndarray:
  """The 5 alignment points [5, 2] of the mean, neutral, canonically placed face, frontal camera."""
  landmarks = project_landmarks(model, model.zero_coeffs(), portrait_camera(), size)
  return np.asarray(face_model.five_points(landmarks))


def landmark_weights() -> np.ndarray:
  """Per-landmark weights [68] of the geometry stage."""
  weights = np.ones(68, np.float32)
  weights[_CONTOUR] = _CONTOUR_WEIGHT
  return weights


def landmark_nme(predicted: jax.Array, target: jax.Array) -> jax.Array:
  """Mean distance of landmarks [..., 68, 2] over the target's outer-eye-corner distance [...]."""
  interocular = jnp.linalg.norm(target[..., 45, :] - target[..., 36, :], axis=-1)
  return jnp.linalg.norm(predicted - target, axis=-1).mean(-1) / interocular


def _geometry_indices(model: face_model.FaceModel) -> np.ndarray:
  """Indices into [D] of what the geometry stage fits: identity, expression, angle, translation."""
  starts = np.cumsum((0,) + tuple(model.coefficient_sizes))
  return np.concatenate([np.arange(starts[i], starts[i + 1])
                         for i, field in enumerate(face_model.Coefficients._fields)
                         if field in ('identity', 'expression', 'angle', 'translation')])


def _fit_geometry(model, target, size, config):
  """Levenberg–Marquardt for one photo: target [68, 2] -> coefficients [D] (tex, gamma zero)."""
  free = _geometry_indices(model)
  camera = portrait_camera()
  weights = jnp.sqrt(jnp.asarray(landmark_weights()))[:, None]
  low, high = expression_bounds(model)
  zero = model.zero_coeffs()
  unbounded = model.split_coeffs(jnp.full(model.n_coeffs, jnp.inf))
  lower = -model.merge_coeffs(unbounded._replace(expression=jnp.full(model.n_exp, -low)))[free]
  upper = model.merge_coeffs(unbounded._replace(expression=jnp.full(model.n_exp, high)))[free]

  def residuals(x):
    coeffs = zero.at[free].set(x)
    parts = model.split_coeffs(coeffs)
    landmarks = project_landmarks(model, coeffs, camera, size)
    return jnp.concatenate([
        (weights * (landmarks - target) / size).reshape(-1),
        jnp.sqrt(config.identity_prior) * parts.identity,
        jnp.sqrt(config.expression_prior) * parts.expression,
        jnp.sqrt(config.translation_prior) * parts.translation,
    ])

  def step(_, state):
    x, damping, cost = state
    r, jacobian = residuals(x), jax.jacfwd(residuals)(x)
    hessian, gradient = jacobian.T @ jacobian, jacobian.T @ r
    # Projected Newton (Bertsekas 1982): a coefficient at a bound that the gradient pushes outward
    # is held there, the others take the damped Gauss-Newton step, then the result is clipped.
    held = ((x <= lower) & (gradient > 0)) | ((x >= upper) & (gradient < 0))
    free_pair = ~held[:, None] & ~held[None, :]
    system = jnp.where(free_pair, hessian + damping * jnp.diag(jnp.diag(hessian) + 1e-9),
                       jnp.eye(len(x)))
    candidate = jnp.clip(x - jnp.linalg.solve(system, jnp.where(held, 0.0, gradient)), lower, upper)
    candidate_cost = jnp.sum(residuals(candidate)**2)
    better = candidate_cost < cost
    return (jnp.where(better, candidate, x), jnp.where(better, damping * 0.3, damping * 10.0),
            jnp.where(better, candidate_cost, cost))

  x0 = jnp.zeros(len(free))
  x, _, _ = jax.lax.fori_loop(0, config.landmark_iterations, step,
                              (x0, jnp.float32(1e-2), jnp.sum(residuals(x0)**2)))
  return zero.at[free].set(x)


def _fit_appearance(model, coeffs, images, size, config):
  """Adam on δ and γ of coefficients [B, D] against images [B, S, S, 3]; geometry fixed."""
  camera = portrait_camera()
  render = face_model.render_face(model, coeffs, camera, size)
  fragments, mask = render.fragments, render.mask
  pixels = jnp.maximum(mask.sum((1, 2)), 1.0)

  def losses(appearance):
    texture, gamma = appearance
    full = model.merge_coeffs(model.split_coeffs(coeffs)._replace(texture=texture, gamma=gamma))
    _, colours = face_model.face_vertices(model, full)
    image = raster.interpolate(colours, model.triangles, fragments)
    distance = jnp.sqrt(jnp.sum((image - images)**2, axis=-1) + 1e-8)  # L2,1: robust to outliers
    photo = (distance * mask).sum((1, 2)) / pixels
    prior = (config.texture_prior * jnp.sum(texture**2, -1)
             + config.gamma_prior * jnp.sum(gamma**2, -1))
    return photo, prior

  def loss(appearance):
    photo, prior = losses(appearance)
    return jnp.sum(photo + prior)  # photos are independent: the sum keeps their gradients apart

  optimiser = optax.adam(config.learning_rate)
  parts = model.split_coeffs(coeffs)
  appearance = (parts.texture, parts.gamma)

  def step(state, _):
    params, opt_state = state
    updates, opt_state = optimiser.update(jax.grad(loss)(params), opt_state)
    return (optax.apply_updates(params, updates), opt_state), None

  (appearance, _), _ = jax.lax.scan(step, (appearance, optimiser.init(appearance)), None,
                                    length=config.appearance_steps)
  photo, _ = losses(appearance)
  fitted = model.merge_coeffs(parts._replace(texture=appearance[0], gamma=appearance[1]))
  return fitted, photo


def fit(model: face_model.FaceModel, images: jax.Array, landmarks: jax.Array,
        config: FitConfig = FitConfig()) -> FitResult:
  """Fits coefficients to photos.

  Args:
    model: the face model.
    images: [B, S, S, 3] float photos in [0, 1], pre-aligned crops seen by portrait_camera.
    landmarks: [B, 68, 2] their detected iBUG landmarks, pixels of the crop.
    config: fitting settings.

  Returns:
    FitResult.
  """
  return _fit(model, jnp.asarray(images, jnp.float32), jnp.asarray(landmarks, jnp.float32), config)


@functools.partial(jax.jit, static_argnums=3)
def _fit(model, images, landmarks, config):
  size = images.shape[1]
  coeffs = jax.vmap(lambda target: _fit_geometry(model, target, size, config))(landmarks)
  coeffs, photo_error = _fit_appearance(model, coeffs, images, size, config)
  fitted = project_landmarks(model, coeffs, portrait_camera(), size)
  return FitResult(coeffs, fitted, landmark_nme(fitted, landmarks), photo_error)
