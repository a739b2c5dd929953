"""Structural facts about a JAX function, read off its jaxpr (never off values).

Used by function models (:mod:`.functions`): whether a model's classical head uses the input
directly, and whether it is affine in its QNodes' outputs. Both are answered by one forward
pass over the equations of :func:`jax.make_jaxpr`, so they hold at every input, not only at the
one traced.
"""

from __future__ import annotations

# Primitives whose outputs are linear in all their array operands together (each operand may
# be an affine function of the tracked inputs and the result stays affine).
_LINEAR = frozenset(
    {
        "add", "add_any", "sub", "neg", "reshape", "broadcast_in_dim", "squeeze",
        "expand_dims", "transpose", "slice", "concatenate", "convert_element_type", "reduce_sum",
        "copy", "copy_p", "rev", "pad", "real", "cumsum", "stop_gradient",
    }
)  # fmt: skip
# Primitives linear in one operand when every other operand is constant.
_LINEAR_IN_ONE = frozenset({"mul", "dot_general"})
# Primitives linear in their first operand when the others (indices, divisors) are constant.
_LINEAR_IN_FIRST = frozenset({"div", "dynamic_slice", "gather", "squeeze"})
# Primitives whose first operand (a predicate or index) must be constant and which are linear
# in the rest.
_SELECT = frozenset({"select_n"})
_NESTED = ("jaxpr", "call_jaxpr", "fun_jaxpr")


def _is_literal(var) -> bool:
    return type(var).__name__ == "Literal"


def _inner(eqn):
    """The nested jaxpr of a call-like equation (``pjit``, ``closed_call``, ``custom_jvp_call``),
    or ``None``."""
    for name in _NESTED:
        inner = eqn.params.get(name)
        if inner is not None:
            return getattr(inner, "jaxpr", inner)
    return None


def _forward(jaxpr, tracked, affine):
    """One forward pass: ``(dependent, nonlinear)`` sets of variables.

    ``dependent``: variables whose value depends on a tracked input. ``nonlinear``: dependent
    variables that are not affine functions of the tracked inputs (only computed when
    ``affine`` is true; nested jaxprs are analysed recursively)."""
    dependent, nonlinear = set(tracked), set()

    def dep(v):
        return not _is_literal(v) and v in dependent

    def nonlin(v):
        return not _is_literal(v) and v in nonlinear

    for eqn in jaxpr.eqns:
        flags = [dep(v) for v in eqn.invars]
        if not any(flags):
            continue
        dependent.update(eqn.outvars)
        if not affine:
            continue
        name = eqn.primitive.name
        bad = any(nonlin(v) for v in eqn.invars)
        if not bad:
            inner = _inner(eqn)
            if inner is not None:
                inner_tracked = [w for w, f in zip(inner.invars, flags) if f]
                inner_dep, inner_nonlin = _forward(inner, inner_tracked, True)
                outs = list(zip(eqn.outvars, inner.outvars))
                nonlinear.update(o for o, w in outs if not _is_literal(w) and w in inner_nonlin)
                dependent.difference_update(
                    o for o, w in outs if _is_literal(w) or w not in inner_dep
                )
                continue
            if name in _LINEAR:
                continue
            if name in _LINEAR_IN_ONE and sum(flags) == 1:
                continue
            if name in _LINEAR_IN_FIRST and flags[0] and not any(flags[1:]):
                continue
            if name in _SELECT and not flags[0]:
                continue
        nonlinear.update(eqn.outvars)
    return dependent, nonlinear


def outputs_depend_on(fn, args, argnums) -> bool:
    """Whether any output of ``fn(*args)`` depends on the arguments at ``argnums`` (JAX
    tracing; every other argument is traced too but not followed)."""
    import jax  # pylint: disable=import-outside-toplevel

    closed = jax.make_jaxpr(fn)(*args)
    jaxpr = closed.jaxpr
    tracked = _tracked_invars(jaxpr, args, argnums)
    dependent, _ = _forward(jaxpr, tracked, False)
    return any(not _is_literal(v) and v in dependent for v in jaxpr.outvars)


def is_affine_in(fn, args, argnums) -> bool:
    """Whether every output of ``fn(*args)`` is an affine function of the arguments at
    ``argnums`` (for every value of them), read off the jaxpr's primitives: sums, scalings by
    values that do not depend on them, reshapes, slices and contractions keep affinity; any
    other operation on them (``tanh``, a product of two of them, ...) breaks it."""
    import jax  # pylint: disable=import-outside-toplevel

    jaxpr = jax.make_jaxpr(fn)(*args).jaxpr
    tracked = _tracked_invars(jaxpr, args, argnums)
    _, nonlinear = _forward(jaxpr, tracked, True)
    return not any(not _is_literal(v) and v in nonlinear for v in jaxpr.outvars)


def _tracked_invars(jaxpr, args, argnums):
    """The jaxpr input variables of the arguments at ``argnums`` (each argument a pytree)."""
    import jax  # pylint: disable=import-outside-toplevel

    counts = [len(jax.tree_util.tree_leaves(a)) for a in args]
    starts = [sum(counts[:i]) for i in range(len(args))]
    return [
        jaxpr.invars[starts[i] + k] for i in argnums for k in range(counts[i])
    ]  # fmt: skip
