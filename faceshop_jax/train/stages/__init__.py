"""Training stages, one module each; registered by name in faceshop_jax/train/stage.py."""
