"""Many explanations at once: chunked (bounded memory), sharded over JAX devices, with progress.

:func:`explain_batch` is to an explanation what Captum's ``internal_batch_size`` is to an
attribution call: the inputs are split into chunks of ``internal_batch_size`` rows, each chunk
is one call of a compiled ``jax.vmap`` of the explainer (compiled once, since every chunk has the
same shape: the last one is padded by repeating its final row and the padding is dropped), and
the results are copied to host memory chunk by chunk. Device memory therefore depends on the
chunk size, not on the number of inputs.

With more than one JAX device (several GPUs, or CPU devices from
``XLA_FLAGS=--xla_force_host_platform_device_count=N``) each chunk is split over the devices
with :func:`jax.shard_map` on a one-axis :class:`jax.sharding.Mesh`: every device explains its
slice of the rows with the same program, so the results equal the unsharded run's. On several
hosts (after :func:`jax.distributed.initialize`) give each process its own rows and
``devices=jax.local_devices()``; the processes do not need to communicate.

The compiled program is kept for the next call with the same explainer, keyword options, argument
count and devices (the :data:`COMPILED_CACHE_SIZE` most recent ones), so explaining more rows
later, or the same rows with new weights, does not compile again;
:func:`clear_compiled_cache` forgets them.
"""

from __future__ import annotations

import inspect
import math
from collections import OrderedDict

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
from jax.sharding import Mesh, PartitionSpec

from .core import ModelCall
from .transform import ExplainedQNode
from .validation import check_positive_int, is_int

BATCH_AXIS = "batch"


def _simulated_in_xla(explainer):
    """Whether ``explainer`` runs inside XLA (default.qubit), rather than through host callbacks."""
    return (
        not isinstance(explainer, ExplainedQNode) or explainer.qnode.device.name == "default.qubit"
    )


def _resolve_devices(devices, explainer):
    """A list of JAX devices: all of the default backend's, a count of them, or a given list.

    Devices executed through host callbacks (lightning.*, qiskit.aer, hardware) keep state in
    one Python device object, which concurrent shards would share (wrong results were observed
    with lightning.qubit), so they get one JAX device: by default, and as an error if more are
    asked for.
    """
    available = jax.devices()
    if not _simulated_in_xla(explainer):
        if devices is None:
            return available[:1]
        requested = devices if isinstance(devices, (int, np.integer)) else len(list(devices))
        if requested != 1:
            raise ValueError(
                f"{explainer.qnode.device.name} is executed through host callbacks on one device "
                "object, which cannot run several shards concurrently; use devices=1 (or None), "
                "or default.qubit, which XLA runs on every JAX device."
            )
    if devices is None:
        return available
    if is_int(devices):
        if not 1 <= devices <= len(available):
            raise ValueError(
                f"devices={devices} must be between 1 and the {len(available)} JAX device(s) "
                "present (set XLA_FLAGS=--xla_force_host_platform_device_count=N for CPU devices)."
            )
        return available[:devices]
    devices = list(devices)
    if not devices or not all(isinstance(d, jax.Device) for d in devices):
        raise ValueError("devices must be None, a device count, or a non-empty list of jax.Device.")
    return devices


def _validated_inputs(explainer, args, argnums, kwargs):
    """The batched argument as a host array, checked row by row before anything runs."""
    if not -len(args) <= argnums < len(args):
        raise ValueError(f"argnums={argnums} does not name one of the {len(args)} arguments given.")
    inputs = np.asarray(qml.math.unwrap(args[argnums]))
    if not np.issubdtype(inputs.dtype, np.number):
        raise TypeError(f"The batched inputs must be numeric, got dtype {inputs.dtype}.")
    if inputs.ndim < 1 or len(inputs) == 0:
        raise ValueError(
            "The batched inputs need a leading batch axis with at least one row; got shape "
            f"{inputs.shape}."
        )
    rows = inputs.reshape(len(inputs), -1)
    bad = ~np.isfinite(rows).all(axis=1)
    if bad.any():
        raise ValueError(f"Input rows {np.flatnonzero(bad)[:10].tolist()} contain NaN or inf.")
    if isinstance(explainer, ExplainedQNode):
        # traces the model at the first row (nothing runs): shapes and options are checked here
        row_args = args[:argnums] + (inputs[0],) + args[argnums + 1 :]
        if explainer.needs_preparation:  # its plan needs circuits run first: check the call
            embedding = ModelCall(explainer.qnode, row_args, kwargs, explainer.options.argnums).kind
        else:
            embedding = explainer.plan(*row_args, **kwargs).embedding
        zero = ~rows.any(axis=1)
        if embedding == "amplitude" and zero.any():
            raise ValueError(
                f"Input rows {np.flatnonzero(zero)[:10].tolist()} are all zero and cannot be "
                "amplitude-embedded."
            )
    return inputs


