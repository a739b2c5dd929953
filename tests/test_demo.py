"""The README's demo (HATTRIQ on Bars and Stripes and digits) and the plotting helpers."""

import numpy as np
import pytest

from pennylane_xqml.experiments import plotting
from pennylane_xqml.experiments.demo import HATTRIQ_STEPS, ROW_KEYS, format_table, run_demo

pytestmark = pytest.mark.slow  # the fast tier (-m "not slow") leaves this module out


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("xqml_output")
    return out, run_demo(out, quick=True, progress=False)


class TestRunDemo:
    def test_writes_heatmaps(self, demo_run):
        out, _ = demo_run
        for name in ("bars_and_stripes_ig.png", "digits_ig.png"):
            path = out / name
            assert path.exists() and path.stat().st_size > 1000
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    def test_rows_have_documented_keys(self, demo_run):
        _, rows = demo_run
        assert [row["dataset"] for row in rows] == ["bars_and_stripes", "digits"]
        for row in rows:
            assert tuple(row) == ROW_KEYS

    def test_accuracy(self, demo_run):
        _, rows = demo_run
        for row in rows:
            assert row["test_accuracy"] >= 0.8, row

    def test_completeness(self, demo_run):
        _, rows = demo_run
        for row in rows:
            assert row["images_explained"] > 0
            assert row["mean_abs_delta"] < 1e-8

    def test_circuit_counts(self, demo_run):
        _, rows = demo_run
        for row, qubits in zip(rows, (4, 6)):
            assert row["qubits"] == qubits
            # <Z_0> is one Pauli word: the exact IG is one Hadamard-test circuit
            assert row["circuits_hadamard_all"] == 1
            assert row["circuits_default"] >= 1
            assert row["circuits_hattriq"] == 2**qubits * HATTRIQ_STEPS
            assert row["ms_per_explanation"] > 0

    def test_table(self, demo_run):
        _, rows = demo_run
        table = format_table(rows)
        assert "bars_and_stripes" in table and "digits" in table
        assert len(table.splitlines()) == 2 + len(rows)


class TestPlotting:
    def test_attribution_grid(self, tmp_path):
        rng = np.random.default_rng(0)
        path = tmp_path / "grid.png"
        fig = plotting.plot_attribution_grid(
            rng.random((3, 16)),
            rng.normal(size=(3, 4, 4)),
            (4, 4),
            titles=["a", "b", "c"],
            path=path,
        )
        assert path.stat().st_size > 0
        assert len(fig.axes) == 7  # 2 x 3 panels and the colourbar
        heat = fig.axes[3].images[0]
        low, high = heat.get_clim()
        assert low == pytest.approx(-high)  # symmetric around 0
        plotting.plt.close(fig)

    def test_attribution_grid_checks_shapes(self):
        with pytest.raises(ValueError, match="image_shape"):
            plotting.plot_attribution_grid(np.ones((2, 16)), np.ones((2, 16)), (3, 3))
        with pytest.raises(ValueError, match="titles"):
            plotting.plot_attribution_grid(np.ones((2, 4)), np.ones((2, 4)), (2, 2), titles=["x"])

    def test_shot_study(self, tmp_path):
        shots = np.array([100, 1000, 10000])
        path = tmp_path / "shots.png"
        fig = plotting.plot_shot_study(shots, 0.1 / np.sqrt(shots), 0.1 / np.sqrt(shots), path=path)
        assert path.stat().st_size > 0
        assert fig.axes[0].get_xscale() == fig.axes[0].get_yscale() == "log"
        plotting.plt.close(fig)
        repeated = np.outer(0.1 / np.sqrt(shots), [0.9, 1.1])
        fig = plotting.plot_shot_study(
            shots, repeated, 0.1 / np.sqrt(shots), path=tmp_path / "r.pdf"
        )
        assert (tmp_path / "r.pdf").stat().st_size > 0
        plotting.plt.close(fig)

    def test_attribution_bars(self, tmp_path):
        path = tmp_path / "bars.png"
        fig = plotting.plot_attribution_bars([0.3, -0.2, 0.1], ["a", "b", "c"], path=path)
        assert path.stat().st_size > 0
        assert len(fig.axes[0].patches) == 3
        plotting.plt.close(fig)
        with pytest.raises(ValueError, match="feature names"):
            plotting.plot_attribution_bars([0.3, -0.2], ["a"])
