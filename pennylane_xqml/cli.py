"""The ``xqml`` command line.

``xqml demo`` runs the main job (see :func:`pennylane_xqml.experiments.demo.run_demo`), ``xqml reproduce
NAME`` a paper's experiment (see :mod:`pennylane_xqml.experiments.reproductions`)::

    xqml demo --output xqml_output
"""

from __future__ import annotations

import argparse
import inspect
import sys

from .experiments.reproductions import REPRODUCTIONS


def _demo(args):
    from .experiments.demo import run_demo

    run_demo(args.output, quick=args.quick, progress=not args.no_progress)
    return 0


def _reproduce(args):
    from .experiments.reproductions import load

    options = {} if args.workers is None else {"workers": args.workers}
    run = load(args.name)
    if options and "workers" not in inspect.signature(run).parameters:
        raise SystemExit(f"xqml reproduce {args.name} does not take --workers.")
    run(args.output, quick=args.quick, progress=not args.no_progress, **options)
    return 0


def build_parser():
    """The argument parser of ``xqml`` (sub-commands: ``demo``, ``reproduce``)."""
    parser = argparse.ArgumentParser(
        prog="xqml", description="Explanations for PennyLane quantum models (pennylane-xqml)."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo",
        help="train amplitude classifiers on Bars and Stripes and digits, explain them with exact "
        "integrated gradients, print a table and write heatmaps",
    )
    demo.add_argument("--output", default="xqml_output", help="folder for the PNG heatmaps")
    demo.add_argument("--quick", action="store_true", help="fewer epochs and images (smoke run)")
    demo.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    demo.set_defaults(run=_demo)
    reproduce = commands.add_parser("reproduce", help="reproduce a paper's experiment")
    reproduce.add_argument("name", choices=sorted(REPRODUCTIONS), help="which experiment")
    reproduce.add_argument("--output", default="xqml_output", help="folder for tables and figures")
    reproduce.add_argument("--quick", action="store_true", help="a smaller, faster run")
    reproduce.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    reproduce.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes for the explanation stages (qpert-iris; default 1: everything "
        "in one process)",
    )
    reproduce.set_defaults(run=_reproduce)
    return parser


def main(argv=None):
    """Entry point of the ``xqml`` console script."""
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