def _position_of(explainer, name):
    """The position of the argument ``name`` of the explained QNode (or of a plain function)."""
    func = explainer.qnode.func if isinstance(explainer, ExplainedQNode) else explainer
    names = list(inspect.signature(func).parameters)
    if name not in names:
        raise ValueError(f"argnums={name!r} does not name an argument (its arguments: {names}).")
    return names.index(name)


# Compiled programs of recent explain_batch calls, so that calling it again with the same
# explainer, options and shapes reuses the program instead of tracing and compiling anew.
# Bounded: each entry keeps its explainer alive.
_COMPILED_CACHE: OrderedDict = OrderedDict()
COMPILED_CACHE_SIZE = 8


def _cache_key(explainer, n_args, argnums, kwargs, devices):
    """A hashable key of one compiled program, or ``None`` when ``kwargs`` are not hashable."""
    try:
        key = (id(explainer), n_args, argnums, tuple(sorted(kwargs.items())), tuple(devices))
        hash(key)
    except TypeError:
        return None
    return key


def _cached_compiled(explainer, n_args, argnums, kwargs, devices):
    """:func:`_compiled`, reused across calls with the same explainer, options and devices
    (JAX then reuses the executable for inputs of the same shapes and dtypes)."""
    key = _cache_key(explainer, n_args, argnums, kwargs, devices)
    if key is None:
        return _compiled(explainer, n_args, argnums, kwargs, devices)
    entry = _COMPILED_CACHE.get(key)
    if entry is not None and entry[0] is explainer:  # the id was not reused by another object
        _COMPILED_CACHE.move_to_end(key)
        return entry[1]
    compiled = _compiled(explainer, n_args, argnums, kwargs, devices)
    _COMPILED_CACHE[key] = (explainer, compiled)
    while len(_COMPILED_CACHE) > COMPILED_CACHE_SIZE:
        _COMPILED_CACHE.popitem(last=False)
    return compiled


def clear_compiled_cache():
    """Forget the compiled programs :func:`explain_batch` keeps for repeated calls."""
    _COMPILED_CACHE.clear()


def _compiled(explainer, n_args, argnums, kwargs, devices):
    """``jit(vmap(explainer))`` over the batched argument, split over ``devices`` if several."""

    def explain_rows(rows, *rest):
        call_args = rest[:argnums] + (rows,) + rest[argnums:]
        in_axes = tuple(0 if i == argnums else None for i in range(n_args))
        return jax.vmap(lambda *a: explainer(*a, **kwargs), in_axes=in_axes)(*call_args)

    if len(devices) == 1:
        return jax.jit(explain_rows)
    mesh = Mesh(np.array(devices), (BATCH_AXIS,))
    sharded = jax.shard_map(
        explain_rows,
        mesh=mesh,
        in_specs=(PartitionSpec(BATCH_AXIS),) + (PartitionSpec(),) * (n_args - 1),
        out_specs=PartitionSpec(BATCH_AXIS),
    )
    return jax.jit(sharded)


