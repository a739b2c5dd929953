"""Sphinx configuration of the pennylane-xqml documentation site.

Build (from the repository root, after ``pip install -e ".[docs]"``)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

Everything the pages load is served from the build itself: the theme is furo and formulas are
rendered by MathJax 3 copied from the ``django-static-mathjax`` wheel, so the site works with no
network (PennyLane's own ``pennylane-sphinx-theme`` loads Bootstrap, highlight.js, fonts and
MathJax 2 from CDNs in its layout, so it is not used).
"""

import hashlib
import os
import shutil
import sys
from pathlib import Path
from typing import ClassVar

import mathjax  # the django-static-mathjax wheel: MathJax 3.2.2 as static files
from docutils import nodes
from docutils.parsers.rst import Directive, directives
from sphinx.util import logging

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))

import pennylane_xqml

logger = logging.getLogger(__name__)

project = "pennylane-xqml"
author = "pennylane-xqml contributors"
copyright = "2026, pennylane-xqml contributors"
version = release = pennylane_xqml.__version__

extensions = [
    "myst_nb",  # Markdown pages and the notebooks of demos/, executed during the build
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
]

exclude_patterns = ["_build", "README.md", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints"]
templates_path = ["_templates"]

# --- the notebooks -------------------------------------------------------------------------
# demos/ is linked into the source tree (docs/demos -> ../demos). Every notebook is executed by
# the build and its outputs are cached by jupyter-cache, keyed on the code cells: an unchanged
# notebook is not re-run, a changed one is. Outputs stored in a notebook are never shown.
nb_execution_mode = os.environ.get("XQML_DOCS_EXECUTE", "cache")
nb_execution_timeout = 900  # seconds per cell; the slowest cell trains a model
nb_execution_raise_on_error = True  # a failing notebook fails the build
nb_execution_in_temp = True  # notebooks write nothing into the repository


def _package_digest():
    """A digest of the package's source: jupyter-cache keys a notebook on its own code cells
    only, so the cache lives in a folder named after the package it ran against, and a change
    of the package re-executes every notebook."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "pennylane_xqml").rglob("*.py")):
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


_CACHE = DOCS / "_build" / f".jupyter_cache-{_package_digest()}"
for _old in (DOCS / "_build").glob(".jupyter_cache-*"):
    if _old != _CACHE:
        shutil.rmtree(_old, ignore_errors=True)  # caches of older package code
nb_execution_cache_path = str(_CACHE)
nb_kernel_rgx_aliases = {".*": "python3"}
nb_merge_streams = True
if nb_execution_mode == "off":  # editing only: a never-run notebook may lack language metadata
    suppress_warnings = ["myst-nb.lexer"]

myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3

# --- the API reference ---------------------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
# The attribution transforms end their docstrings with this block (engine/transform.py).
napoleon_custom_sections = [("Options every method shares", "params_style")]
# "Attributes:" as a field list: NamedTuple fields are documented once, by :members:.
napoleon_use_ivar = True
add_module_names = False

# --- HTML ----------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"pennylane-xqml {release}"
html_static_path = []
html_show_sourcelink = False

# MathJax 3 from the installed wheel, copied into _static/mathjax/ after the build; no CDN.
MATHJAX_DIR = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
MATHJAX_PARTS = ["tex-chtml.js", "input", "output/chtml", "ui", "a11y", "adaptors"]
mathjax_path = "mathjax/tex-chtml.js"


def copy_mathjax(app, exception):
    """Copy the parts of MathJax that ``tex-chtml.js`` loads into the built site."""
    if exception is not None or app.builder.format != "html":
        return
    target = Path(app.outdir) / "_static" / "mathjax"
    for part in MATHJAX_PARTS:
        source = MATHJAX_DIR / part
        if source.is_dir():
            shutil.copytree(source, target / part, dirs_exist_ok=True)
        elif source.exists():
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / part)


def drop_signature_line(app, what, name, obj, options, lines):
    """Drop a first docstring line that repeats the object's signature.

    The attribution transforms start their ``__doc__`` with ``name(...)`` for ``help()``;
    autodoc already shows the signature (from ``inspect.signature``), and docutils would read
    the ``*`` of the keyword-only marker as the start of emphasis.
    """
    short = name.rsplit(".", 1)[-1]
    if lines and lines[0].startswith(short + "("):
        del lines[0]
        while lines and not lines[0].strip():
            del lines[0]


def escape_kwargs(app, what, name, obj, options, lines):
    """Escape ``**kwargs`` in parameter fields (napoleon escapes ``*args`` of ``*args, **kwargs``
    but not the second name, which docutils then reads as unclosed strong emphasis)."""
    for i, line in enumerate(lines):
        if line.startswith(":param **"):
            lines[i] = ":param \\*\\*" + line[len(":param **") :]


def skip_top_level_classes(app, what, name, obj, skip, options):
    """On a module's page, skip the classes exported by ``pennylane_xqml`` itself: they have
    their own page (``pennylane_xqml.QPertExplainer``), and one class documented twice is a
    duplicate-object warning."""
    if what == "module" and isinstance(obj, type) and getattr(pennylane_xqml, name, None) is obj:
        return True
    return None


def check_api_covers_all(app):
    """Warn (an error under ``-W``) when a name of ``pennylane_xqml.__all__`` is not listed in
    ``api.md``, so a new export cannot go undocumented."""
    listed = set((DOCS / "api.md").read_text(encoding="utf-8").split())
    modules = {"hybrid": "experiments.hybrid", "qpert": "methods.qpert"}
    missing = [name for name in pennylane_xqml.__all__ if modules.get(name, name) not in listed]
    if missing:
        logger.warning("api.md does not list these names of pennylane_xqml.__all__: %s", missing)


class Details(Directive):
    """PennyLane's ``.. details::`` block (from its theme, not used here): an admonition with
    the ``:title:``, so docstrings written in PennyLane's style build."""

    has_content = True
    option_spec: ClassVar[dict] = {"title": directives.unchanged, "href": directives.unchanged}

    def run(self):
        title = self.options.get("title", "Details")
        node = nodes.admonition(classes=["details"])
        text, messages = self.state.inline_text(title, self.lineno)
        node += nodes.title(title, "", *text)
        self.state.nested_parse(self.content, self.content_offset, node)
        return [node, *messages]


def setup(app):
    app.add_directive("details", Details)
    app.connect("builder-inited", check_api_covers_all)
    app.connect("autodoc-skip-member", skip_top_level_classes)
    app.connect("autodoc-process-docstring", drop_signature_line)
    app.connect("autodoc-process-docstring", escape_kwargs)  # after napoleon's own handler
    app.connect("build-finished", copy_mathjax)
