"""The ``xqml`` command line."""

import pytest

from pennylane_xqml.cli import build_parser, main
from pennylane_xqml.experiments.reproductions import REPRODUCTIONS, load


def test_demo_arguments():
    args = build_parser().parse_args(["demo", "--output", "out", "--quick", "--no-progress"])
    assert (args.output, args.quick, args.no_progress) == ("out", True, True)


def test_unknown_command_and_reproduction_are_refused(capsys):
    with pytest.raises(SystemExit):
        main(["explain-everything"])
    with pytest.raises(SystemExit):
        main(["reproduce", "no-such-paper"])
    assert "invalid choice" in capsys.readouterr().err
    with pytest.raises(ValueError, match="Unknown reproduction"):
        load("no-such-paper")


def test_every_registered_reproduction_has_a_run_function():
    for name in REPRODUCTIONS:
        assert callable(load(name))


def test_workers_option_is_passed_only_where_accepted():
    args = build_parser().parse_args(["reproduce", "qpert-iris", "--workers", "2"])
    assert args.workers == 2
    assert build_parser().parse_args(["reproduce", "qpert-iris"]).workers is None
    with pytest.raises(SystemExit, match="does not take --workers"):
        main(["reproduce", "gate-shapley", "--workers", "2"])


def test_qpert_iris_refuses_bad_workers_before_training(monkeypatch, tmp_path):
    from pennylane_xqml.experiments.reproductions import qpert_iris

    def no_model(*args, **kwargs):
        raise AssertionError("the model was built before the options were checked")

    monkeypatch.setattr(qpert_iris, "IrisQCL", no_model)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="workers must be a positive integer"):
            qpert_iris.run(str(tmp_path), workers=bad)


def test_qpert_iris_refuses_unknown_stages_before_running():
    from pennylane_xqml.experiments.reproductions import qpert_iris

    with pytest.raises(ValueError, match="Unknown stages"):
        qpert_iris.run_stages(None, None, None, stages=("SHAP",))
