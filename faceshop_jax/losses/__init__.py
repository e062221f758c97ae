"""Losses of the generator stages: GAN objectives and stabilisers (gan.py), imitation (imitative.py),
disentanglement (disentangle.py)."""
from faceshop_jax.losses import disentangle
from faceshop_jax.losses import gan
from faceshop_jax.losses import imitative
from faceshop_jax.losses.gan import ADVERSARIAL_KINDS
from faceshop_jax.losses.gan import blur_sigma
from faceshop_jax.losses.gan import density_regularization
from faceshop_jax.losses.gan import discriminator_loss
from faceshop_jax.losses.gan import ema_decay_from_half_life
from faceshop_jax.losses.gan import ema_update
from faceshop_jax.losses.gan import generator_loss
from faceshop_jax.losses.gan import lazy_adam_hyperparameters
from faceshop_jax.losses.gan import lazy_weight
from faceshop_jax.losses.gan import r1_penalty
from faceshop_jax.losses.gan import swap_conditioning
from faceshop_jax.losses.gan import swap_probability
