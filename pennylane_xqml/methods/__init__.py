"""The attribution methods, one module per method (QPert is a small package).

Each method is a class that builds a :class:`~pennylane_xqml.engine.plan.Plan` and a transform
made from it with :func:`~pennylane_xqml.engine.transform.attribution_transform`; see
CONTRIBUTING.md. Methods import the engine, never an experiment.
"""
