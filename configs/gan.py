"""The adversarial warm-up (`gan` stage): the tri-plane GAN on portraits, no imitation losses yet.

  python -m faceshop_jax.main --config=configs/gan.py:cpu --workdir=/tmp/gan

'' is the paper's scale (EG3D/3DFaceShop sizes: planes 3×32 at 256², 48+48 samples, 128² → 512²,
batch 4 per device on 8 devices); 'cpu' trains on the synthetic portrait world at 64² in minutes
on a 2-core CPU (the dataset is built on first use); 'test' is for tests.
"""
import ml_collections

from configs import default


def get_config(preset: str = '') -> ml_collections.ConfigDict:
  """The gan stage config for a preset."""
  config = default.base_config()
  config.stage = 'gan'
  config.batch_size = 32
  config.num_train_steps = 100_000
  config.log_every_steps = 100
  config.summary_every_steps = 2_000
  config.checkpoint_every_steps = 2_000
  config.data = ml_collections.ConfigDict({
      'name': 'synthetic_portraits/r512_n70000',  # or a portrait_folder of aligned real photos
      'data_dir': '',  # '' = tfds' default
      # Build a synthetic_portraits dataset named above on first use (CLI only): (resolution, count).
      'build_synthetic': False,
      'face_model': 'embedded',
  })
  config.model = ml_collections.ConfigDict({
      'noise_dim': 128,  # ε; the control vector is (ε, κ, β, γ)
      # 'per_factor': every factor at unit energy in z (models/build.py); 'raw': coefficients as
      # they are (the ablation: the generator then barely sees β and γ).
      'control_scaling': 'per_factor',
      # Densities per metre per unit of the decoder's softplus, and a head-sized ball added before
      # it so that the field starts visible (nerf.sphere_density_offset); EG3D: 1 and 0.
      'density_scale': 1.0,
      'density_prior_radius': 0.1,
      'density_prior_strength': 0.0,
      # κ, β, γ from a vae run's decoders (its WORKDIR; CoPo's choice), or '' for the control prior.
      'control_space': '',
      'w_dim': 512,
      'mapping_layers': 8,
      'plane_resolution': 256,
      'plane_channels': 32,
      'channel_base': 32768,
      'channel_max': 512,
      'rendering_resolution': 128,
      'sr_resolution': 512,
      'num_coarse': 48,
      'num_fine': 48,
      'chunk_rays': 4096,  # rays per rendering chunk: thousands on accelerators, ~512 on CPU
      'plane_aggregation': 'sum',
      'sr_variant': 'eg3d',
      'sr_channels': (128, 64),
      'fused_modconv': False,  # True is faster on GPU/TPU; False is 10-17x faster on XLA:CPU
      # 'bfloat16': mixed precision (bf16 activations in the synthesis network, renderer and SR;
      # fp32 parameters, optimiser state and losses), for GPUs and TPUs; XLA:CPU emulates bf16.
      'compute_dtype': 'float32',
      'd_channel_base': 32768,
      'd_channel_max': 512,
  })
  config.loss = ml_collections.ConfigDict({
      'kind': 'hinge',  # paper Eq. 12; 'logistic' is CoPo's
      'r1_gamma': 10.0,
      'r1_interval': 16,
      'density_reg': 0.25,
      'density_reg_interval': 4,
      'density_reg_points': 1000,
      'blur_fade_steps': 200_000 // 32,  # EG3D: 200 kimg
      'blur_init_sigma': 10.0,
      'gpc_prob': 0.5,  # generator pose-conditioning swap
      'ema_half_life_images': 10_000,
      # Freeze-D (Mo et al. 2020) for fine-tuning on a new domain: D's first K blocks from the
      # input resolution (fromRGB and the highest-resolution convolutions) keep their weights and
      # get no optimiser state; 0 freezes nothing. At most log2(sr_resolution) − 2 blocks.
      'freeze_d_blocks': 0,
  })
  config.optimizer = ml_collections.ConfigDict({
      'g_learning_rate': 0.002,
      'd_learning_rate': 0.0025,
      'b1': 0.0,
      'b2': 0.99,
  })

  def cpu():
    config.data.name = 'synthetic_portraits/r64_n2000'
    config.data.build_synthetic = True
    config.batch_size = 8
    # As many steps as imitative:cpu, so the two compare at the same step (the paper's Table 4
    # 'w/o imitation' row); ~1.5 s a step alone here.
    config.num_train_steps = 800
    config.log_every_steps = 25
    config.summary_every_steps = 200
    config.checkpoint_every_steps = 200
    config.keep_checkpoints = 10
    config.model.update({
        'noise_dim': 32, 'w_dim': 128, 'mapping_layers': 2, 'plane_resolution': 64,
        'channel_base': 4096, 'channel_max': 64, 'rendering_resolution': 32, 'sr_resolution': 64,
        'num_coarse': 12, 'num_fine': 12, 'chunk_rays': 512, 'sr_channels': (64, 32),
        'd_channel_base': 4096, 'd_channel_max': 64})
    # A field that starts as a visible head-sized ball (mean alpha 0.05 -> a ball opaque at its
    # centre), and EG3D's 10 px blur scaled from 512² to 64² (at 10 px D saw a blank frame).
    config.model.update({'density_scale': 4.0, 'density_prior_strength': 10.0})
    config.loss.blur_init_sigma = 10.0 * 64 / 512
    config.loss.blur_fade_steps = 200
    config.loss.ema_half_life_images = 500

  def test():
    cpu()
    config.data.name = 'synthetic_portraits/r32_n16'
    config.batch_size = 8
    config.num_train_steps = 2
    config.log_every_steps = 1
    config.summary_every_steps = 2
    config.checkpoint_every_steps = 2
    config.model.update({
        'w_dim': 32, 'plane_resolution': 16, 'plane_channels': 8, 'channel_base': 256,
        'channel_max': 16, 'rendering_resolution': 16, 'sr_resolution': 32, 'num_coarse': 4,
        'num_fine': 4, 'chunk_rays': 256, 'sr_channels': (16, 8), 'd_channel_base': 256,
        'd_channel_max': 16})
    config.loss.density_reg_points = 16
    config.loss.r1_interval = 2

  default.select_preset(preset, {'': lambda: None, 'cpu': cpu, 'test': test})
  return config
