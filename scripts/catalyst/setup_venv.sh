#!/usr/bin/env bash
# Create a separate virtual environment with PennyLane's compiler Catalyst.
#
# pennylane-catalyst 0.15 pins jax/jaxlib 0.7.1 (the default environment has a
# newer jax), so it cannot be installed next to the project's main environment.
# Usage:  bash scripts/catalyst/setup_venv.sh [VENV_DIR]   (default /tmp/catalyst-venv)
set -euo pipefail
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
VENV="${1:-/tmp/catalyst-venv}"
START=$(date +%s)

python -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
# Catalyst resolves its own pennylane / pennylane-lightning / jax pins.
"$VENV/bin/python" -m pip install --quiet "pennylane-catalyst==0.15.*" optax
# Our package on top without re-resolving its dependencies (its pins are
# checked below rather than enforced by pip).
"$VENV/bin/python" -m pip install --quiet --no-deps -e "$REPO"
# The package's remaining runtime dependencies that catalyst does not bring.
"$VENV/bin/python" -m pip install --quiet autograd scikit-learn matplotlib tqdm

"$VENV/bin/python" - <<'PY'
from importlib.metadata import version
for name in ["pennylane-catalyst", "pennylane", "pennylane-lightning", "jax", "jaxlib", "numpy"]:
    print(f"{name:22s} {version(name)}")
PY
echo "venv ready in $(( $(date +%s) - START )) s: $VENV"
