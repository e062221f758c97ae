"""Reading prepared datasets (tfds array_record + grain); building them lives in data_pipelines/."""
from faceshop_jax.data.generated import generated_batches
from faceshop_jax.data.input_pipeline import batched_dataset
from faceshop_jax.data.input_pipeline import make_eval_iterator
from faceshop_jax.data.input_pipeline import make_train_iterator
from faceshop_jax.data.input_pipeline import open_split
