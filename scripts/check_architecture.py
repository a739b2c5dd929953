"""Fail when the package's modules are tangled: run by CI (``python scripts/check_architecture.py``).

Three rules, read from the source with :mod:`ast` (nothing is imported):

1. **No import cycles** between the modules of ``pennylane_xqml``, counting imports inside
   functions (a cycle hidden in a function is still a cycle). Imports of the package itself
   (``import pennylane_xqml``) count as imports of its ``__init__``.
2. **No private names across modules**: ``from .mod import _name``, ``mod._name`` and
   ``obj._attr`` on anything but ``self``/``cls`` are refused (dunders are fine).
3. **No writes into another object's or module's state**: assigning ``obj.attr = ...`` or
   ``obj.attr[...] = ...`` is refused unless ``obj`` is ``self``/``cls`` or was created in the
   same function by a class of the same module; assigning or mutating an imported module's
   attribute (``mod.NAME = ...``, ``mod.CACHE[k] = ...``, ``mod.CACHE.update(...)``) is refused.
   Renaming ``_cache`` to ``cache`` while another module fills it does not pass this rule.

4. **Layers**: ``engine`` imports only the engine; ``methods`` import the engine and each other;
   the public modules at the top (``metrics``, ``noise``, ``devices``, ``testing``, ``catalyst``,
   ``conformance``) import the engine and the methods; ``experiments`` may import all of these and
   the package's public API (``from ... import metrics``); only ``cli`` imports the experiments.

Third-party private names that cannot be avoided are listed in :data:`ALLOWED` with the reason.
Exit status 0 when clean, 1 otherwise (each finding on its own line, ``path:line: message``).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = "pennylane_xqml"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE

# (module, attribute): why this private name of *another library* is read.
ALLOWED = {
    (
        "engine.inputs",
        "_trace",
    ): "autograd's ArrayBox has no public accessor for the trace it belongs to",
    (
        "engine.execution",
        "_rng",
    ): "default.qubit's seed generator, to give the ancilla copy the same seed",
}

# Attributes that are a public part of another library's objects and are meant to be set.
ALLOWED_WRITES = {
    "trainable_params": "PennyLane's public way to choose which tape parameters are differentiated",
    "tracker": "PennyLane devices take a qml.Tracker by assignment",
    "hadamard_vjp_state": "torch.autograd.Function keeps non-tensor state for backward on ctx",
}
# namedtuple's public API is spelled with a leading underscore.
NAMEDTUPLE_API = {"_fields", "_asdict", "_replace", "_make", "_field_defaults"}

MUTATING_METHODS = {
    "append",
    "extend",
    "update",
    "setdefault",
    "pop",
    "clear",
    "add",
    "insert",
    "remove",
}


def module_name(path: Path, root: Path = ROOT) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(parts) if parts else "__init__"


def resolve(current: str, is_package: bool, level: int, target: str | None) -> str | None:
    """The package-relative module named by ``from <level dots><target> import``."""
    base = [] if current == "__init__" else current.split(".")
    if not is_package:
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    parts = base + (target.split(".") if target else [])
    return ".".join(parts) if parts else "__init__"


class Checker(ast.NodeVisitor):
    def __init__(self, path: Path, modules: set[str], root: Path = ROOT):
        self.path, self.modules, self.root = path, modules, root
        self.name = module_name(path, root)
        self.is_package = path.name == "__init__.py"
        self.imports: set[str] = set()
        self.module_aliases: set[str] = set()
        self.local_classes: set[str] = set()
        self.findings: list[str] = []
        self.owned: list[set[str]] = [set()]  # names bound to objects of this module's classes
        self.own_private: set[str] = set()  # private names this module defines

    # -- helpers ----------------------------------------------------------------------------
    def report(self, node, message):
        self.findings.append(f"{self.path.relative_to(self.root.parent)}:{node.lineno}: {message}")

    def add_module(self, name, alias_node=None, alias=None):
        if name in self.modules:
            self.imports.add(name)
            if alias:
                self.module_aliases.add(alias)
            return True
        return False

    # -- imports ----------------------------------------------------------------------------
    def visit_Import(self, node):
        for alias in node.names:
            if alias.name == PACKAGE or alias.name.startswith(PACKAGE + "."):
                sub = alias.name[len(PACKAGE) + 1 :] or "__init__"
                self.add_module(sub, alias=alias.asname or alias.name.split(".")[0])

    def visit_ImportFrom(self, node):
        if node.level:
            base = resolve(self.name, self.is_package, node.level, node.module)
        elif node.module and (node.module == PACKAGE or node.module.startswith(PACKAGE + ".")):
            base = node.module[len(PACKAGE) + 1 :] or "__init__"
        else:
            return
        for alias in node.names:
            sub = alias.name if base == "__init__" else f"{base}.{alias.name}"
            if self.add_module(sub, alias=alias.asname or alias.name):
                continue
            self.add_module(base)
            if alias.name.startswith("_") and not alias.name.startswith("__"):
                self.report(node, f"imports the private name {alias.name!r} of {base}")

    # -- private attributes and state -------------------------------------------------------
    def collect_own(self, tree):
        """Private functions, methods and ``self._x`` attributes this module defines: using them
        on another object of this module is not crossing a module boundary."""
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                self.own_private.add(node.name)
            elif (
                isinstance(node, ast.Attribute)
                and isinstance(node.ctx, ast.Store)
                and isinstance(node.value, ast.Name)
                and node.value.id in ("self", "cls")
            ):
                self.own_private.add(node.attr)

    def visit_ClassDef(self, node):
        self.local_classes.add(node.name)
        self.generic_visit(node)

    def visit_FunctionDef(self, node):
        self.owned.append(set())
        self.generic_visit(node)
        self.owned.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def is_own(self, value) -> bool:
        return isinstance(value, ast.Name) and (
            value.id in ("self", "cls") or value.id in self.owned[-1]
        )

    def visit_Assign(self, node):
        # names bound to an instance of a class of this module (``x = LocalClass(...)``)
        if isinstance(node.value, ast.Call) and self.creates_own(node.value):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    self.owned[-1].add(target.id)
        for target in node.targets:
            self.check_store(target)
        self.generic_visit(node)

    def creates_own(self, call) -> bool:
        """``LocalClass(...)`` or ``copy.copy(self)``: an object this module owns."""
        func = call.func
        if isinstance(func, ast.Name) and func.id in self.local_classes:
            return True
        is_copy = ast.unparse(func) in ("copy.copy", "copy", "copy.deepcopy", "deepcopy")
        return is_copy and bool(call.args) and self.is_own(call.args[0])

    def visit_AugAssign(self, node):
        self.check_store(node.target)
        self.generic_visit(node)

    def check_store(self, target):
        if isinstance(target, ast.Subscript):
            target = target.value
        if not isinstance(target, ast.Attribute):
            return
        value = target.value
        if target.attr in ALLOWED_WRITES or target.attr.startswith("__"):
            return
        if isinstance(value, ast.Name) and value.id in self.module_aliases:
            self.report(target, f"writes {value.id}.{target.attr}: another module's state")
        elif not self.is_own(value) and not isinstance(value, ast.Call):
            self.report(
                target,
                f"writes the attribute {target.attr!r} of an object it does not own "
                f"({ast.unparse(value)}); give that object a method instead",
            )

    def visit_Call(self, node):
        func = node.func
        if (
            isinstance(func, ast.Attribute)
            and func.attr in MUTATING_METHODS
            and isinstance(func.value, ast.Attribute)
            and isinstance(func.value.value, ast.Name)
            and func.value.value.id in self.module_aliases
        ):
            self.report(node, f"mutates {ast.unparse(func.value)}: another module's state")
        self.generic_visit(node)

    def visit_Attribute(self, node):
        attr = node.attr
        private = attr.startswith("_") and not attr.startswith("__") and attr not in NAMEDTUPLE_API
        foreign = not self.is_own(node.value) and attr not in self.own_private
        if private and foreign and (self.name, attr) not in ALLOWED:
            self.report(node, f"uses the private name {attr!r} of {ast.unparse(node.value)}")
        self.generic_visit(node)


# The layers, lowest first: a module may import modules of its own layer or of lower ones.
LAYERS = ("engine", "methods", "public", "experiments", "entry")
ENTRY_MODULES = {"__init__", "cli"}


def layer_of(module: str) -> str:
    head = module.split(".")[0]
    if module in ENTRY_MODULES:
        return "entry"
    if "." in module and head in ("engine", "methods", "experiments"):
        return head
    return "public"


def layer_findings(graph: dict[str, set[str]]) -> list[str]:
    """Imports that go up the layers (``experiments`` may use the package's public ``__init__``)."""
    findings = []
    for module, imported in sorted(graph.items()):
        rank = LAYERS.index(layer_of(module))
        for other in sorted(imported):
            if layer_of(module) == "experiments" and other == "__init__":
                continue
            if LAYERS.index(layer_of(other)) > rank:
                findings.append(
                    f"layer violation: {module} ({layer_of(module)}) imports {other} "
                    f"({layer_of(other)})"
                )
    return findings


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, result = {}, {}, [], set(), []
    counter = [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph.get(v, ()):
                result.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            strong(v)
    return result


def check(root: Path = ROOT) -> list[str]:
    """Every finding for the package at ``root`` (empty when clean)."""
    paths = sorted(root.rglob("*.py"))
    modules = {module_name(p, root) for p in paths}
    graph, findings = {}, []
    for path in paths:
        checker = Checker(path, modules, root)
        tree = ast.parse(path.read_text(), filename=str(path))
        checker.collect_own(tree)
        checker.visit(tree)
        graph[checker.name] = checker.imports - {checker.name}
        findings.extend(checker.findings)
    findings.extend(layer_findings(graph))
    for cycle in find_cycles(graph):
        findings.append(f"import cycle between modules: {' <-> '.join(cycle)}")
    return findings


def main() -> int:
    findings = check()
    for line in findings:
        print(line)
    print(f"check_architecture: {len(findings)} finding(s)")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
