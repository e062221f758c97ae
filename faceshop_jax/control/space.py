"""The semantic control space (paper §4.1): three factor VAEs, their normalisers, and sampling.

Factors (FactorSpec): identity κ = (α, δ) = the model's identity and texture coefficients
concatenated (note: `Coefficients.identity` is α alone), expression β, illumination γ. Each factor
is normalised per coefficient by the mean/std of its training set, and encode and decode use the
same statistics (3DFaceShop hard-codes the scales and decodes expressions with a different one
than it encodes with). A trained `ControlSpace` is what the generator stages sample from; it is
saved with orbax plus a small JSON of the static configuration and loads without training state.
"""
import dataclasses
import os
from typing import Any

import chex
import flax.serialization
import flax.struct
import jax
import jax.numpy as jnp

from faceshop_jax import saved
from faceshop_jax.control import modules
from faceshop_jax.face_model import model as model_lib

_CONFIG_FILE = 'control_space.json'
_PARAMS_DIR = 'params'
_FORMAT_VERSION = 1


@dataclasses.dataclass(frozen=True)
class FactorSpec:
  """Where a factor lives in the coefficient vector, and the size of its networks.

  Attributes:
    name: 'identity', 'expression' or 'illumination'.
    fields: the `Coefficients` fields the factor concatenates, in order.
    field_sizes: their sizes.
    latent_size: VAE latent dimensions.
    width: hidden width of the VAE's encoder and decoder and of the critic.
    depth: hidden layers of each of those MLPs.
  """
  name: str
  fields: tuple[str, ...]
  field_sizes: tuple[int, ...]
  latent_size: int
  width: int
  depth: int = 3

  @property
  def size(self) -> int:
    return sum(self.field_sizes)

  def networks(self) -> tuple[modules.FactorVAE, modules.Critic]:
    return (modules.FactorVAE(self.size, self.latent_size, self.width, self.depth),
            modules.Critic(self.width, self.depth))

  def check(self, x: jnp.ndarray, what: str = 'coefficients'):
    """Raises a ValueError naming the factor unless x is [..., size]."""
    if x.ndim < 1 or x.shape[-1] != self.size:
      layout = ' + '.join(f'{f} {s}' for f, s in zip(self.fields, self.field_sizes))
      raise ValueError(f'Factor {self.name!r} takes {self.size} {what} per sample ({layout}); '
                       f'got an array of shape {x.shape}.')


def factor_specs(model: model_lib.FaceModel) -> tuple[FactorSpec, ...]:
  """The three factors of `model`, with 3DFaceShop's latent sizes and widths.

  Customise with dataclasses.replace (e.g. narrower networks for tests).
  """
  return (
      FactorSpec('identity', ('identity', 'texture'), (model.n_id, model.n_tex), 128, 512),
      FactorSpec('expression', ('expression',), (model.n_exp,), 32, 256),
      FactorSpec('illumination', ('gamma',), (model_lib.N_GAMMA,), 16, 128),
  )


def factor_data(model: model_lib.FaceModel, coeffs: jnp.ndarray) -> dict[str, jnp.ndarray]:
  """Each factor's coefficients {name: [..., size]} from full coefficient vectors [..., D]."""
  parts = model.split_coeffs(coeffs)._asdict()
  return {spec.name: jnp.concatenate([parts[f] for f in spec.fields], axis=-1)
          for spec in factor_specs(model)}


def merge_into_coeffs(model: model_lib.FaceModel, controls: dict[str, jnp.ndarray]) -> jnp.ndarray:
  """Full coefficient vectors [n, D] from {identity, expression, illumination} [n, size].

  Angle and translation are zero: the head stays canonical and its pose is the camera.
  """
  specs = factor_specs(model)
  missing = sorted({s.name for s in specs} - set(controls))
  if missing:
    raise ValueError(f'Missing control factor(s) {missing}; got {sorted(controls)}.')
  parts = {}
  for spec in specs:
    x = controls[spec.name]
    spec.check(x)
    starts = [sum(spec.field_sizes[:i]) for i in range(len(spec.fields))]
    for field, start, size in zip(spec.fields, starts, spec.field_sizes):
      parts[field] = x[..., start:start + size]
  zeros = jnp.zeros(controls['identity'].shape[:-1] + (3,), controls['identity'].dtype)
  return model.merge_coeffs(model_lib.Coefficients(
      identity=parts['identity'], expression=parts['expression'], texture=parts['texture'],
      angle=zeros, gamma=parts['gamma'], translation=zeros))


@flax.struct.dataclass
class Normalizer:
  """Per-coefficient standardisation: normalize(x) = (x − mean) / std.

  Attributes:
    mean: [d].
    std: [d], floored so constant coefficients map to 0 instead of dividing by 0.
  """
  mean: jnp.ndarray
  std: jnp.ndarray

  @classmethod
  def fit(cls, x: jnp.ndarray, min_std: float = 1e-6) -> 'Normalizer':
    """The statistics of a training set x [n, d]."""
    chex.assert_rank(x, 2)
    return cls(mean=jnp.mean(x, axis=0), std=jnp.maximum(jnp.std(x, axis=0), min_std))

  def normalize(self, x: jnp.ndarray) -> jnp.ndarray:
    """[..., d] coefficients -> [..., d] standardised values."""
    return (x - self.mean) / self.std

  def denormalize(self, y: jnp.ndarray) -> jnp.ndarray:
    """[..., d] standardised values -> [..., d] coefficients."""
    return y * self.std + self.mean


