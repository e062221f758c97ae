"""SIGTERM (a preempted TPU VM, a cluster scheduler) as a request to checkpoint and stop.

  with preemption.SigtermRequest() as sigterm:
    for step in ...:
      ...
      if sigterm.requested():
        ...  # save this step's checkpoint, stop

While inside, SIGTERM only sets a flag (a second one during the save changes nothing); the previous
handler is restored on leaving. SIGINT is left alone.
"""
import signal
import threading

import jax
from jax.experimental import multihost_utils
import numpy as np


class SigtermRequest:
  """A context manager that turns SIGTERM into a flag that every process agrees on.

  The handler is installed only in the main thread (the only one Python delivers signals to);
  elsewhere requested() stays False unless another process got the signal.
  """

  def __init__(self):
    self._received = False
    self._installed = False
    self._previous = None

  def __enter__(self) -> 'SigtermRequest':
    if threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM, self._handle)
      self._installed = True
    return self

  def __exit__(self, *exc_info) -> None:
    if self._installed:
      # None: the previous handler was not installed from Python; the default is the nearest.
      signal.signal(signal.SIGTERM,
                    signal.SIG_DFL if self._previous is None else self._previous)
      self._installed = False

  def _handle(self, signum, frame) -> None:
    del signum, frame
    self._received = True

  def requested(self) -> bool:
    """Whether any process has received SIGTERM.

    With several processes this is a collective (every process must call it at the same steps),
    so that all stop at the same step; a single process only reads its flag.
    """
    if jax.process_count() == 1:
      return self._received
    return bool(np.any(multihost_utils.process_allgather(np.int32(self._received))))
