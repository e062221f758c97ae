"""tfds builders (array_record, readable without TensorFlow); importing this package registers them.

- `synthetic_portraits`: rendered from the synthetic portrait world, one record per seed.
- `portrait_folder`: real images + EG3D cameras + per-image face-model coefficients.
- `coefficient_sets`: coefficient vectors alone (for the control-space VAEs).

The library reads what these write with `faceshop_jax.data` and never imports this package.
"""
from data_pipelines.builders.coefficient_sets import CoefficientSets
from data_pipelines.builders.coefficient_sets import CoefficientSetsConfig
from data_pipelines.builders.portrait_folder import PortraitFolder
from data_pipelines.builders.portrait_folder import PortraitFolderConfig
from data_pipelines.builders.synthetic_portraits import SyntheticPortraits
from data_pipelines.builders.synthetic_portraits import SyntheticPortraitsConfig
