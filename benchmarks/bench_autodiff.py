"""Circuits per input gradient: ``xqml.hadamard_vjp`` against PennyLane's parameter shift.

PennyLane's parameter shift differentiates an ``AmplitudeEmbedding``'s amplitudes through its
decomposition into rotations; ``xqml.hadamard_vjp`` runs one Hadamard test per Pauli word.
For ``n`` qubits (``AmplitudeEmbedding`` + one layer of ``StronglyEntanglingLayers``, output
``<Z_0>``, the weights not trained) this counts, with ``qml.Tracker``, the circuits of one
``backward()`` of the input (forward pass included) and checks that both gradients agree where
PennyLane's is finite (inputs without zero amplitudes).

    python benchmarks/bench_autodiff.py               # 2..6 qubits
    python benchmarks/bench_autodiff.py --max-qubits 8
"""

import argparse

import numpy as np
import pennylane as qml
import torch

import pennylane_xqml as xqml


def circuits(n_qubits: int, rng) -> tuple[int, int, float]:
    dev = qml.device("default.qubit", wires=n_qubits + 1)

    @qml.qnode(dev, interface="torch", diff_method="parameter-shift")
    def model(x, w):
        qml.AmplitudeEmbedding(x, wires=range(n_qubits), normalize=True)
        qml.StronglyEntanglingLayers(w, wires=range(n_qubits))
        return qml.expval(qml.Z(0))

    w = torch.tensor(rng.normal(size=(1, n_qubits, 3)))
    point = rng.uniform(0.1, 1.0, size=2**n_qubits)
    counts, grads = [], []
    for fn in (model, xqml.hadamard_vjp(model)):
        x = torch.tensor(point, requires_grad=True)
        with qml.Tracker(dev) as tracker:
            fn(x, w).backward()
        counts.append(len(tracker.history["resources"]))
        grads.append(x.grad.numpy())
    return counts[0], counts[1], float(np.max(np.abs(grads[0] - grads[1])))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-qubits", type=int, default=6)
    max_qubits = parser.parse_args().max_qubits
    rng = np.random.default_rng(0)
    print(
        f"{'qubits':>6} {'parameter shift':>16} {'hadamard_vjp':>13} {'ratio':>6} {'max |diff|':>11}"
    )
    for n in range(2, max_qubits + 1):
        shift, hadamard, diff = circuits(n, rng)
        print(f"{n:>6} {shift:>16} {hadamard:>13} {shift / hadamard:>6.1f} {diff:>11.1e}")


if __name__ == "__main__":
    main()
