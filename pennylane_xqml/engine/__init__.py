"""The engine: input tracing, gradient rules, plans of circuits and their execution.

Nothing here knows about a particular attribution method. Methods (:mod:`pennylane_xqml.methods`)
build on :mod:`~pennylane_xqml.engine.transform` and :mod:`~pennylane_xqml.engine.plan`; the
engine never imports a method or an experiment (``scripts/check_architecture.py`` checks it).
"""