def explain_batch(
    explainer,
    *args,
    argnums=None,
    internal_batch_size=256,
    devices=None,
    progress=False,
    **kwargs,
):
    """Explain every row of a batched argument: chunked, compiled once, sharded over devices.

    Args:
        explainer (callable): an explained QNode (``xqml.integrated_gradients(qnode)``, ...) or
            any JAX-traceable function of one input row returning arrays (or a tuple of them).
        *args: the explainer's arguments, with the batched one (leading axis = rows) at
            position ``argnums``; the others are shared by every row.
        argnums (int or str): position (or name) of the batched argument. Default: the
            explained QNode's own ``argnums`` (its input), else 0.
        internal_batch_size (int): rows per compiled call (rounded up to a multiple of the
            number of devices). Memory grows with it, not with the number of rows.
        devices: ``None`` (every device of JAX's default backend), a number of them, or a list
            of :class:`jax.Device`. With more than one, each chunk is split over them. Only
            models on default.qubit (simulated inside XLA) are sharded; other devices run
            through host callbacks on one device object and use one JAX device.
        progress (bool): show a ``tqdm`` progress bar counting explained rows.
        **kwargs: keyword arguments of the explainer (shared by every row).

    Returns:
        The explainer's output for every row, stacked on a leading axis, as NumPy arrays (a
        tuple of them when the explainer returns a tuple, e.g. with
        ``return_convergence_delta=True``).

    **Example**

    >>> import numpy as np, pennylane as qml, pennylane_xqml as xqml
    >>> dev = qml.device("default.qubit", wires=2)
    >>> @xqml.integrated_gradients(return_convergence_delta=True)
    ... @qml.qnode(dev, interface="jax")
    ... def model(x, w):
    ...     qml.AmplitudeEmbedding(x, wires=range(2), normalize=True)
    ...     qml.RY(w, wires=0)
    ...     qml.CNOT(wires=[0, 1])
    ...     return qml.expval(qml.Z(1))
    >>> X = np.random.default_rng(0).uniform(0.1, 1.0, size=(10, 4))
    >>> attributions, deltas = xqml.explain_batch(model, X, 0.4, internal_batch_size=4)
    >>> attributions.shape, bool(np.abs(deltas).max() < 1e-5)
    ((10, 4), True)
    """
    if argnums is None:
        argnums = explainer.options.argnums if isinstance(explainer, ExplainedQNode) else 0
    if isinstance(argnums, str):
        argnums = _position_of(explainer, argnums)
    if not is_int(argnums):
        raise TypeError(
            f"argnums must be one int or argument name (the batched argument), got {argnums!r}."
        )
    check_positive_int(internal_batch_size, "internal_batch_size")
    if not callable(explainer):
        raise TypeError(f"explainer must be callable, got {type(explainer).__name__}.")
    devices = _resolve_devices(devices, explainer)
    inputs = _validated_inputs(explainer, args, argnums, kwargs)
    argnums %= len(args)
    rest = args[:argnums] + args[argnums + 1 :]

    n_rows, n_devices = len(inputs), len(devices)
    chunk = n_devices * math.ceil(min(internal_batch_size, n_rows) / n_devices)
    explain_rows = _cached_compiled(explainer, len(args), argnums, kwargs, devices)

    outputs = None
    from tqdm.auto import tqdm  # pylint: disable=import-outside-toplevel  (import time)

    with tqdm(total=n_rows, disable=not progress, unit="expl") as bar:
        for start in range(0, n_rows, chunk):
            rows = inputs[start : start + chunk]
            n_valid = len(rows)
            if n_valid < chunk:  # same shape for every call: pad with the last row, drop later
                rows = np.concatenate([rows, np.repeat(rows[-1:], chunk - n_valid, axis=0)])
            placed = jax.device_put(rows, devices[0]) if n_devices == 1 else jnp.asarray(rows)
            result = explain_rows(placed, *rest)
            leaves, tree = jax.tree_util.tree_flatten(result)
            if outputs is None:
                outputs = [
                    np.empty((n_rows, *np.shape(leaf)[1:]), np.asarray(leaf).dtype)
                    for leaf in leaves
                ]
            for out, leaf in zip(outputs, leaves):
                out[start : start + n_valid] = np.asarray(leaf)[:n_valid]
            bar.update(n_valid)
    return jax.tree_util.tree_unflatten(tree, outputs)
