"""Noisy devices and zero-noise extrapolation for explanations (issue 5, part 3).

Every attribution method builds its own circuits (Hadamard tests that append ``U†`` to the
traced operations, parameter-shifted copies, compute-uncompute fidelity circuits), so noise must
not be written into the user's QNode: a ``qml.DepolarizingChannel`` inside the circuit would be
"uncomputed" by the Hadamard tests and refused by ``fold_global``. Here noise and mitigation are
properties of the **device**, and land on exactly the circuits an explanation executes:

* :func:`depolarizing_device`: ``default.mixed`` with a ``qml.NoiseModel`` (added by
  ``qml.add_noise`` as the *last* step of the device's compile pipeline) that applies
  ``DepolarizingChannel(p)`` to every wire of every gate, after the gate. A state preparation
  (``StatePrep`` / ``AmplitudeEmbedding``, native on ``default.mixed``) counts as one gate.
* :func:`fake_backend_device`: Qiskit Aer with the noise model, basis gates and coupling map of
  an IBM backend snapshot that ships with ``qiskit-ibm-runtime`` (default ``FakeManilaV2``: 5
  qubits on a line, enough for a 4-qubit model, or a 3-qubit amplitude model plus the Hadamard
  test's ancilla). No network: the calibration data is packaged. It is PennyLane's
  ``qiskit.remote`` device on ``AerSimulator.from_backend(...)``, not ``qiskit.aer``: the
  ``qiskit.aer`` device transpiles with ``routing_method="none"``, so any circuit with a CNOT
  between qubits that are not neighbours on the backend (a 3-qubit ``StatePrep`` already has
  one) fails to transpile, and giving ``qiskit.aer`` only the backend's ``noise_model`` would run
  such CNOTs without noise or SWAPs. ``qiskit.remote`` routes like real hardware.
* :class:`ZNE`: zero-noise extrapolation, ``qml.noise.mitigate_with_zne`` applied to the
  **device** (a PennyLane transform applied to a device joins the end of its compile pipeline),
  so every circuit an explanation sends is folded (``qml.noise.fold_global`` with scale factors
  ``λ``, inverses written as native gates) and its results extrapolated to ``λ = 0``
  (Richardson, or a linear fit). The folding must happen *before* the noise is inserted:
  :func:`depolarizing_device` applies ZNE first and noise after it; for Aer and hardware the
  noise is physical and comes last anyway. ``mitigate_with_zne`` never folds the leading state
  preparation, so the noise on a ``StatePrep`` is not amplified and not removed.

Limits (measured in :mod:`pennylane_xqml.experiments.reproductions.noise_study`):

* With shots, the ``stderr`` an explanation returns under ZNE is **not** the standard error of
  the mitigated estimate: it is computed from the extrapolated probabilities as if they had been
  sampled directly (Richardson's weights for ``λ = 1, 3, 5`` amplify the shot noise by about
  ``√(1.875² + 1.25² + 0.375²) ≈ 2.3``; measured on the study's amplitude IG at ``p = 0.01``
  with 2000 shots: reported 0.004-0.010, spread over 8 seeds 0.007-0.028), and it may be NaN
  when an extrapolated probability leaves ``[0, 1]``. Use the spread of repeated runs instead.
* Methods that need the state vector (``gradient="adjoint"``/``"backprop"`` on amplitudes,
  ``qpert.state_fidelity``) do not apply: noisy devices need the circuit rules
  (``"hadamard_all"``, ``"hadamard"``, ``"parameter-shift"``).

>>> dev = depolarizing_device(wires=1, p=0.1)
>>> @qml.qnode(dev)
... def circuit():
...     qml.X(0)
...     return qml.expval(qml.Z(0))
>>> round(float(circuit()), 6)   # -(1 - 4p/3)
-0.866667
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
import pennylane as qml

from .engine.validation import check_bool, is_int, is_real

__all__ = [
    "DEFAULT_FAKE_BACKEND",
    "EXTRAPOLATIONS",
    "ZNE",
    "depolarizing_device",
    "depolarizing_noise_model",
    "fake_backend_device",
    "fold_global_native",
    "on_device",
]

DEFAULT_FAKE_BACKEND = "FakeManilaV2"
EXTRAPOLATIONS = ("richardson", "linear")


def _check_wires(wires):
    if isinstance(wires, bool) or not isinstance(
        wires, (numbers.Integral, list, tuple, range, qml.wires.Wires)
    ):
        raise TypeError(
            f"wires must be a positive int or a sequence of wire labels, got {wires!r}."
        )
    if isinstance(wires, numbers.Integral) and wires < 1:
        raise ValueError(f"wires must be a positive int or a sequence of wire labels, got {wires}.")
    return int(wires) if isinstance(wires, numbers.Integral) else list(wires)


def _n_wires(wires):
    return wires if isinstance(wires, int) else len(wires)


# ---------------------------------------------------------------------------------------------
# zero-noise extrapolation
# ---------------------------------------------------------------------------------------------


def fold_global_native(tape, scale_factor):
    """``qml.noise.fold_global`` with every folded inverse written as a gate (``RY(-θ)`` for
    ``Adjoint(RY(θ))``, ``H`` for ``Adjoint(H)``).

    :class:`ZNE` folds the circuits at the end of the device's compile pipeline, after the
    device has decomposed them into its gates; the plain ``Adjoint(...)`` wrappers would not be
    gates the device (e.g. Qiskit's converter) knows.

    >>> tape = qml.tape.QuantumScript([qml.RY(0.5, 0), qml.H(0)], [qml.expval(qml.Z(0))])
    >>> fold_global_native(tape, 3).operations
    [RY(0.5, wires=[0]), H(0), H(0), RY(-0.5, wires=[0]), RY(0.5, wires=[0]), H(0)]
    """
    [folded], _ = qml.noise.fold_global(tape, scale_factor)
    ops = [
        qml.adjoint(op.base, lazy=False) if isinstance(op, qml.ops.op_math.Adjoint) else op
        for op in folded.operations
    ]
    return folded.copy(operations=ops)


def _linear_extrapolate(x, y):
    return qml.noise.poly_extrapolate(x, y, 1)


_EXTRAPOLATORS = {"richardson": qml.noise.richardson_extrapolate, "linear": _linear_extrapolate}


def _zne_of(tape, scale_factors, extrapolate):
    """``qml.noise.mitigate_with_zne`` with :func:`fold_global_native`, keeping the result
    container of the device: ``qiskit.remote`` returns a 1-tuple for a tape with one
    measurement (its own pipeline unpacks it later), which ``mitigate_with_zne`` would squeeze
    to a scalar."""
    tapes, extrapolated = qml.noise.mitigate_with_zne(
        tape, scale_factors, fold_global_native, extrapolate
    )

    def postprocess(results):
        value = extrapolated(results)
        if isinstance(results[0], tuple) and not isinstance(value, tuple):
            return (value,)
        return value

    return tapes, postprocess


@qml.transform
def _mitigate_with_zne(tape, scale_factors, extrapolate):
    """Every circuit folded and extrapolated (:func:`_zne_of`); a parameter-broadcast tape is
    mitigated row by row (the extrapolation fits over the results' first axis) and its rows'
    values are stacked again."""
    if tape.batch_size is None:
        return _zne_of(tape, scale_factors, extrapolate)
    rows, stack = qml.transforms.broadcast_expand(tape)
    parts = [_zne_of(row, scale_factors, extrapolate) for row in rows]

    def postprocess(results):
        values, start = [], 0
        for tapes, extrapolated in parts:
            values.append(extrapolated(results[start : start + len(tapes)]))
            start += len(tapes)
        return stack(values)

    return [t for tapes, _ in parts for t in tapes], postprocess


@dataclass(frozen=True)
class ZNE:
    """Zero-noise extrapolation settings; :meth:`apply` adds it to a device.

    Args:
        scale_factors: noise scale factors ``λ ≥ 1`` (at least two, distinct; ``λ = 1`` is the
            circuit itself, ``λ = 3`` is ``U U† U``). Each circuit runs once per factor.
        extrapolation: ``"richardson"`` (polynomial through all points) or ``"linear"``
            (least-squares line).

    >>> ZNE(scale_factors=(1, 3), extrapolation="linear")
    ZNE(scale_factors=(1.0, 3.0), extrapolation='linear')
    >>> ZNE(scale_factors=(1,))
    Traceback (most recent call last):
    ...
    ValueError: scale_factors must hold at least two distinct numbers >= 1 (e.g. (1, 3, 5)); got (1,).
    """

    scale_factors: tuple = (1, 3, 5)
    extrapolation: str = "richardson"

    def __post_init__(self):
        factors = self.scale_factors
        valid = (
            isinstance(factors, (list, tuple, np.ndarray))
            and len(factors) >= 2
            and all(is_real(s) for s in factors)
            and all(np.isfinite(s) and s >= 1 for s in factors)
            and len({float(s) for s in factors}) == len(factors)
        )
        if not valid:
            raise ValueError(
                "scale_factors must hold at least two distinct numbers >= 1 (e.g. (1, 3, 5)); "
                f"got {factors!r}."
            )
        if self.extrapolation not in EXTRAPOLATIONS:
            raise ValueError(
                f"Unknown extrapolation={self.extrapolation!r}; expected one of {EXTRAPOLATIONS}."
            )
        object.__setattr__(self, "scale_factors", tuple(float(s) for s in factors))

    def apply(self, device):
        """``device`` with every circuit folded and extrapolated to zero noise.

        The device's noise must act *after* the folding: physical noise (Aer, hardware) does;
        noise added with ``qml.add_noise`` must be added to the returned device, not before
        (:func:`depolarizing_device` does so), otherwise a ``ValueError`` is raised.
        """
        if not isinstance(device, qml.devices.Device):
            raise TypeError(f"ZNE applies to a PennyLane device, got {type(device).__name__}.")
        noise_step = qml.add_noise.tape_transform
        if any(t.tape_transform is noise_step for t in device.preprocess_transforms()):
            raise ValueError(
                "The device already inserts noise with qml.add_noise, and folding circuits that "
                "contain noise channels is not possible; apply ZNE to the noiseless device and "
                "add the noise afterwards (depolarizing_device(..., zne=ZNE()) does this)."
            )
        return _mitigate_with_zne(
            device,
            scale_factors=list(self.scale_factors),
            extrapolate=_EXTRAPOLATORS[self.extrapolation],
        )


def _check_zne(zne):
    if zne is not None and not isinstance(zne, ZNE):
        raise TypeError(f"zne must be None or a ZNE(...) instance, got {type(zne).__name__}.")


# ---------------------------------------------------------------------------------------------
# noisy devices
# ---------------------------------------------------------------------------------------------


def _every_gate(op):  # the condition of the noise model (a named function: readable repr)
    return True


def depolarizing_noise_model(p):
    """A ``qml.NoiseModel``: ``DepolarizingChannel(p)`` on each wire of every gate, after it.

    >>> depolarizing_noise_model(0.01)
    NoiseModel({
        BooleanFn(_every_gate): depolarize_each_wire
    }, p = 0.01)
    """
    p = _check_probability(p)

    def depolarize_each_wire(op, p, **_):
        for wire in op.wires:
            qml.DepolarizingChannel(p, wires=wire)

    return qml.NoiseModel({qml.BooleanFn(_every_gate): depolarize_each_wire}, p=p)


def _check_probability(p):
    if not is_real(p) or not 0 <= p <= 1:
        raise ValueError(f"p must be a probability in [0, 1], got {p!r}.")
    return float(p)


def depolarizing_device(wires, p, zne=None, seed=None):
    """``default.mixed`` where every gate is followed by ``DepolarizingChannel(p)`` on its wires.

    Args:
        wires: number of wires or their labels. Hadamard-test gradients of amplitude models
            (``gradient="hadamard_all"``) need one wire more than the model uses.
        p (float): depolarising probability per gate and wire, in ``[0, 1]``.
        zne (ZNE or None): zero-noise extrapolation, applied before the noise (see module).
        seed: seed of the device's sampler (shots are set on the QNode: ``qml.set_shots``).

    >>> dev = depolarizing_device(wires=2, p=0.0)
    >>> dev.name, len(dev.wires)
    ('default.mixed', 2)
    """
    wires, p = _check_wires(wires), _check_probability(p)
    _check_zne(zne)
    device = qml.device("default.mixed", wires=wires, seed=seed)
    if zne is not None:
        device = zne.apply(device)
    return qml.add_noise(device, depolarizing_noise_model(p))


def _fake_backend(backend):
    try:
        from qiskit.providers import BackendV2  # pylint: disable=import-outside-toplevel
        from qiskit_ibm_runtime import fake_provider  # pylint: disable=import-outside-toplevel
    except ImportError as error:  # pragma: no cover - optional extra
        raise ImportError(
            "fake_backend_device needs the optional extra: pip install pennylane-xqml[qiskit]"
        ) from error
    if isinstance(backend, BackendV2):
        return backend
    names = sorted(n for n in dir(fake_provider) if n.startswith("Fake") and n.endswith("V2"))
    names = [n for n in names if n != "FakeProviderForBackendV2"]
    if not isinstance(backend, str) or backend not in names:
        raise ValueError(
            f"backend must be the name of a fake IBM backend of qiskit_ibm_runtime.fake_provider "
            f"(e.g. {DEFAULT_FAKE_BACKEND!r}; available: {', '.join(names)}) or a qiskit "
            f"BackendV2; got {backend!r}."
        )
    return getattr(fake_provider, backend)()


def fake_backend_device(
    wires, backend=DEFAULT_FAKE_BACKEND, zne=None, seed=None, optimization_level=0, readout_error=True,
    noise=True,
):  # fmt: skip
    """A Qiskit Aer simulation of an IBM backend snapshot (noise model, basis gates, coupling map).

    Args:
        wires: number of wires or their labels (at most the backend's qubits; wire ``k`` is the
            backend's qubit ``k`` with ``optimization_level=0``).
        backend: a name from ``qiskit_ibm_runtime.fake_provider`` (default ``"FakeManilaV2"``)
            or a qiskit ``BackendV2``.
        zne (ZNE or None): zero-noise extrapolation of every circuit.
        seed: seed of the Aer simulator (runs are reproducible).
        optimization_level: Qiskit transpiler level. The default 0 keeps the gates as given
            (trivial layout, routing with SWAPs where needed); higher levels can cancel the
            ``U U†`` pairs of ZNE's folding and so undo it.
        readout_error (bool): include the backend's measurement errors (``False``: gate and
            idle noise only; ZNE cannot remove readout errors, see the noise study).
        noise (bool): ``False`` keeps the backend's basis gates, coupling map and routing but
            no noise: the same code path, noiseless (the conformance suite checks it against
            default.qubit).

    Shots are set on the QNode (``qml.set_shots``); the device samples, it has no analytic mode.

    >>> fake_backend_device(wires=6)
    Traceback (most recent call last):
    ...
    ValueError: wires=6 asks for 6 qubits, but fake_manila has 5.
    """
    wires = _check_wires(wires)
    _check_zne(zne)
    if optimization_level not in (0, 1, 2, 3) or isinstance(optimization_level, bool):
        raise ValueError(f"optimization_level must be 0, 1, 2 or 3, got {optimization_level!r}.")
    check_bool(readout_error, "readout_error")
    check_bool(noise, "noise")
    snapshot = _fake_backend(backend)
    if _n_wires(wires) > snapshot.num_qubits:
        raise ValueError(
            f"wires={wires!r} asks for {_n_wires(wires)} qubits, but {snapshot.name} has "
            f"{snapshot.num_qubits}."
        )
    from qiskit_aer import AerSimulator  # pylint: disable=import-outside-toplevel
    from qiskit_aer.noise import NoiseModel  # pylint: disable=import-outside-toplevel

    noise_model = (
        NoiseModel.from_backend(snapshot, readout_error=readout_error)
        if noise
        else NoiseModel(
            basis_gates=[g for g in snapshot.operation_names if g not in ("measure", "delay")]
        )
    )
    simulator = AerSimulator.from_backend(snapshot, noise_model=noise_model, seed_simulator=seed)
    device = qml.device(
        "qiskit.remote",
        wires=wires,
        backend=simulator,
        optimization_level=optimization_level,
        seed_transpiler=seed,  # routing is randomised: fixed with the seed, so runs repeat
    )
    return device if zne is None else zne.apply(device)


def on_device(qnode, device, shots=None):
    """A copy of ``qnode`` that runs on ``device`` (with ``shots``; ``None``: analytic).

    >>> @qml.qnode(qml.device("default.qubit", wires=1))
    ... def f(x):
    ...     qml.RX(x, 0)
    ...     return qml.expval(qml.Z(0))
    >>> noisy = on_device(f, depolarizing_device(wires=1, p=0.3))
    >>> round(float(noisy(0.0)), 6)   # the RX gate is followed by depolarising noise: 1 - 4p/3
    0.6
    """
    if not isinstance(qnode, qml.QNode):
        raise TypeError(f"on_device copies a qml.QNode, got {type(qnode).__name__}.")
    if not isinstance(device, qml.devices.Device):
        raise TypeError(f"device must be a PennyLane device, got {type(device).__name__}.")
    if shots is not None and (not is_int(shots) or shots < 1):
        raise ValueError(f"shots must be None (analytic) or a positive int, got {shots!r}.")
    return qml.set_shots(qnode.update(device=device), shots=shots)
