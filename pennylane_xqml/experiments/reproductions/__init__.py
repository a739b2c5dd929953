"""Command-line reproductions of the papers' experiments (``xqml reproduce NAME``).

Each reproduction is a module of this package with a function
``run(output_dir="xqml_output", quick=False, progress=True)`` that prints its table, writes its
figures to ``output_dir`` and returns its results. :data:`REPRODUCTIONS` maps the command-line
names to the modules.
"""

import importlib

REPRODUCTIONS = {
    "gate-shapley": "gate_shapley",
    "gradcam-digits": "gradcam_digits",
    "noise-study": "noise_study",
    "qpert-iris": "qpert_iris",
    "right-reasons": "right_reasons",
    "taylor-synthetic": "taylor_synthetic",
    "tfim-phases": "tfim_phases",
}
"""``{name: module}``: filled in as reproductions land (e.g. ``"qpert-iris": "qpert_iris"``)."""


def load(name):
    """The ``run`` function of the reproduction ``name``."""
    if name not in REPRODUCTIONS:
        known = ", ".join(sorted(REPRODUCTIONS)) or "none yet"
        raise ValueError(f"Unknown reproduction {name!r}; available: {known}.")
    return importlib.import_module(f"{__name__}.{REPRODUCTIONS[name]}").run
