"""Collection rules for the whole repository (tests/conftest.py holds the test fixtures)."""

import importlib.util

# pennylane_xqml/catalyst.py is the optional Catalyst route: pennylane-catalyst pins an older
# jax, so it lives in its own virtual environment, where .ci/run executes this module's
# examples (scripts/catalyst/run_catalyst_checks.py). Without Catalyst they cannot run here.
collect_ignore = [] if importlib.util.find_spec("catalyst") else ["pennylane_xqml/catalyst.py"]
