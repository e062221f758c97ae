"""In-domain face analysis nets (`analysis` stage): reconstructor, parser and identity embedder.

  python -m faceshop_jax.main --config=configs/analysis.py:cpu --workdir=/tmp/analysis

Trained on portraits of the synthetic world rendered on the fly (exact coefficients, landmarks,
parsing and identities); exported to WORKDIR/analysis for the imitative and evaluation stages.
'' is the public architectures' sizes (ResNet-50 reconstructor, ResNet-18 BiSeNet, iresnet-50) at
224² for accelerators; 'cpu' small nets at 64² on a 2-core CPU; 'test' is for tests.
"""
import ml_collections

from configs import default


def get_config(preset: str = '') -> ml_collections.ConfigDict:
  """The analysis stage config for a preset."""
  config = default.base_config()
  config.stage = 'analysis'
  config.batch_size = 128  # portraits: batch_size / views identities per step
  config.num_train_steps = 100_000
  config.log_every_steps = 100
  config.summary_every_steps = 2_000
  config.checkpoint_every_steps = 5_000
  config.data = ml_collections.ConfigDict({
      'resolution': 224,  # portraits are rendered at this size; every net's input size
      'views': 4,  # portraits of each identity in a batch
      'statistics_samples': 16_384,  # prior draws for the reconstructor's target standardisation
      'heldout_identities': 512,
  })
  config.nets = ml_collections.ConfigDict({
      'reconstructor': {'backbone': {'block': 'bottleneck', 'stage_sizes': (3, 4, 6, 3),
                                     'width': 64}},
      'parser': {'backbone': {'block': 'basic', 'stage_sizes': (2, 2, 2, 2), 'width': 64},
                 'context_width': 128, 'fuse_width': 256, 'head_width': 256,
                 'aux_head_width': 64},
      'identity': {'stage_blocks': (3, 4, 14, 3), 'width': 64, 'num_features': 512},
  })
  # The nets this run trains and exports (any of reconstructor, parser, identity).
  config.roles = ('reconstructor', 'parser', 'identity')
  config.loss = ml_collections.ConfigDict({
      'expression_weight': 1.0,  # the β head's weight in the standardised regression
      'landmark_weight': 100.0,  # on squared landmark error in image-side units
      'identity_scale': 30.0,  # CosFace s
      'identity_margin': 0.35,  # CosFace m
  })
  config.optimizer = ml_collections.ConfigDict({'learning_rate': 1e-3, 'weight_decay': 1e-4})

  def cpu():
    config.batch_size = 32
    config.num_train_steps = 1_000
    config.log_every_steps = 50
    config.summary_every_steps = 500
    config.checkpoint_every_steps = 500
    config.data.resolution = 64
    config.data.heldout_identities = 128
    config.data.statistics_samples = 4_096
    config.nets.reconstructor.backbone.update({'block': 'basic', 'stage_sizes': (1, 1, 1, 1),
                                               'width': 16})
    config.nets.parser.backbone.update({'stage_sizes': (1, 1, 1, 1), 'width': 16})
    config.nets.parser.update({'context_width': 32, 'fuse_width': 64, 'head_width': 32,
                               'aux_head_width': 16})
    config.nets.identity.update({'stage_blocks': (1, 1, 1, 1), 'width': 16, 'num_features': 128})
    config.loss.identity_scale = 16.0
    config.loss.identity_margin = 0.2

  def judge():
    """The independent judge of control accuracy (packaged as 'judge64'): a reconstructor only,
    another seed (other training people) than 'synthetic64', wider and trained longer, with the
    expression head weighted up so that it reads β. Evaluation uses it, never a loss."""
    cpu()
    config.seed = 1
    config.roles = ('reconstructor',)
    config.num_train_steps = 4_000  # ~40 minutes here
    config.nets.reconstructor.backbone.update({'stage_sizes': (2, 2, 2, 2), 'width': 32})
    config.loss.expression_weight = 4.0

  def test():
    cpu()
    config.batch_size = 8
    config.num_train_steps = 2
    config.log_every_steps = 1
    config.summary_every_steps = 2
    config.checkpoint_every_steps = 2
    config.data.resolution = 32
    config.data.heldout_identities = 4
    config.data.statistics_samples = 64
    config.nets.reconstructor.backbone.width = 8
    config.nets.parser.backbone.width = 8
    config.nets.parser.update({'context_width': 8, 'fuse_width': 16, 'head_width': 8,
                               'aux_head_width': 8})
    config.nets.identity.update({'width': 8, 'num_features': 16})

  default.select_preset(preset, {'': lambda: None, 'cpu': cpu, 'judge': judge, 'test': test})
  return config
