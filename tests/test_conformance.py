"""The conformance suite: every hardware-ready method on every installed device plugin,
compared with analytic default.qubit (see :mod:`pennylane_xqml.conformance`).

Plugins outside the project's dependencies (Amazon Braket's local simulator,
lightning.kokkos, qulacs) come with the ``devices`` extra; ``.ci/run`` installs it in a separate venv and
runs this file there. A plugin that is not installed is reported as such, not as a pass.
"""

import importlib.util

import pennylane as qml
import pytest

from pennylane_xqml.conformance import conformance_rows
from pennylane_xqml.noise import fake_backend_device

pytestmark = pytest.mark.slow  # the fast tier (-m "not slow") leaves this module out

DEVICES = {
    # name: (module that provides it, make_device(wires), shots)
    "default.mixed": (None, lambda w: qml.device("default.mixed", wires=w), None),
    "lightning.qubit": (None, lambda w: qml.device("lightning.qubit", wires=w), None),
    "lightning.kokkos": ("pennylane_lightning.lightning_kokkos_ops",
                         lambda w: qml.device("lightning.kokkos", wires=w), None),
    "braket.local.qubit": ("braket.pennylane_plugin",
                           lambda w: qml.device("braket.local.qubit", wires=w), None),
    "qulacs.simulator": ("qulacs", lambda w: qml.device("qulacs.simulator", wires=w), None),
    "default.qubit (shots)": (None, lambda w: qml.device("default.qubit", wires=w, seed=5), 20_000),
    "qiskit.aer (shots)": ("pennylane_qiskit", lambda w: qml.device("qiskit.aer", wires=w, seed=11), 20_000),
    "qiskit.remote FakeManilaV2, noiseless (shots)": (
        "qiskit_ibm_runtime", lambda w: fake_backend_device(w, seed=3, noise=False), 20_000),
}  # fmt: skip


def installed(module):
    """Whether ``module`` (possibly inside a package that is missing) can be imported."""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


@pytest.mark.parametrize("name", list(DEVICES))
def test_every_method_conforms(name):
    module, make_device, shots = DEVICES[name]
    if module is not None and not installed(module):
        pytest.skip(f"{name}: plugin not installed here (the `devices` extra installs it)")
    rows = conformance_rows(name, make_device, shots=shots)
    failures = [row for row in rows if not row.ok]
    assert not failures, failures