def init_factor(key: jax.Array, spec: FactorSpec):
  """Fresh (vae_params, critic_params) of one factor."""
  vae, critic = spec.networks()
  key_vae, key_critic, key_sample = jax.random.split(key, 3)
  x = jnp.zeros((1, spec.size), jnp.float32)
  return vae.init(key_vae, x, key_sample), critic.init(key_critic, x)


@flax.struct.dataclass
class ControlSpace:
  """The trained factor VAEs: what the generator stages sample controls from.

  Attributes:
    vae_params: {factor name: FactorVAE variables} (encoder for `encode`, decoder for the rest).
    normalizers: {factor name: Normalizer} fitted on that factor's training set.
    specs: the factors (static).
  """
  vae_params: dict[str, Any]
  normalizers: dict[str, Normalizer]
  specs: tuple[FactorSpec, ...] = flax.struct.field(pytree_node=False)

  def spec(self, factor: str) -> FactorSpec:
    for spec in self.specs:
      if spec.name == factor:
        return spec
    raise ValueError(f'Unknown control factor {factor!r}; known: {[s.name for s in self.specs]}.')


def control_space(specs, vae_params: dict[str, Any],
                  normalizers: dict[str, Normalizer]) -> ControlSpace:
  """A ControlSpace from trained per-factor VAE variables and the normalisers of their data."""
  names = {s.name for s in specs}
  for what, given in (('vae_params', vae_params), ('normalizers', normalizers)):
    if set(given) != names:
      raise ValueError(f'{what} must have one entry per factor {sorted(names)}; '
                       f'got {sorted(given)}.')
  for spec in specs:
    spec.check(normalizers[spec.name].mean, 'normaliser means')
  return ControlSpace(dict(vae_params), dict(normalizers), tuple(specs))


def encode(space: ControlSpace, factor: str, x: jnp.ndarray):
  """Posterior (mean, logvar), each [..., latent_size], of coefficients x [..., size]."""
  spec = space.spec(factor)
  spec.check(x)
  vae, _ = spec.networks()
  normalized = space.normalizers[factor].normalize(x)
  return vae.apply(space.vae_params[factor], normalized, method=vae.encode)


def decode(space: ControlSpace, factor: str, z: jnp.ndarray) -> jnp.ndarray:
  """Coefficients [..., size] of latents z [..., latent_size]."""
  spec = space.spec(factor)
  if z.ndim < 1 or z.shape[-1] != spec.latent_size:
    raise ValueError(f'Factor {factor!r} decodes {spec.latent_size} latent values per sample; '
                     f'got an array of shape {z.shape}.')
  vae, _ = spec.networks()
  decoded = vae.apply(space.vae_params[factor], z, method=vae.decode)
  return space.normalizers[factor].denormalize(decoded)


def sample_controls(space: ControlSpace, key: jax.Array, n: int) -> dict[str, jnp.ndarray]:
  """n samples per factor {name: [n, size]} in coefficient units, decoding z ~ N(0, I).

  `n` must be static under jit.
  """
  keys = jax.random.split(key, len(space.specs))
  return {spec.name: decode(space, spec.name, jax.random.normal(k, (n, spec.latent_size)))
          for spec, k in zip(space.specs, keys)}


def _abstract_space(specs: tuple[FactorSpec, ...]) -> ControlSpace:
  """The ControlSpace of `specs` with jax.ShapeDtypeStruct leaves (a restore target)."""

  def build():
    params = {s.name: init_factor(jax.random.PRNGKey(0), s)[0] for s in specs}
    normalizers = {s.name: Normalizer(jnp.zeros(s.size), jnp.ones(s.size)) for s in specs}
    return ControlSpace(params, normalizers, specs)

  return saved.abstract(jax.eval_shape(build))


def save_control_space(space: ControlSpace, directory: str):
  """Writes `space` to directory/{control_space.json, params/} (faceshop_jax.saved, atomically;
  a previous control space there is replaced)."""
  saved.write(directory, _CONFIG_FILE, {'factors': [dataclasses.asdict(s) for s in space.specs]},
              _FORMAT_VERSION, {_PARAMS_DIR: flax.serialization.to_state_dict(space)})


def load_control_space(directory: str) -> ControlSpace:
  """The ControlSpace saved by save_control_space in `directory`."""
  config = saved.read_manifest(directory, _CONFIG_FILE, _FORMAT_VERSION, 'control space',
                               'a vae run writes one to WORKDIR/control_space when it finishes')
  specs = tuple(FactorSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in f.items()})
                for f in config['factors'])
  target = _abstract_space(specs)
  state = saved.restore(directory, _PARAMS_DIR, flax.serialization.to_state_dict(target))
  return flax.serialization.from_state_dict(target, state)


def find_control_space(directory: str, model: model_lib.FaceModel) -> ControlSpace:
  """The control space saved in `directory` or in directory/control_space (a vae run's WORKDIR),
  checked against `model`'s factor sizes.

  Raises:
    FileNotFoundError: neither holds a control space.
    ValueError: its factor sizes differ from `model`'s.
  """
  directory = os.path.abspath(directory)
  for candidate in (directory, os.path.join(directory, 'control_space')):
    if saved.is_saved(candidate, _CONFIG_FILE):
      space = load_control_space(candidate)
      break
  else:
    raise FileNotFoundError(
        f'No control space in {directory} or {os.path.join(directory, "control_space")}; a vae '
        'run writes one to WORKDIR/control_space when it finishes.')
  for spec in factor_specs(model):
    if space.spec(spec.name).size != spec.size:
      raise ValueError(
          f'The control space in {directory} has {space.spec(spec.name).size} {spec.name} '
          f'coefficients; the face model {model.name!r} has {spec.size}. Use a control space '
          'trained on the same face model.')
  return space
