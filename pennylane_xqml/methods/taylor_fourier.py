r"""Taylor-Fourier relevance: the all-order single-feature Taylor sum of a PQC around a root.

For a model ``f`` and a reference point ``x̃`` (ideally a *root*, ``f(x̃) ≈ 0``), regroup the
Taylor series of ``f`` around ``x̃`` by feature:

.. math::

    f(x) = f(\tilde x) + \sum_i \underbrace{\sum_{k \ge 1} \frac{\partial_i^k f(\tilde x)}{k!}
    (x_i - \tilde x_i)^k}_{R_i(x)} + \varepsilon(x),

where ``ε`` holds every mixed-derivative (cross) term. Along feature ``i`` the model is the
univariate function ``g_i(t) = f(x̃ + t e_i)``, whose ``k``-th derivative at 0 is
``∂_i^k f(x̃)``; a PQC is a trigonometric polynomial in each angle-encoded feature, hence an
entire function whose Taylor series converges everywhere, so

.. math:: R_i(x) = \sum_{k \ge 1} \frac{g_i^{(k)}(0)}{k!} \delta_i^k = g_i(\delta_i) - g_i(0),
    \qquad \delta_i = x_i - \tilde x_i .

*Frequency 1* (each feature enters one Pauli-rotation angle ``θ = ±x_i + c``):
``g_i(t) = a + b cos t + c sin t``, so ``g_i'(0) = c``, ``g_i''(0) = -b`` and

.. math:: R_i(x) = \sin(\delta_i)\, \partial_i f(\tilde x) + (1 - \cos\delta_i)\, \partial_i^2 f(\tilde x),

with both derivatives from parameter-shift circuits at ``x̃``
(``∂f = [f(θ+π/2) - f(θ-π/2)]/2``, ``∂²f = [f(θ+π) - f(θ)]/2``).

*General spectrum* (``spectrum=``): ``g_i(t) = a_0 + Σ_ω a_ω cos ωt + b_ω sin ωt`` over the
``R`` given frequencies is fixed by its values at ``2R+1`` shifts ``t_m`` (PennyLane's default
reconstruction shifts, ``t_m = 2π m R / ((2R+1) ω_max)``, ``m = -R..R``), so
``R_i = (φ(δ_i) - φ(0))ᵀ C⁻¹ g_i(t)`` with ``φ(t) = (1, cos ω t, sin ω t)`` and
``C_mn = φ_n(t_m)``; for the spectrum ``[1]`` this is the formula above exactly.

The residual ``f(x) - f(x̃) - Σ_i R_i`` is the sum of the cross terms ``ε(x)``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import numpy as np
import pennylane as qml

from ..engine import angle_gradient
from ..engine.core import Attribution, Engine
from ..engine.encodings import random_like
from ..engine.inputs import eager
from ..engine.plan import execute_plan
from ..engine.transform import attribution_transform
from ..engine.validation import check_finite, check_positive_int, is_int, leaves, precision_bits

ROOT_MODES = ("search",)
_SLOPE_ATOL = 1e-9


# ---------------------------------------------------------------------------------------------
# validation of the options (in __init__, before anything is traced)
# ---------------------------------------------------------------------------------------------


def _check_frequencies(freqs, where):
    values = np.asarray(qml.math.unwrap(freqs), dtype=float).reshape(-1)
    if not np.all(np.isfinite(values)):
        raise ValueError(f"spectrum{where} contains NaN or inf.")
    values = np.unique(np.abs(values))
    return tuple(float(v) for v in values if v > 1e-12)


def _validate_spectrum(spectrum):
    """``None``, one tuple of frequencies for every feature, or ``{feature: tuple}``."""
    if spectrum is None:
        return None
    if isinstance(spectrum, Mapping):
        out = {}
        for key, freqs in spectrum.items():
            if not is_int(key) or key < 0:
                raise TypeError(f"spectrum keys are flat feature indices (ints >= 0), got {key!r}.")
            out[int(key)] = _check_frequencies(freqs, f"[{key}]")
        return out
    if isinstance(spectrum, str) or np.ndim(qml.math.unwrap(spectrum)) > 1:
        raise TypeError(
            "spectrum must be a list of frequencies (for every feature) or a dict "
            f"{{feature index: list of frequencies}}, got {spectrum!r}."
        )
    return _check_frequencies(spectrum, "")


# ---------------------------------------------------------------------------------------------
# the structure of the encoding (concrete stand-ins: works under jax.jit and jax.vmap)
# ---------------------------------------------------------------------------------------------


def encoding_slopes(call):
    """Slopes ``S[p, i] = ∂θ_p/∂x_i`` of the input gate parameters ``θ_p`` (``call.input_indices``
    of the expanded tape), from differences at concrete stand-ins of all arguments.

    Returns ``(S, linear)``: ``S`` of shape ``(n_params, d)`` and a boolean array of shape
    ``(n_params, d)`` that is ``False`` where ``θ_p`` is not linear in ``x_i`` (the slope then
    differs between two random points). Nothing is executed; only the QNode is traced, with
    NumPy stand-ins, so real values under ``jax.jit`` are never needed.
    """
    indices = call.input_indices
    rng = np.random.default_rng(4321)
    others = [random_like(a, rng) if i != call.argnum else None for i, a in enumerate(call.args)]
    d = int(np.prod(call.shape))

    def params_at(flat):
        args = list(others)
        args[call.argnum] = np.reshape(flat, call.shape)
        tape = qml.workflow.construct_tape(call.qnode, level="user")(*args, **call.kwargs)
        params = angle_gradient.expand_for_shifts(tape).get_parameters(trainable_only=False)
        return np.array([complex(np.asarray(params[p]).reshape(())) for p in indices])

    slopes = []
    with eager():
        for step in (0.37, -0.61):
            base = rng.uniform(0.1, 0.9, size=d)
            theta = params_at(base)
            columns = []
            for i in range(d):
                shifted = base.copy()
                shifted[i] += step
                columns.append((params_at(shifted) - theta) / step)
            slopes.append(np.stack(columns, axis=1))
    first, second = slopes
    linear = (np.abs(first - second) < _SLOPE_ATOL) & (np.abs(first.imag) < _SLOPE_ATOL)
    return first.real, linear


def _operation_names(call):
    """``(name, frequencies)`` of the gate parameter behind each input index."""
    tape = angle_gradient.expand_for_shifts(call.tape).copy()
    tape.trainable_params = list(range(len(tape.get_parameters(trainable_only=False))))
    out = []
    for p in call.input_indices:
        op, _, p_index = tape.get_operation(p)
        out.append((op.name, tuple(float(w) for w in op.parameter_frequencies[p_index])))
    return out


def _frequency_one_map(call, features):
    """For each feature in ``features``: the signed slope row ``S[:, i]`` (one ±1 entry, on a
    gate parameter of the single frequency 1), or a zero column for features that do not enter
    the circuit. Raises a ValueError explaining what to do otherwise."""
    slopes, linear = encoding_slopes(call)
    ops = _operation_names(call)
    hint = (
        " Taylor-Fourier's closed form needs each feature to enter exactly one gate parameter "
        "as θ = ±x_i + c of a gate with the single frequency 1 (RX, RY, RZ, PhaseShift, Rot, "
        "IsingXX, ...). If you know the frequencies of f in this feature, pass "
        "spectrum={feature: [frequencies]} (or one list for every feature)."
    )
    for i in features:
        nonlinear = [p for p in range(len(ops)) if not linear[p, i]]
        if nonlinear:
            name = ops[nonlinear[0]][0]
            raise ValueError(
                f"Feature {i} enters a parameter of {name} nonlinearly (for example "
                f"θ = x_i**2 or θ = x_i * x_j).{hint}"
            )
        fed = [p for p in range(len(ops)) if abs(slopes[p, i]) > _SLOPE_ATOL]
        if len(fed) > 1:
            names = ", ".join(ops[p][0] for p in fed)
            raise ValueError(
                f"Feature {i} is encoded {len(fed)} times (gate parameters of {names}); f is then "
                f"a trigonometric polynomial of higher degree in x_{i}.{hint}"
            )
        for p in fed:
            if abs(abs(slopes[p, i]) - 1) > _SLOPE_ATOL:
                raise ValueError(
                    f"Feature {i} enters {ops[p][0]} with slope {slopes[p, i]:.6g} "
                    f"(θ = {slopes[p, i]:.6g}·x_{i} + c, e.g. qml.RY(np.pi * x[{i}])), not ±1; "
                    f"f then has frequency {abs(slopes[p, i]):.6g} in x_{i}.{hint}"
                )
            if ops[p][1] != (1.0,):
                raise ValueError(
                    f"Feature {i} enters {ops[p][0]}, whose parameter has the frequencies "
                    f"{ops[p][1]}, not the single frequency 1.{hint}"
                )
    return slopes


# ---------------------------------------------------------------------------------------------
# the method
# ---------------------------------------------------------------------------------------------


def reconstruction(freqs):
    """Shifts ``t`` (``2R+1``, with ``t[R] = 0``) and ``C⁻¹`` for the frequencies ``freqs``,
    where ``C[m, n] = φ_n(t_m)``, ``φ(t) = (1, cos ω_1 t, .., cos ω_R t, sin ω_1 t, .., sin ω_R t)``."""
    freqs = np.asarray(freqs, dtype=float)
    r = len(freqs)
    shifts = np.arange(-r, r + 1) * 2 * np.pi / (freqs.max() * (2 * r + 1)) * r
    matrix = basis(shifts[:, None], freqs, np)
    if np.linalg.cond(matrix) > 1e8:
        raise ValueError(
            f"The spectrum {tuple(freqs)} cannot be reconstructed stably from the default "
            "shifts (frequencies too close together); merge nearby frequencies."
        )
    return shifts, np.linalg.inv(matrix)


def basis(t, freqs, math):
    """``φ(t)``: the trailing axis holds ``1, cos(ω t), sin(ω t)``."""
    return math.concatenate(
        [math.ones_like(t * freqs[:1]), math.cos(t * freqs), math.sin(t * freqs)], axis=-1
    )


#: default ``root_tol`` by precision (bits of the model's output)
_DEFAULT_ROOT_TOL = {64: 1e-8, 32: 1e-6}


class TaylorFourier:
    """The method object behind :func:`taylor_fourier` (validated hyper-parameters)."""

    public_name = "taylor_fourier"
    has_convergence_delta = True

    def __init__(self, root=None, spectrum=None, root_steps=20, root_tol=None):
        if root is None:
            root = "search"
        if isinstance(root, str):
            if root not in ROOT_MODES:
                raise ValueError(f'Unknown root={root!r}; give an array shaped like x or "search".')
        else:
            if isinstance(root, (list, tuple)) or np.isscalar(root):
                root = np.asarray(root, dtype=float)
            check_finite(root, "The root")
        check_positive_int(root_steps, "root_steps")
        if root_tol is not None and (
            not np.isscalar(root_tol) or not np.isfinite(root_tol) or root_tol <= 0
        ):
            raise ValueError(f"root_tol must be None or a finite number > 0, got {root_tol!r}.")
        self.root, self.root_steps = root, int(root_steps)
        self.root_tol = None if root_tol is None else float(root_tol)
        self.spectrum = _validate_spectrum(spectrum)
        # set by prepare(): the roots found by the search (flat, one per output) and whether
        # they were checked (concrete values) or may not have converged (traced values)
        self.searched_roots, self.roots_checked = None, True

    # -- the preparation step: the root search ---------------------------------------------------

    preparation_note = 'root="search" (Newton steps towards a root of every output)'
    preparation_alternative = "give root=<an array> to build the plan without running anything"

    @property
    def needs_preparation(self) -> bool:
        """``root="search"`` runs circuits (the Newton steps) before the plan can be built."""
        return isinstance(self.root, str) and self.searched_roots is None

    def prepare(self, engine):
        """The root search for ``engine``'s call: a copy of this method holding the roots found
        (one per output). Each Newton step is one plan of forward and gradient circuits."""
        self._structure(engine)  # refuse unsupported models before the search runs circuits
        roots, checked = self.search_roots(engine)
        prepared = copy.copy(self)
        prepared.searched_roots, prepared.roots_checked = list(roots), checked
        return prepared

    def root_tolerance(self, values):
        """``root_tol``, or by default 1e-8 for 64-bit values and 1e-6 for 32-bit ones (an
        output of order one cannot be evaluated closer to 0 than ~1e-7 in float32)."""
        if self.root_tol is not None:
            return self.root_tol
        return _DEFAULT_ROOT_TOL[precision_bits(qml.math.get_dtype_name(values))]

    # -- structure ------------------------------------------------------------------------------

    def spectra(self, call):
        """Per flat feature: ``None`` (closed form with slopes) or a tuple of frequencies."""
        d = int(np.prod(call.shape))
        if isinstance(self.spectrum, tuple):
            _ = call.input_indices  # raises when no gate parameter depends on the input
            return None, [self.spectrum] * d
        given = self.spectrum or {}
        bad = [i for i in given if i >= d]
        if bad:
            raise ValueError(f"spectrum names features {bad}, but the input has {d} features.")
        rest = [i for i in range(d) if i not in given]
        if not rest:
            _ = call.input_indices
            return None, [given[i] for i in range(d)]
        slopes = _frequency_one_map(call, rest)
        if self.spectrum is None:
            return slopes, None
        unused = ~np.any(np.abs(slopes) > _SLOPE_ATOL, axis=0)
        return None, [given[i] if i in given else (() if unused[i] else (1.0,)) for i in range(d)]

    def given_roots(self, engine):
        """The reference points, flat: a list of 1 (shared) or K (one per output) points."""
        call = engine.call
        d, k = int(np.prod(call.shape)), call.n_outputs
        if isinstance(self.root, str):
            return self.searched_roots
        root = self.root
        shape = tuple(qml.math.shape(root))
        if shape == tuple(call.shape):
            return [qml.math.reshape(root, (d,))]
        if shape == (k, *call.shape):
            return [qml.math.reshape(root[j], (d,)) for j in range(k)]
        raise ValueError(
            f"The root has shape {shape}; give an array shaped like the input {tuple(call.shape)} "
            f"(or ({k}, *{tuple(call.shape)}): one root per output)."
        )

    def search_roots(self, engine):
        """Newton steps ``x ← x - f(x) ∇f/‖∇f‖²`` from the input, one root per output.

        Each step is one batch (forward values and input gradients of all outputs) on a fresh
        engine with the explanation's gradient rule. Returns ``(roots, checked)``. With
        concrete values the loop stops at convergence and raises on failure (``checked``).
        Traced values (``jax.jit``/``jax.vmap``) cannot be inspected: the ``root_steps`` steps
        then run in a ``jax.lax.fori_loop`` (traced once; a converged point takes zero-length
        steps) and ``checked`` is False, so that :meth:`build` turns the relevances of
        non-converged outputs into NaN."""
        call = engine.call
        k = call.n_outputs
        start = qml.math.stack([engine.point] * k)  # (K, d)
        if qml.math.is_abstract(start) or any(qml.math.is_abstract(a) for a in leaves(call.args)):
            import jax  # pylint: disable=import-outside-toplevel

            def body(_, points):
                f, g = self._value_and_gradient(engine, points)
                return points - self._newton_scale(f, g)[:, None] * g

            start = qml.math.convert_like(start, qml.math.asarray(1.0, like="jax")) * 1.0
            return list(jax.lax.fori_loop(0, self.root_steps, body, start)), False
        points = start
        for step in range(self.root_steps + 1):
            last = step == self.root_steps
            f, g = self._value_and_gradient(engine, points, gradient=not last)
            tol = self.root_tolerance(qml.math.unwrap(f))
            values = np.asarray(qml.math.unwrap(f), dtype=float)
            done = np.abs(values) <= tol
            if np.all(done):
                return list(points), True
            if last:
                raise ValueError(
                    f'root="search" did not converge in {self.root_steps} Newton steps: '
                    f"|f| = {np.abs(values).max():.3g} > root_tol={tol:g} at the "
                    "last iterate. Raise root_steps/root_tol, or give root=<an array>."
                )
            norm2 = np.asarray(qml.math.unwrap(qml.math.sum(g**2, axis=-1)), dtype=float)
            stalled = (norm2 < 1e-24) & ~done
            if np.any(stalled):
                raise ValueError(
                    'root="search" stopped: the gradient of output '
                    f"{int(np.flatnonzero(stalled)[0])} vanishes at a point where f != 0 "
                    "(a flat region or an extremum). Give root=<an array> instead."
                )
            points = points - self._newton_scale(f, g)[:, None] * g
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _value_and_gradient(engine, points, gradient=True):
        """``f_k`` and ``∇f_k`` at the k-th point, for every output k (one batch)."""
        call = engine.call
        k = call.n_outputs
        sub = Engine(call, engine.rule, engine.ancilla, broadcast=engine.broadcast)
        rows = [points[j] for j in range(k)]
        forwards = [sub.forward_at(p) for p in rows]
        gradients = sub.gradient(rows) if gradient else None
        lookup = execute_plan(sub.plan("taylor_fourier_root_search", lambda lookup: lookup))
        f = qml.math.stack([forwards[j](lookup)[0][j] for j in range(k)])
        if not gradient:
            return f, None
        grads = gradients(lookup)[0]  # (n_points, K, d)
        return f, qml.math.stack([qml.math.real(grads[j, j]) for j in range(k)])

    @staticmethod
    def _newton_scale(f, g):
        """``f/‖g‖²`` (0 where the gradient vanishes), without branching on values."""
        norm2 = qml.math.sum(g**2, axis=-1)
        safe = qml.math.where(norm2 > 1e-24, norm2, 1.0)
        return qml.math.where(norm2 > 1e-24, f / safe, 0.0)

    # -- build ----------------------------------------------------------------------------------

    def _structure(self, engine):
        """``(slopes, spectra)`` of the call's encoding; raises, before any circuit runs, for
        the models Taylor-Fourier does not support."""
        call = engine.call
        if call.kind == "amplitude":
            raise ValueError(
                "taylor_fourier applies to angle encodings (features as rotation angles). For an "
                "amplitude embedding f is a quadratic form of the amplitudes, and "
                "xqml.integrated_gradients is exact there (method='exact')."
            )
        return self.spectra(call)

    def build(self, engine, delta=False):
        call = engine.call
        roots = self.given_roots(engine)
        slopes, spectra = self._structure(engine)  # raises before any circuit
        if roots is None:
            raise ValueError('root="search" needs its preparation step: see prepare().')
        checked = self.roots_checked
        k_out = call.n_outputs
        root_of = [0] * k_out if len(roots) == 1 else list(range(k_out))
        x = engine.point
        if spectra is None:
            get = self._closed_form(engine, roots, slopes)
        else:
            get = self._reconstructed(engine, roots, spectra)
        need_root_values = delta or not checked
        f_x = engine.forward_at(x) if delta else None
        f_roots = [engine.forward_at(r) for r in roots] if need_root_values else None

        def finish(lookup):
            values, variance = get(lookup)  # (K, d)
            gap = None
            if need_root_values:
                f_root = qml.math.stack([f_roots[root_of[j]](lookup)[0][j] for j in range(k_out)])
            if not checked:  # traced search: non-converged outputs give NaN
                ok = qml.math.abs(f_root) <= self.root_tolerance(f_root)
                values = qml.math.where(ok[:, None], values, np.nan)
            if delta:
                gap = qml.math.sum(values, axis=-1) - (f_x(lookup)[0] - f_root)
            return Attribution(values, variance, gap)

        return finish

    @staticmethod
    def _closed_form(engine, roots, slopes):
        """``R = sin δ ⊙ ∂f + (1 - cos δ) ⊙ ∂²f`` from order-1 and order-2 shift circuits."""
        call = engine.call
        x = engine.point
        handles = []
        for root in roots:
            tape = call.expanded_tape_at(qml.math.reshape(root, call.shape))
            first = angle_gradient.shift_tapes(
                tape, call.input_indices, call.sentences, order=1, device=engine.device
            )
            second = angle_gradient.shift_tapes(
                tape, call.input_indices, call.sentences, order=2, device=engine.device
            )
            handles.append((engine.batch.add(*first), engine.batch.add(*second)))
        s1, s2 = slopes, slopes**2

        def get(lookup):
            values, variances = [], []
            for j in range(call.n_outputs):
                r = 0 if len(roots) == 1 else j
                d1, d2 = lookup(handles[r][0]), lookup(handles[r][1])
                delta = x - roots[r]
                sin, vers = qml.math.sin(delta), 1 - qml.math.cos(delta)
                values.append(sin * (d1.value[j] @ s1) + vers * (d2.value[j] @ s2))
                variances.append(sin**2 * (d1.variance[j] @ s2) + vers**2 * (d2.variance[j] @ s2))
            return qml.math.stack(values), qml.math.stack(variances)

        return get

    @staticmethod
    def _reconstructed(engine, roots, spectra):
        """``R_i = g_i(δ_i) - g_i(0)`` from ``g_i`` at the reconstruction shifts."""
        call = engine.call
        x = engine.point
        d = len(spectra)
        plans = {}
        for freqs in set(spectra):
            if freqs:
                plans[freqs] = reconstruction(freqs)
        requests = []  # per root: f(root), then per feature the forwards at the shifts
        for root in roots:
            center = engine.forward_at(root)
            per_feature = []
            for i, freqs in enumerate(spectra):
                if not freqs:
                    per_feature.append(None)
                    continue
                shifts, _ = plans[freqs]
                unit = np.eye(d)[i]
                per_feature.append(
                    [center if t == 0 else engine.forward_at(root + t * unit) for t in shifts]
                )
            requests.append(per_feature)

        def get(lookup):
            values, variances = [], []
            for j in range(call.n_outputs):
                r = 0 if len(roots) == 1 else j
                delta = x - roots[r]
                row, row_var = [], []
                for i, freqs in enumerate(spectra):
                    if not freqs:
                        row.append(0.0 * delta[i])
                        row_var.append(0.0 * delta[i])
                        continue
                    _, inverse = plans[freqs]
                    estimates = [fwd(lookup) for fwd in requests[r][i]]
                    g = qml.math.stack([e[0][j] for e in estimates])
                    g_var = qml.math.stack([e[1][j] for e in estimates])
                    freq = np.asarray(freqs)
                    phi = basis(qml.math.reshape(delta[i], (1,)), freq, qml.math)
                    weights = qml.math.tensordot(
                        phi - basis(np.zeros(1), freq, np), inverse, axes=1
                    )
                    row.append(qml.math.sum(weights * g))
                    row_var.append(qml.math.sum(weights**2 * g_var))
                values.append(qml.math.stack(row))
                variances.append(qml.math.stack(row_var))
            return qml.math.stack(values), qml.math.stack(variances)

        return get


_DOC = r"""Taylor-Fourier relevance of a QNode: the all-order single-feature Taylor sums at a root.

