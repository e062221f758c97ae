"""Imitative learning (`imitative` stage, paper §4.3.1): the main job.

  python -m faceshop_jax.main --config=configs/imitative.py:cpu --workdir=/tmp/imitative

'' is the paper's settings for GPU/TPU (batch 4 per device, 300k iterations, lr G 0.002 / D 0.0025,
Adam β (0, 0.99), λ_tex 10, λ_id 10, λ_lmk 10, λ_ill 1e3, λ_ce 10, 48+48 samples, 128² → 512²), reading
portraits from config.data.name and the analysis nets (converted Deep3DFaceRecon, BiSeNet, ArcFace)
from config.imitative.analysis_dir; 'cpu' runs on the embedded synthetic world at 64² on a 2-core CPU
with the in-domain analysis nets shipped in the package ('synthetic64'), and is judged at the end
by the independently trained reconstructor 'judge64'; 'test' is for tests.
"""
import ml_collections

from configs import default
from configs import gan


def get_config(preset: str = '') -> ml_collections.ConfigDict:
  """The imitative stage config for a preset."""
  config = gan.get_config(preset)
  config.stage = 'imitative'
  config.num_train_steps = 300_000 if preset == '' else config.num_train_steps
  config.imitative = ml_collections.ConfigDict({
      # A directory with {reconstructor,parser,identity}/ (weights.load_role_net), or the name of
      # nets shipped in the package ('synthetic64': trained by configs/analysis.py:cpu).
      'analysis_dir': '',
      'imitative_start': 5_000,  # adversarial warm-up steps (CoPo), then imitation
      'semantic_start': 20_000,  # then also L_ce (CoPo)
      'weights': {'texture': 10.0, 'identity': 10.0, 'landmarks': 10.0, 'illumination': 1e3,
                  'semantic': 10.0},
      # Control accuracy at the end (paper §5.4.2): identities x variations generated images, read
      # by the judge (a reconstructor trained apart from every net a loss uses; identities 0 skips).
      'evaluation': {'identities': 1000, 'variations': 10, 'seed': 0, 'judge': 'judge64'},
  })

  def cpu():
    config.imitative.analysis_dir = 'synthetic64'
    # gan:cpu's 800 steps (the 30-minute budget here) and checkpoints every 200, imitating from the
    # first step (the blur is scaled to 64² and fades in 200 steps, so D is not blind), L_ce once
    # there is a face to parse.
    config.imitative.imitative_start = 0
    config.imitative.semantic_start = 200
    config.imitative.evaluation.update({'identities': 50, 'variations': 4})
    # The paper's λ are for its norms on 512² BFM renders; in those norms here the weighted L_lmk
    # (Σ w_i over 3,038 of landmark weight) is ~100× the others. These put L_tex first (~5 at the
    # start: the face must copy R) and every other weighted term near 1.
    config.imitative.weights.update({'texture': 10.0, 'identity': 1.0, 'landmarks': 0.02,
                                     'illumination': 3.0, 'semantic': 0.3})

  def test():
    cpu()
    config.num_train_steps = 1  # one compiled step variant (R1 + density) with every term on
    config.checkpoint_every_steps = 1
    config.summary_every_steps = 1
    config.imitative.imitative_start = 0
    config.imitative.semantic_start = 0
    config.imitative.evaluation.update({'identities': 2, 'variations': 2})

  default.select_preset(preset, {'': lambda: None, 'cpu': cpu, 'test': test})
  return config
