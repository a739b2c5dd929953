"""The repository's architecture check (``scripts/check_architecture.py``, run by CI)."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "check_architecture.py"


@pytest.fixture(scope="module")
def checker():
    spec = importlib.util.spec_from_file_location("check_architecture", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _package(tmp_path, files):
    root = tmp_path / "pennylane_xqml"
    root.mkdir()
    (root / "__init__.py").write_text("")
    for name, text in files.items():
        (root / name).write_text(text)
    return root


def test_the_package_is_clean(checker):
    assert checker.check() == []


def test_an_import_cycle_hidden_in_a_function_is_found(checker, tmp_path):
    root = _package(
        tmp_path,
        {
            "a.py": "from .b import g\n",
            "b.py": "def g():\n    from .a import f  # hidden\n    return f\n",
        },
    )
    findings = checker.check(root)
    assert any("import cycle" in f and "a <-> b" in f for f in findings), findings


def test_private_names_across_modules_are_found(checker, tmp_path):
    root = _package(
        tmp_path,
        {
            "a.py": "_cache = {}\nclass A:\n    def _run(self):\n        return 1\n",
            "b.py": "from .a import _cache\nfrom . import a\n\ndef f(obj):\n    return obj._run(), a._cache\n",
        },
    )
    findings = checker.check(root)
    assert any("private name '_cache' of a" in f for f in findings), findings
    assert any("private name '_run' of obj" in f for f in findings), findings


def test_writing_another_modules_state_is_found_even_without_underscores(checker, tmp_path):
    root = _package(
        tmp_path,
        {
            "a.py": "CACHE = {}\nclass A:\n    def __init__(self):\n        self.cache = {}\n",
            "b.py": (
                "from . import a\n\n"
                "def f(cam, other):\n"
                "    cam.cache = other.cache\n"
                "    a.CACHE['k'] = 1\n"
                "    a.CACHE.update({})\n"
            ),
        },
    )
    findings = checker.check(root)
    assert any(
        "writes the attribute 'cache' of an object it does not own (cam)" in f for f in findings
    )
    assert any("writes a.CACHE" in f for f in findings), findings
    assert any("mutates a.CACHE" in f for f in findings), findings


def test_own_objects_and_namedtuple_api_are_allowed(checker, tmp_path):
    root = _package(
        tmp_path,
        {
            "a.py": (
                "import copy\nfrom typing import NamedTuple\n\n"
                "class P(NamedTuple):\n    x: int = 0\n\n"
                "class A:\n"
                "    def with_x(self, x):\n"
                "        other = copy.copy(self)\n"
                "        other.x = x\n"
                "        return other\n\n"
                "def f():\n"
                "    a = A()\n"
                "    a.y = 1\n"
                "    return P()._asdict(), P._fields\n"
            ),
        },
    )
    assert checker.check(root) == []


def test_an_import_up_the_layers_is_found(checker, tmp_path):
    root = _package(tmp_path, {})
    for sub in ("engine", "methods", "experiments"):
        (root / sub).mkdir()
        (root / sub / "__init__.py").write_text("")
    (root / "experiments" / "models.py").write_text("MODEL = 1\n")
    (root / "methods" / "ig.py").write_text("from ..experiments.models import MODEL\n")
    (root / "engine" / "core.py").write_text("def f():\n    from ..methods import ig\n")
    (root / "metrics.py").write_text("from .methods import ig\n")  # public layer: allowed
    findings = checker.check(root)
    assert any("methods.ig (methods) imports experiments.models" in f for f in findings), findings
    assert any("engine.core (engine) imports methods.ig" in f for f in findings), findings
    assert not any(f.startswith("layer violation: metrics") for f in findings), findings
