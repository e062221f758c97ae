"""A training run's console is for a person: progress, losses and warnings, no library chatter."""
import logging

from absl import logging as absl_logging

# Libraries whose records below their level are chatter to a person watching a run.
_QUIET_LIBRARIES = {'/orbax/': logging.WARNING, '/jax/': logging.WARNING,
                    '/grain/': logging.WARNING, '/tensorflow_datasets/': logging.ERROR}


class LibraryChatter(logging.Filter):
  """Drops the _QUIET_LIBRARIES' records below their level."""

  def filter(self, record: logging.LogRecord) -> bool:
    return all(part not in record.pathname or record.levelno >= level
               for part, level in _QUIET_LIBRARIES.items())


def quiet_library_logs() -> None:
  """Filters the _QUIET_LIBRARIES' chatter (orbax's per-save INFO lines, tfds' notices, jax's
  backend probing) out of absl's console handler."""
  absl_logging.get_absl_handler().addFilter(LibraryChatter())
