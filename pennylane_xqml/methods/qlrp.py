r"""Quantum layer-wise relevance propagation (QLRP) on a simulator's density matrix.

An encoding-first model is read as a two-layer network: ``x → ρ(x)`` (the state prepared by the
circuit), then the linear read-out ``f(x) = tr(ρ(x) M) = Σ_jk ρ_jk M_kj``. Relevance flows
backwards through both layers:

1. **Read-out layer.** Entry ``(j, k)`` of the state receives ``R_jk = Re(ρ_jk M_kj)``; since
   ``M`` is Hermitian, ``Σ_jk R_jk = Re tr(ρ M) = f(x)`` exactly.
2. **Encoding layer.** The contribution of input ``i`` to entry ``(j, k)`` is gradient × input
   of the map ``x → ρ_jk(x)``, taken through the same read-out so that it is real:
   ``c_jk,i = Re(x_i ∂_i ρ_jk(x) M_kj)`` (``M_kj`` is a constant, so this is also
   ``x_i ∂_i R_jk``). Each ``R_jk`` is shared in proportion to these contributions.

   *epsilon rule* (default): with ``s_jk = Σ_i c_jk,i``,

   .. math:: R_i = \sum_{jk} R_{jk} \frac{c_{jk,i}}{s_{jk} + \epsilon\, \mathrm{sign}(s_{jk})},
       \qquad \mathrm{sign}(0) = 1 .

   *alpha-beta rule* (``rule="alpha_beta"``, ``α - β = 1``, ``β >= 0``): with
   ``c⁺ = max(c, 0)``, ``c⁻ = min(c, 0)``,
   ``R_i = Σ_jk R_jk (α c⁺_jk,i / Σ_i' c⁺_jk,i' - β c⁻_jk,i / Σ_i' c⁻_jk,i')``; an entry
   whose contributions all have one sign shares ``R_jk`` along that side alone
   (``c⁺/Σc⁺`` or ``c⁻/Σc⁻``), so that every entry with a non-zero contribution passes
   exactly ``R_jk`` on.

**Conservation.** Summing the epsilon rule over ``i`` gives
``Σ_i R_i = Σ_jk R_jk s_jk / (s_jk + ε sign s_jk)``, which tends to
``Σ_{jk: s_jk ≠ 0} R_jk = f(x) - Σ_{jk: s_jk = 0} R_jk`` as ``ε → 0`` (and equals it for
``ε = 0``, where an entry with ``s_jk = 0`` passes nothing on). So the heatmap is conservative,
``Σ_i R_i = f(x)``, up to the relevance of the entries whose contributions total zero (for
example entries that do not depend on ``x``, or an input ``x = 0``); that relevance is what
``return_convergence_delta=True`` reports (``f(x) - Σ_i R_i``), and :func:`qlrp_entries`
lists the entries. The alpha-beta rule passes exactly ``R_jk`` on from every entry with a
non-zero contribution (``(α - β) R_jk`` when both signs occur, ``R_jk`` otherwise).

The state and its Jacobian are computed by a classical simulation of the circuit (the "digital
twin" of the paper): the QNode's tape with its measurements replaced by
``qml.density_matrix`` of all its wires, run on ``default.qubit`` (``default.mixed`` for that
device) with JAX backpropagation, and ``jax.jacfwd`` for ``∂ρ/∂x``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pennylane as qml

from ..engine.core import Attribution, ModelCall
from ..engine.execution import execute_batch
from ..engine.transform import attribution_transform

QLRP_RULES = ("epsilon", "alpha_beta")
STATE_DEVICES = (
    "default.qubit",
    "default.mixed",
    "lightning.qubit",
    "lightning.kokkos",
    "lightning.gpu",
)


class QLRPEntries(NamedTuple):
    """The quantities behind a QLRP explanation, for ``K`` outputs, ``D = 2**n_wires`` and
    ``d`` features (``relevance`` and ``unpropagated`` follow the QNode's output structure only
    through their leading axis ``K``)."""

    density_matrix: object  # (D, D) ρ(x) over ``wires``
    observables: object  # (K, D, D) M of each output
    entry_relevance: object  # (K, D, D) R_jk = Re(ρ_jk M_kj), sums to f_k
    totals: object  # (K, D, D) s_jk = Σ_i c_jk,i
    relevance: object  # (K, d) R_i
    unpropagated: object  # (K,) f_k - Σ_i R_i
    wires: object  # the wire order of ρ and M


def check_state_access(call):
    """Refuse, before any circuit runs, a call whose device cannot give the state."""
    device = getattr(call, "device", None)
    if device is None:
        raise ValueError(
            "qlrp needs the state of the circuit from a simulator; apply it to the QNode "
            f"(on one of {STATE_DEVICES} without shots), not to a tape."
        )
    if call.kind == "amplitude":
        raise ValueError(
            "qlrp propagates relevance to angle-encoded features. For an amplitude embedding the "
            "model is a quadratic form of the amplitudes and xqml.integrated_gradients is exact "
            "there (method='exact')."
        )
    if device.name not in STATE_DEVICES or call.shots is not None:
        what = f"shots={call.shots}" if call.shots is not None else "no state access"
        raise ValueError(
            f"qlrp needs the density matrix of the circuit, which {device.name} with {what} "
            f"cannot provide. Use an analytic state simulator ({', '.join(STATE_DEVICES)}) "
            "without shots, e.g. qml.device('default.qubit', wires=...)."
        )


_TWIN = []


def _twin(device):
    """The simulator of the state: default.mixed for default.mixed, else default.qubit."""
    if device.name == "default.mixed":
        return qml.device("default.mixed", wires=device.wires)
    if not _TWIN:
        _TWIN.append(qml.device("default.qubit"))
    return _TWIN[0]


def _state_and_jacobian(call):
    """``ρ(x)`` over ``call.tape.wires`` and ``∂ρ/∂x`` of shape ``(D, D, d)`` (JAX)."""
    import jax  # pylint: disable=import-outside-toplevel
    import jax.numpy as jnp  # pylint: disable=import-outside-toplevel

    wires = call.tape.wires
    device = _twin(call.device)

    def rho_of(flat):
        tape = call.tape_at(jnp.reshape(flat, call.shape))
        params = [
            np.asarray(p) if qml.math.get_interface(p) == "autograd" else p
            for p in tape.get_parameters(trainable_only=False)
        ]
        tape = tape.bind_new_parameters(params, list(range(len(params))))
        state_tape = tape.copy(measurements=[qml.density_matrix(wires=wires)])
        rho = execute_batch([state_tape], device, diff_method="backprop", interface="jax")[0]
        return rho, rho

    x = call.x if _is_jax(call.x) else np.asarray(qml.math.unwrap(call.x), dtype=float)
    x = jnp.reshape(jnp.asarray(x), (-1,))
    jac, rho = jax.jacfwd(rho_of, has_aux=True)(x)
    return rho, jac, x, wires


def _is_jax(value):
    return qml.math.get_interface(value) == "jax"


def _observable_matrices(call, wires):
    return np.stack([np.asarray(s.to_mat(wire_order=wires)) for s in call.sentences])


def _safe_ratio(numerator, denominator):
    """``numerator / denominator``, 0 where the denominator is exactly 0."""
    zero = denominator == 0
    return qml.math.where(zero, 0.0, numerator / qml.math.where(zero, 1.0, denominator))


class QLRP:
    """The method object behind :func:`qlrp` (validated hyper-parameters)."""

    public_name = "qlrp"
    has_convergence_delta = True

    def __init__(self, rule="epsilon", epsilon=1e-9, alpha=1.0, beta=0.0):
        if rule not in QLRP_RULES:
            raise ValueError(f"Unknown rule={rule!r}; expected one of {QLRP_RULES}.")
        if not np.isscalar(epsilon) or not np.isfinite(epsilon) or epsilon < 0:
            raise ValueError(f"epsilon must be a finite number >= 0, got {epsilon!r}.")
        for name, value in (("alpha", alpha), ("beta", beta)):
            if not np.isscalar(value) or not np.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}.")
        if rule == "alpha_beta" and (beta < 0 or abs(alpha - beta - 1) > 1e-12):
            raise ValueError(
                f"The alpha-beta rule needs alpha - beta = 1 and beta >= 0 (conservation); got "
                f"alpha={alpha}, beta={beta}."
            )
        self.rule, self.epsilon = rule, float(epsilon)
        self.alpha, self.beta = float(alpha), float(beta)

    def entries(self, call):
        """All the quantities of the explanation (:class:`QLRPEntries`). JAX inputs give JAX
        arrays (with the user's JAX precision); other inputs are computed with 64-bit JAX and
        returned as NumPy arrays."""
        import jax  # pylint: disable=import-outside-toplevel

        if _is_jax(call.x) or any(_is_jax(a) for a in jax.tree_util.tree_leaves(call.args)):
            return self._entries(call)
        with jax.enable_x64(True):
            out = self._entries(call)
            return QLRPEntries(*(np.asarray(v) for v in out[:-1]), out.wires)

    def _entries(self, call):
        import jax.numpy as jnp  # pylint: disable=import-outside-toplevel

        rho, jac, x, wires = _state_and_jacobian(call)
        observables = _observable_matrices(call, wires)
        entry_relevance, totals, relevance = [], [], []
        for m in observables:
            mt = m.T  # M_kj at position (j, k)
            r_entry = jnp.real(rho * mt)  # (D, D)
            c = jnp.real(jac * mt[..., None]) * x  # (D, D, d)
            s = jnp.sum(c, axis=-1)
            if self.rule == "epsilon":
                den = s + self.epsilon * jnp.where(s >= 0, 1.0, -1.0)
                share = _safe_ratio(r_entry, den)
                rel = jnp.einsum("jk,jki->i", share, c)
            else:
                pos, neg = jnp.maximum(c, 0.0), jnp.minimum(c, 0.0)
                pos_sum, neg_sum = pos.sum(-1), neg.sum(-1)
                # one-sided entries pass all their relevance along the side that exists
                alpha = jnp.where(neg_sum == 0, 1.0, self.alpha)
                beta = jnp.where(pos_sum == 0, -1.0, self.beta)
                rel = jnp.einsum(
                    "jk,jki->i", alpha * _safe_ratio(r_entry, pos_sum), pos
                ) - jnp.einsum("jk,jki->i", beta * _safe_ratio(r_entry, neg_sum), neg)
            entry_relevance.append(r_entry)
            totals.append(s)
            relevance.append(rel)
        entry_relevance = jnp.stack(entry_relevance)
        relevance = jnp.stack(relevance)
        unpropagated = jnp.sum(entry_relevance, axis=(1, 2)) - jnp.sum(relevance, axis=-1)
        return QLRPEntries(
            rho, observables, entry_relevance, jnp.stack(totals), relevance, unpropagated, wires
        )

    def build(self, engine, delta=False):
        call = engine.call
        check_state_access(call)
        f_x = engine.forward_at(engine.point) if delta else None

        def finish(lookup):
            values = self.entries(call).relevance
            gap = qml.math.sum(values, axis=-1) - f_x(lookup)[0] if delta else None
            return Attribution(values, qml.math.zeros_like(values), gap)

        return finish


_DOC = r"""Quantum layer-wise relevance propagation (QLRP) of a QNode, on the simulated state.

The model is read as ``x → ρ(x) → f(x) = tr(ρ(x) M) = Σ_jk ρ_jk M_kj``. Each density-matrix
entry gets ``R_jk = Re(ρ_jk M_kj)`` (these sum to ``f(x)``), and each ``R_jk`` is shared among
the inputs in proportion to the real contributions ``c_jk,i = Re(x_i ∂_i ρ_jk(x) M_kj)``
(gradient × input of ``x → ρ_jk``, through the read-out):

.. math:: R_i = \sum_{jk} R_{jk} \frac{c_{jk,i}}{\sum_{i'} c_{jk,i'} + \epsilon\,
    \mathrm{sign}(\sum_{i'} c_{jk,i'})}\qquad(\mathrm{sign}(0) = 1;\ \text{a zero
    denominator passes nothing on}).

Summed over ``i`` each entry passes on ``R_jk s_jk/(s_jk + ε sign s_jk) → R_jk`` when its total
``s_jk = Σ_i c_jk,i`` is non-zero, so ``Σ_i R_i = f(x)`` as ``ε → 0`` except for the relevance
of entries with ``s_jk = 0``; ``return_convergence_delta=True`` returns that gap,
``Σ_i R_i - f(x)`` (Captum's sign; ``f`` measured on the QNode's device), and :func:`qlrp_entries` gives every
``R_jk``, ``s_jk`` and the state.

QLRP needs the state: the QNode must run on an analytic simulator (``default.qubit``,
``default.mixed``, ``lightning.qubit/kokkos/gpu``; no shots). ``ρ(x)`` (over the circuit's
wires) and ``∂ρ/∂x`` come from simulating the QNode's circuit with ``qml.density_matrix`` on
``default.qubit`` (``default.mixed`` for that device, so noise channels are kept) with JAX
(``jax.jacfwd``), so the QNode must accept JAX arrays as input (NumPy inputs are computed in
64-bit JAX and returned as NumPy arrays); the memory is ``O(4**n_wires · d)``. Other devices (shots, hardware, ``qiskit.aer``) and
amplitude embeddings are refused with a ``ValueError`` before any circuit runs. ``expval`` outputs use
``M`` = the observable, ``probs`` outputs the projectors ``|b⟩⟨b|``.

Args:
    qnode (QNode): the model (omit to get a decorator).
    rule (str): ``"epsilon"`` (default) or ``"alpha_beta"``
        (``R_jk (α c⁺/Σc⁺ - β c⁻/Σc⁻)`` with ``α - β = 1``; an entry whose contributions
        all have one sign is shared along that side: conservative for every entry with a
        non-zero contribution, whatever ε-free rule is used).
    epsilon (float): the stabiliser ``ε >= 0`` of the epsilon rule (default 1e-9; 0 gives
        exact conservation over the entries with non-zero totals).
    alpha, beta (float): the alpha-beta rule's weights (default 1 and 0).
    target, argnums, return_convergence_delta: as in
        :func:`~pennylane_xqml.methods.integrated_gradients` (``gradient`` and ``ancilla`` are not
        used; ``return_stderr`` gives zeros: the computation is exact).

Returns:
    callable: ``explained(*args, **kwargs)`` giving relevances shaped like the input (with a
    leading output axis for several outputs and no ``target``).

**Example**

>>> import pennylane as qml, numpy as np
>>> from pennylane_xqml.methods.qlrp import qlrp  # also xqml.qlrp
>>> dev = qml.device("default.qubit", wires=2)
>>> @qlrp(epsilon=0.0, return_convergence_delta=True)
... @qml.qnode(dev)
... def model(x):
...     qml.RY(x[0], wires=0)
...     qml.RX(x[1], wires=1)
...     qml.CNOT(wires=[0, 1])
...     return qml.expval(qml.Z(1))
>>> x = np.array([0.4, 1.1])
>>> relevance, delta = model(x)
>>> bool(abs(relevance.sum() - model.qnode(x)) < 1e-10), bool(abs(delta) < 1e-10)
(True, True)
"""

qlrp = attribution_transform(QLRP, _DOC)


def qlrp_entries(qnode, argnums=0, rule="epsilon", epsilon=1e-9, alpha=1.0, beta=0.0):
    """The quantities behind :func:`qlrp`: ``qlrp_entries(qnode)(*args, **kwargs)`` returns a
    :class:`QLRPEntries` with the density matrix ``ρ(x)``, the output matrices ``M``, the entry
    relevances ``R_jk`` (``(K, D, D)``, each summing to ``f_k``), the contribution totals
    ``s_jk`` (entries with ``s_jk == 0`` and ``R_jk != 0`` are the ones that pass nothing on),
    the input relevances ``(K, d)`` and ``unpropagated = Σ_jk R_jk - Σ_i R_i``.

    >>> import pennylane as qml, numpy as np
    >>> dev = qml.device("default.qubit", wires=1)
    >>> @qml.qnode(dev)
    ... def model(x):
    ...     qml.RY(x[0], wires=0)
    ...     return qml.probs(wires=0)
    >>> out = qlrp_entries(model, epsilon=0.0)(np.array([0.7]))
    >>> out.entry_relevance.shape, np.round(out.entry_relevance.sum(axis=(1, 2)), 6)  # cos², sin²(x/2)
    ((2, 2, 2), array([0.882421, 0.117579]))
    """
    method = QLRP(rule=rule, epsilon=epsilon, alpha=alpha, beta=beta)

    def entries(*args, **kwargs):
        call = ModelCall(qnode, args, kwargs, argnums)
        check_state_access(call)
        return method.entries(call)

    return entries


__test__ = {"qlrp": _DOC}
