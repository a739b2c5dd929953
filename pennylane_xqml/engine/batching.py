"""Many explanations at once: chunked (bounded memory), sharded over JAX devices and over
processes (``jax.distributed``), with progress.

:func:`explain_batch` is to an explanation what Captum's ``internal_batch_size`` is to an
attribution call: the inputs are split into chunks of ``internal_batch_size`` rows, each chunk
is one call of a compiled ``jax.vmap`` of the explainer (compiled once, since every chunk has the
same shape: the last one is padded by repeating its final row and the padding is dropped), and
the results are copied to host memory chunk by chunk. Device memory therefore depends on the
chunk size, not on the number of inputs.

**Devices executed through host callbacks** (lightning.*, qiskit.aer, hardware): the compiled
program builds the explanation's plan once, for the abstract row, and executes its tapes with
:func:`run_tapes_in_one_callback`: one host callback per chunk, in which every row's tapes go to
the device in **one** :func:`~pennylane_xqml.engine.execution.execute_batch` call (one job per
chunk on hardware), instead of PennyLane's one callback and one ``qml.execute`` per row. The
processing of the results stays compiled and vectorised. A preparation step
(``explainer.needs_preparation``) and simulator requests (the ``"adjoint"``/``"backprop"``
rules) run as in a call of the explainer, through PennyLane's own callbacks, row by row.

With more than one JAX device (several GPUs, or CPU devices from
``XLA_FLAGS=--xla_force_host_platform_device_count=N``) each chunk is split over the devices
with :func:`jax.shard_map` on a one-axis :class:`jax.sharding.Mesh`: every device explains its
slice of the rows with the same program, so the results equal the unsharded run's. Only
default.qubit (simulated inside XLA) is sharded over devices: a callback device is one Python
object per process, which concurrent shards would share.

**Several processes or hosts** (:func:`jax.distributed`): when ``jax.process_count() > 1``,
every process calls :func:`explain_batch` with the *same* arguments (checked: they are hashed
and compared across processes). Each process explains one contiguous block of
``ceil(n_rows / process_count)`` rows on its own local devices (and its own device object,
so lightning.qubit or qiskit.aer scale out across processes), and the blocks are gathered with
:func:`jax.experimental.multihost_utils.process_allgather`: **every process** returns all the
rows, in order, equal to a single process's results. The recipe, one command per host::

    # host i of N (the coordinator is host 0, reachable at HOST0:PORT)
    import jax
    jax.distributed.initialize(coordinator_address="HOST0:PORT", num_processes=N,
                               process_id=i)   # CPU collectives: gloo, JAX's default
    import pennylane_xqml as xqml
    attributions = xqml.explain_batch(explained, X, weights)   # the same X on every host

(On one machine, ``127.0.0.1`` and a free port; ``tests/test_distributed.py`` runs two
processes so and compares them with one.)

The compiled program is kept for the next call with the same explainer, keyword options, argument
count and devices (the :data:`COMPILED_CACHE_SIZE` most recent ones), so explaining more rows
later, or the same rows with new weights, does not compile again;
:func:`clear_compiled_cache` forgets them.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import math
from collections import OrderedDict

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
from jax.experimental import multihost_utils
from jax.sharding import Mesh, PartitionSpec

from .core import ModelCall
from .execution import execute_batch, row_of
from .inputs import bind_broadcast_parameters
from .plan import execute_plan
from .torch_bridge import call_with_torch, has_torch
from .transform import ExplainedFunction, ExplainedQNode, Explanation
from .validation import check_no_program_capture, check_positive_int, is_int

BATCH_AXIS = "batch"


def _simulated_in_xla(explainer):
    """Whether ``explainer`` runs inside XLA (default.qubit), rather than through host callbacks
    (an explained function of QNodes, whose devices are known only per call, always takes the
    callback route, which runs on any device)."""
    if isinstance(explainer, ExplainedFunction):
        return False
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
    available = jax.local_devices()  # this process's (all of them without jax.distributed)
    if not _simulated_in_xla(explainer):
        if devices is None:
            return available[:1]
        requested = devices if isinstance(devices, (int, np.integer)) else len(list(devices))
        if requested != 1:
            name = getattr(getattr(explainer, "qnode", None), "device", None)
            name = name.name if name is not None else "A function model's QNodes"
            raise ValueError(
                f"{name} is executed through host callbacks on one device "
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
    if any(d.process_index != jax.process_index() for d in devices):
        raise ValueError(
            "devices must belong to this process (jax.local_devices()): under jax.distributed "
            "explain_batch splits the rows between the processes itself."
        )
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
    if isinstance(explainer, ExplainedFunction):
        row_args = args[:argnums] + (inputs[0],) + args[argnums + 1 :]
        explainer.traced_call(row_args, kwargs)  # traced at the first row: checks it, runs nothing
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


def _positional_arguments(explainer, args, kwargs):
    """``(args, kwargs)`` with every argument that can be positional made positional (by the
    signature of the explained QNode's function, or of a plain explainer), so that the batched
    rows, or any argument before them, may be passed by keyword. Calls the signature does not
    bind are left as they are (the explainer then raises its own error)."""
    try:
        bound = inspect.signature(_signature_source(explainer)).bind(*args, **kwargs)
    except (TypeError, ValueError):
        return tuple(args), dict(kwargs)
    return tuple(bound.args), dict(bound.kwargs)


def _signature_source(explainer):
    """The function whose signature the explainer's calls follow: the explained QNode's
    quantum function, the explained function model, or a plain explainer itself."""
    func = explainer.model if isinstance(explainer, Explanation) else explainer
    return func.func if isinstance(func, qml.QNode) else func


def _position_of(explainer, name):
    """The position of the argument ``name`` of the explained QNode (or of a plain function)."""
    names = list(inspect.signature(_signature_source(explainer)).parameters)
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


def _result_struct(tape, device):
    """The shapes and dtypes of ``tape``'s results as :func:`qml.execute` returns them (one
    array, or a tuple of them for several measurements), for :func:`jax.pure_callback`."""
    n_wires = len(device.wires) if device.wires else len(tape.wires)
    shots = tape.shots.total_shots

    def struct(mp):
        shape = mp.shape(shots=shots, num_device_wires=n_wires)
        if tape.batch_size:
            shape = (tape.batch_size, *shape)
        return jax.ShapeDtypeStruct(shape, jax.dtypes.canonicalize_dtype(mp.numeric_type))

    structs = tuple(struct(mp) for mp in tape.measurements)
    return structs[0] if len(structs) == 1 else structs


def _rows_of_results(tapes, counts, values, n_rows, device, broadcast):
    """Every row's results (flat leaves) of ``tapes`` with the rows' parameters ``values``
    (each ``(n_rows, ...)``), from one :func:`execute_batch` call. A tape becomes one
    parameter-broadcast tape of the ``n_rows`` rows when its operations accept it (the device
    expands it if it does not broadcast natively), else one tape per row."""
    if not n_rows:
        return []
    run, layout, start = [], [], 0
    for tape, count in zip(tapes, counts):
        columns = values[start : start + count]
        start += count
        merged = None
        if broadcast and count and n_rows > 1:
            try:
                merged = bind_broadcast_parameters(tape, columns)
            except (ValueError, TypeError, IndexError):
                merged = None
            if merged is not None and merged.batch_size != n_rows:
                merged = None
        if merged is not None:
            layout.append((len(run), True, len(tape.measurements)))
            run.append(merged)
        else:
            layout.append((len(run), False, len(tape.measurements)))
            for row in range(n_rows):
                row_params = [v[row] for v in columns]
                run.append(tape.bind_new_parameters(row_params, list(range(count))))
    results = execute_batch(run, device, diff_method=None, broadcast=broadcast)

    def result_of(t, row):
        index, is_merged, n_measurements = layout[t]
        if not is_merged:
            return results[index + row]
        return row_of(results[index], row, n_measurements)

    return [
        jax.tree_util.tree_leaves(tuple(result_of(t, r) for t in range(len(tapes))))
        for r in range(n_rows)
    ]


def run_tapes_in_one_callback(tapes, device, broadcast=True):
    """Execute ``tapes`` (traced under ``jax.jit(jax.vmap(...))``) with one host callback per
    chunk of rows, not one per row: the ``run_tapes`` that :func:`explain_batch` gives
    :func:`~.plan.execute_plan` on devices executed through host callbacks.

    PennyLane's ``jax-jit`` interface maps a device without native parameter broadcasting
    (lightning.*, qiskit.aer, hardware) over ``jax.vmap`` with
    ``jax.pure_callback(..., vmap_method="sequential")``: one callback, one ``qml.execute`` and
    one device job per row. Here the callback is vectorised (``vmap_method="broadcast_all"``):
    it receives the gate parameters of every row of the chunk at once, binds each row's to the
    plan's tapes and executes all of them in **one**
    :func:`~pennylane_xqml.engine.execution.execute_batch` call (so tapes that differ only in
    their parameters can be merged into broadcast tapes there).

    Why rebinding parameters is exact: the plan is built once, from the abstract row the
    vmapped trace sees, and the structure of every tape (gates, wires, measurements, shots) is
    fixed by that trace. The input's path into the circuit is traced as a function
    (:class:`~.core.ModelCall`), so a tape's structure never depends on the input's value, only
    its parameters do, and those are the traced values XLA computes for each row. The callback
    puts exactly those parameters into copies of the same tapes, which is what PennyLane's own
    callback does row by row. Where the operations accept it, each tape of the plan runs as one
    parameter-broadcast tape of all the rows (the device expands it if it does not broadcast
    natively), which saves building a tape per row. The processing of the results stays in the
    compiled program, vectorised over the rows.

    The results are not differentiable (:func:`explain_batch` returns NumPy arrays). With
    ``broadcast=False`` (the explanation's option) every row's tapes run as separate tapes, in
    the same one execution.
    """
    if not tapes:  # a plan of simulator requests only
        return ()
    params = [tape.get_parameters(trainable_only=False) for tape in tapes]
    counts = [len(ps) for ps in params]
    flat = [p for ps in params for p in ps]
    ndims = [len(qml.math.shape(p)) for p in flat]
    structs = tuple(_result_struct(tape, device) for tape in tapes)
    leaf_structs, tree = jax.tree_util.tree_flatten(structs)

    def host(*values):
        values = [np.asarray(v) for v in values]
        batch = values[0].shape[: values[0].ndim - ndims[0]] if values else ()
        n_rows = math.prod(batch)
        values = [v.reshape((n_rows, *v.shape[len(batch) :])) for v in values]
        per_row = _rows_of_results(tapes, counts, values, n_rows, device, broadcast)
        leaves = [
            np.stack([np.asarray(row[i], s.dtype) for row in per_row]).reshape(batch + s.shape)
            if n_rows
            else np.zeros(batch + s.shape, s.dtype)
            for i, s in enumerate(leaf_structs)
        ]
        return jax.tree_util.tree_unflatten(tree, leaves)

    return jax.pure_callback(host, structs, *flat, vmap_method="broadcast_all")


def _compiled(explainer, n_args, argnums, kwargs, devices):
    """``jit(vmap(explainer))`` over the batched argument, split over ``devices`` if several.

    On devices executed through host callbacks, the explainer's plan is executed with
    :func:`run_tapes_in_one_callback` (one device execution per chunk); its preparation step
    and simulator requests, if any, run as in a call of the explainer."""
    if _simulated_in_xla(explainer):

        def explain_one(*a):
            return explainer(*a, **kwargs)

    else:

        def explain_one(*a):
            plan = explainer.prepared_plan(*a, **kwargs)
            run = functools.partial(run_tapes_in_one_callback, broadcast=plan.broadcast)
            return execute_plan(plan, run)

    def explain_rows(rows, *rest):
        call_args = rest[:argnums] + (rows,) + rest[argnums:]
        in_axes = tuple(0 if i == argnums else None for i in range(n_args))
        return jax.vmap(explain_one, in_axes=in_axes)(*call_args)

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
        devices: ``None`` (every local device of JAX's default backend), a number of them, or a
            list of this process's :class:`jax.Device`. With more than one, each chunk is split
            over them. Only models on default.qubit (simulated inside XLA) are sharded; other
            devices run through host callbacks on one device object and use one JAX device per
            process (one device execution per chunk). Under :func:`jax.distributed` the rows
            are split between the processes and every process gets all the results.
        progress (bool): show a ``tqdm`` progress bar counting explained rows.
        **kwargs: keyword arguments of the explainer (shared by every row).

    Returns:
        The explainer's output for every row, stacked on a leading axis, as NumPy arrays (a
        tuple of them when the explainer returns a tuple, e.g. with
        ``return_convergence_delta=True``). Torch tensors among the arguments give torch
        tensors (the input's dtype and device), computed as the same call with JAX arrays;
        like the NumPy results they are not differentiable (call the explainer itself for
        ``torch.autograd``).

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
    check_no_program_capture("explain_batch")
    if argnums is None:
        argnums = explainer.options.argnums if isinstance(explainer, Explanation) else 0
    if isinstance(argnums, str):
        argnums = _position_of(explainer, argnums)
    if not is_int(argnums):
        raise TypeError(
            f"argnums must be one int or argument name (the batched argument), got {argnums!r}."
        )
    check_positive_int(internal_batch_size, "internal_batch_size")
    if not callable(explainer):
        raise TypeError(f"explainer must be callable, got {type(explainer).__name__}.")
    args, kwargs = _positional_arguments(explainer, args, kwargs)
    if has_torch(args, kwargs):  # torch in, torch out: the same call with JAX arrays
        if not -len(args) <= argnums < len(args):
            raise ValueError(
                f"argnums={argnums} does not name one of the {len(args)} arguments given."
            )
        explain = functools.partial(
            explain_batch,
            explainer,
            argnums=argnums,
            internal_batch_size=internal_batch_size,
            devices=devices,
            progress=progress,
        )
        return call_with_torch(explain, args, kwargs, x=args[argnums], differentiable=False)
    devices = _resolve_devices(devices, explainer)
    if jax.process_count() > 1:
        _check_same_arguments_on_every_process(args, argnums)
    inputs = _validated_inputs(explainer, args, argnums, kwargs)
    argnums %= len(args)
    rest = args[:argnums] + args[argnums + 1 :]
    explain_rows = _cached_compiled(explainer, len(args), argnums, kwargs, devices)
    n_rows, n_processes = len(inputs), jax.process_count()
    if n_processes == 1:
        return _explain_rows_here(
            explain_rows, inputs, rest, devices, internal_batch_size, progress
        )
    # this process's share: a contiguous block of rows, padded (with the last row) so every
    # process runs the same number of rows and the gathered blocks line up
    share = math.ceil(n_rows / n_processes)
    mine = inputs[jax.process_index() * share :][:share]
    n_mine = len(mine)
    filler = mine[-1:] if n_mine else inputs[-1:]
    mine = np.concatenate([mine, np.repeat(filler, share - n_mine, axis=0)])
    local = _explain_rows_here(explain_rows, mine, rest, devices, internal_batch_size, progress)
    gathered = multihost_utils.process_allgather(local, tiled=True)
    return jax.tree_util.tree_map(lambda leaf: np.asarray(leaf)[:n_rows], gathered)


def _check_same_arguments_on_every_process(args, argnums):
    """Refuse, on every process alike, arguments that differ between the processes of a
    ``jax.distributed`` run (each process explains its share of *the same* rows)."""
    digest = hashlib.sha256()
    for leaf in jax.tree_util.tree_leaves(args):
        value = np.asarray(qml.math.unwrap(leaf))
        if value.dtype.kind not in "biufc":  # text, or an object (whose repr holds an address)
            text = leaf if isinstance(leaf, str) else type(leaf).__qualname__
            digest.update(text.encode())
            continue
        digest.update(f"{value.dtype.str}{value.shape}".encode())
        digest.update(np.ascontiguousarray(value).tobytes())
    mine = np.frombuffer(digest.digest()[:8], dtype=np.uint8).astype(np.int32)
    everyone = np.asarray(multihost_utils.process_allgather(mine))
    if not (everyone == everyone[0]).all():
        raise ValueError(
            "explain_batch under jax.distributed needs the same arguments on every process (it "
            "splits the rows of the batched argument, argnums="
            f"{argnums}, between the {jax.process_count()} processes), but they differ."
        )


def _explain_rows_here(explain_rows, inputs, rest, devices, internal_batch_size, progress):
    """Every row of ``inputs`` explained in this process, chunk by chunk, as NumPy arrays."""
    n_rows, n_devices = len(inputs), len(devices)
    chunk = n_devices * math.ceil(min(internal_batch_size, n_rows) / n_devices)
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
