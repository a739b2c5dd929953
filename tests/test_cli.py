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
