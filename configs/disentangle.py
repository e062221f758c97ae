"""Disentanglement learning (`disentangle` stage, paper §4.3.2), from an imitative run.

  python -m faceshop_jax.main --config=configs/disentangle.py:cpu --workdir=/tmp/disentangle \
      --config.init_from=/tmp/imitative

'' is the paper's: 100k iterations at batch 2 per device (8 devices), λ^β_id 100, λ_flow 50,
λ_lip 100, L^κ_dis and L^γ_dis unweighted, with every stage-1 term on; 'cpu' continues an
imitative:cpu run on the synthetic world; 'ablation' is a shorter cpu for the ablation table's
repeated runs; 'test' is for tests. Each weight set to 0 leaves its term
out (the ablation rows of the paper's Table 5).
"""
import ml_collections

from configs import default
from configs import imitative


def get_config(preset: str = '') -> ml_collections.ConfigDict:
  """The disentangle stage config for a preset."""
  config = imitative.get_config('cpu' if preset == 'ablation' else preset)
  config.stage = 'disentangle'
  config.imitative.imitative_start = 0  # stage 1 has converged: every imitation term from the start
  config.imitative.semantic_start = 0
  config.loss.blur_init_sigma = 0.0  # and D's blur has faded (the step count starts again at 0)
  if preset == '':
    config.batch_size = 16
    config.num_train_steps = 100_000
  config.disentangle = ml_collections.ConfigDict({
      # Eq. 23 = L^κ_dis ('identity', Eq. 18) + L^γ_dis ('illumination', Eq. 19) + L^β_dis
      # (Eq. 22 = λ^β_id 'expression_identity' + λ_flow 'expression_flow' + λ_lip 'expression_lip').
      'weights': {'identity': 1.0, 'illumination': 1.0, 'expression_identity': 100.0,
                  'expression_flow': 50.0, 'expression_lip': 100.0},
      # Disentanglement scores at the end (paper §5.4.3): `bases` portraits, each with
      # `variations` edits of one factor at a time, read by config.imitative.evaluation.judge.
      'evaluation': {'bases': 1000, 'variations': 4, 'seed': 0},
  })

  def cpu():
    config.batch_size = 4  # each sample is rendered 4 times (base + 3 partners)
    config.num_train_steps = 400
    # The paper's λ are for its norms at 512²; here its λ_lip made L_lip ~760 and L^γ_dis (whose
    # L_lmk is in pixels over 68 weighted points) ~60 against ~11 for all of stage 1. These put
    # each weighted term near 1 at the start, as imitative:cpu does.
    config.disentangle.weights.update({'identity': 4.0, 'illumination': 0.02,
                                       'expression_identity': 10.0, 'expression_flow': 10.0,
                                       'expression_lip': 0.1})
    config.disentangle.evaluation.update({'bases': 50, 'variations': 4})

  def ablation():
    # The Table 5 rows here: a quarter of cpu()'s steps, evaluated on fewer portraits, so that
    # three seeds of each row fit in an afternoon on 2 cores.
    cpu()
    config.num_train_steps = 100
    config.checkpoint_every_steps = 100
    config.summary_every_steps = 100
    config.imitative.evaluation.update({'identities': 25, 'variations': 4})
    config.disentangle.evaluation.update({'bases': 24, 'variations': 4})

  def test():
    cpu()
    config.batch_size = 8
    config.num_train_steps = 1
    config.imitative.evaluation.identities = 0
    config.disentangle.evaluation.bases = 0

  default.select_preset(preset, {'': lambda: None, 'cpu': cpu, 'ablation': ablation,
                                 'test': test})
  return config
