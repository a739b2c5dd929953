"""The README's first example runs as written, in a fresh interpreter with JAX's defaults."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # the fast tier (-m "not slow") leaves this module out

README = Path(__file__).resolve().parents[1] / "README.md"

CHECK = """
import numpy as np
assert attributions.dtype == jax.numpy.float32, attributions.dtype
assert np.all(np.isfinite(attributions)) and abs(float(delta)) < 1e-5, delta
"""


def test_readme_first_example_runs_in_float32():
    block = re.search(r"```python\n(.*?)```", README.read_text(), re.DOTALL).group(1)
    run = subprocess.run(
        [sys.executable, "-c", block + CHECK],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
