"""Running the training command line from tests."""
import os
import subprocess
import sys

REPO = os.path.join(os.path.dirname(__file__), '..', '..')


def run_main(config: str, workdir: str, *flags: str, timeout: int = 900) -> None:
  """`python -m faceshop_jax.main --config=CONFIG --workdir=WORKDIR FLAGS...` must succeed."""
  result = subprocess.run(
      [sys.executable, '-m', 'faceshop_jax.main', f'--config={config}', f'--workdir={workdir}',
       *flags], cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