A ``qml.transform`` like :func:`~pennylane_xqml.methods.integrated_gradients` (decorator or
``taylor_fourier(qnode, ...)``; the result is called like the QNode). For a reference point
``x̃`` (a *root*, ``f(x̃) ≈ 0``) and ``δ = x - x̃``:

.. math:: R_i(x) = \sin(\delta_i)\, \partial_i f(\tilde x) + (1 - \cos\delta_i)\, \partial_i^2 f(\tilde x)

This is the *whole* Taylor series of ``f`` in feature ``i`` alone: along ``e_i`` the model is
``g_i(t) = f(x̃ + t e_i) = a + b cos t + c sin t`` (one Pauli rotation per feature), so
``Σ_{k≥1} g_i^{(k)}(0) δ^k/k! = g_i(δ) - g_i(0) = c sin δ + b (cos δ - 1)``, and
``g_i'(0) = c = ∂_i f(x̃)``, ``g_i''(0) = -b = ∂_i² f(x̃)``. The derivatives are measured by
parameter-shift circuits at ``x̃`` (order 1 and order 2 rules of the encoding gate; all circuits
of one explanation run in one batch, on any device, with shots too). A model of one feature is
explained exactly; the residual ``f(x) - f(x̃) - Σ_i R_i`` is the sum of the cross (mixed
derivative) terms; ``return_convergence_delta=True`` returns its negative,
``Σ_i R_i - (f(x) - f(x̃))`` (Captum's sign convention, as for integrated gradients).

Requirements, checked before any circuit runs (by tracing the QNode at concrete stand-ins of
its arguments, so also under ``jax.jit``/``jax.vmap``): an angle encoding in which every
feature enters **one** gate parameter as ``θ = ±x_i + c`` (``c`` may depend on other
arguments, the slope may not), of a gate whose parameter has the single frequency 1 (RX, RY,
RZ, PhaseShift, Rot, IsingXX, MultiRZ, ...). Features that do not enter the circuit get 0.
Otherwise a ``ValueError`` says what is wrong, unless ``spectrum`` is given.

**General spectra.** With ``spectrum`` (frequencies of ``f`` in ``x_i``), ``g_i`` is a
trigonometric polynomial ``a_0 + Σ_ω a_ω cos ωt + b_ω sin ωt`` with ``R`` frequencies, an
entire function, so the single-feature Taylor sum is again exactly ``g_i(δ_i) - g_i(0)``.
``g_i`` is measured at the ``2R+1`` shifts of a Fourier reconstruction
(``t_m = 2π m R/((2R+1) ω_max)``, ``m = -R..R``, PennyLane's default) and evaluated at
``δ_i`` in closed form; for the spectrum ``[1]`` this is the formula above. A spectrum that
misses frequencies of ``f`` gives wrong relevances.

Args:
    qnode (QNode): the model (omit to get a decorator). Amplitude embeddings are refused
        (use :func:`~pennylane_xqml.methods.integrated_gradients`, exact there).
    root: the reference point ``x̃``: an array shaped like the input, or
        ``(n_outputs, *input_shape)`` for one root per output; or ``"search"`` (the
        default, also for ``None``): for each output, Newton steps
        ``x_{k+1} = x_k - f(x_k) ∇f(x_k)/‖∇f(x_k)‖²`` from ``x`` (the minimum-norm step,
        which lands on the nearest root when ``f`` is linear, and near it otherwise). Each
        step is one batch of forward and gradient circuits, with the explanation's
        ``gradient`` rule (JAX backprop on default.qubit with JAX inputs, parameter shift
        otherwise). A ``ValueError`` is raised if ``|f| <= root_tol`` is not reached in
        ``root_steps`` steps or the gradient vanishes; under ``jax.jit``/``jax.vmap``, where
        values cannot be inspected, all ``root_steps`` steps run and the relevances of an
        output whose search did not converge are NaN. The search is the explanation's
        preparation step: calling the explanation runs it, then the relevance circuits in
        one batch. ``explained.plan``/``construct_batch``/``draw`` never run circuits, so
        they need ``explained.prepare(*args)`` first, which runs the search and returns an
        explanation with the roots found; ``explained.cost`` runs the search and reports its
        circuits as setup circuits. A given root is used as is (the relevances then sum
        to ``f(x) - f(x̃)`` up to the cross terms).
    spectrum: frequencies of ``f`` in each feature: a list for every feature, or a dict
        ``{flat feature index: list}`` (other features must then meet the requirements above).
    root_steps (int): maximum number of Newton steps of the search (default 20).
    root_tol (float): ``|f(x̃)|`` accepted as a root (default: 1e-8 in float64, 1e-6 in
        float32; raise it with shots).
    target, argnums, gradient, ancilla, return_stderr: as in
        :func:`~pennylane_xqml.methods.integrated_gradients` (``gradient`` is used by the root search;
        the relevances use shift circuits).
    return_convergence_delta (bool): also return ``Σ_i R_i - (f(x) - f(x̃))`` (minus the
        cross terms; Captum's sign convention, as for integrated gradients).

Returns:
    callable: ``explained(*args, **kwargs)`` giving relevances shaped like the input (with a
    leading output axis for several outputs and no ``target``).

**Example**

>>> import pennylane as qml, numpy as np
>>> from pennylane_xqml.methods.taylor_fourier import taylor_fourier  # also xqml.taylor_fourier
>>> dev = qml.device("default.qubit", wires=2)
>>> @taylor_fourier(root=np.array([np.pi / 2, 0.0]), return_convergence_delta=True)
... @qml.qnode(dev)
... def model(x):
...     qml.RY(x[0], wires=0)
...     qml.RY(x[1], wires=1)
...     return qml.expval(qml.Z(0))
>>> relevance, delta = model(np.array([0.3, 1.2]))
>>> np.round(relevance, 6), bool(abs(delta) < 1e-10)  # cos(0.3) - cos(pi/2); x[1] is unused
(array([0.955336, 0.      ]), True)
"""

taylor_fourier = attribution_transform(TaylorFourier, _DOC)
__test__ = {"taylor_fourier": _DOC}
