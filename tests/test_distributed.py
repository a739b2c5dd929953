"""explain_batch over two processes with jax.distributed (gloo CPU collectives on 127.0.0.1).

Three fresh Python processes run the same script with the thread count pinned: two form one
``jax.distributed`` run, one is a plain single process. The two-process results, gathered on
every process, must equal the single process's to 1e-12, while each process executed only its
share of the rows.
"""

import os
import socket
import subprocess
import sys
import textwrap

import numpy as np

WORKER = textwrap.dedent(
    """
    import sys
    import jax
    jax.config.update("jax_enable_x64", True)
    mode, out = sys.argv[1], sys.argv[2]
    if mode != "single":
        port, process_id = sys.argv[3], int(mode)
        jax.distributed.initialize(
            coordinator_address=f"127.0.0.1:{port}", num_processes=2, process_id=process_id,
            initialization_timeout=60,
        )
    import numpy as np, pennylane as qml, pennylane_xqml as xqml

    rng = np.random.default_rng(5)
    X = rng.uniform(0.05, 1.0, size=(7, 8))  # 7 rows: shares of 4 and 3 (+1 padding row)
    w = rng.uniform(0, 2 * np.pi, size=(2, 3, 3))

    def explained(device):
        dev = qml.device(device, wires=4)  # a spare wire: the ancilla is on the tracked device

        @qml.qnode(dev, interface="jax")
        def model(x, w):
            qml.AmplitudeEmbedding(x, wires=range(3), normalize=True)
            qml.StronglyEntanglingLayers(w, wires=range(3))
            return qml.expval(qml.Z(0) @ qml.Z(2)), qml.expval(qml.X(1))

        return dev, xqml.integrated_gradients(
            model, gradient="hadamard_all", return_convergence_delta=True
        )

    results = {"process_count": jax.process_count()}
    for name in ("lightning.qubit", "default.qubit"):
        dev, explainer = explained(name)
        with qml.Tracker(dev) as tracker:
            values, deltas = xqml.explain_batch(explainer, X, w, internal_batch_size=2)
        results[name + " values"], results[name + " deltas"] = values, deltas
        results[name + " rows run"] = tracker.totals.get("executions", 0)  # callbacks only
    if jax.process_count() > 1:  # rows that differ between the processes are refused by all
        try:
            xqml.explain_batch(explainer, X + jax.process_index(), w)
        except ValueError as error:
            results["refused"] = str(error)
    np.savez(out, **results)
    """
)

GLOO_HINT = (
    "The two-process jax.distributed run failed. It needs JAX's gloo CPU collectives "
    "(jax.config.jax_cpu_collectives_implementation == 'gloo', shipped with jaxlib) and "
    "TCP on 127.0.0.1; stderr of process {i}:\n{stderr}"
)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_processes_equal_one_process(tmp_path):
    env = dict(
        os.environ,
        XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
        OMP_NUM_THREADS="1",
        JAX_PLATFORMS="cpu",
    )
    port = str(free_port())
    runs = {
        "single": ["single", str(tmp_path / "single.npz")],
        0: ["0", str(tmp_path / "p0.npz"), port],
        1: ["1", str(tmp_path / "p1.npz"), port],
    }
    procs = {
        key: subprocess.Popen(
            [sys.executable, "-c", WORKER, *argv],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for key, argv in runs.items()
    }
    errors = {}
    try:
        for key, proc in procs.items():
            _, stderr = proc.communicate(timeout=240)
            if proc.returncode != 0:
                errors[key] = stderr[-3000:]
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert not errors, "\n".join(GLOO_HINT.format(i=k, stderr=e) for k, e in errors.items())

    single = np.load(tmp_path / "single.npz")
    assert int(single["process_count"]) == 1
    for i in (0, 1):
        run = np.load(tmp_path / f"p{i}.npz")
        assert int(run["process_count"]) == 2
        for name in ("lightning.qubit", "default.qubit"):
            for what in ("values", "deltas"):
                key = f"{name} {what}"
                assert run[key].shape == single[key].shape and run[key].dtype == np.float64
                # every process gets every row, in order, as one process computes them
                np.testing.assert_allclose(run[key], single[key], rtol=0, atol=1e-12)
            # completeness: the attributions of each output sum to f(x) - f(0)
            np.testing.assert_allclose(run[f"{name} deltas"], 0.0, atol=1e-10)
        assert "same arguments on every process" in str(run["refused"])
        # each process executed only its share: 4 rows (3 + 1 padding row) of the 7, where
        # the single process ran 8 (7 + 1 padding row of its last chunk of 2)
        tapes_run = int(run["lightning.qubit rows run"])
        assert tapes_run > 0 and 2 * tapes_run == int(single["lightning.qubit rows run"])
