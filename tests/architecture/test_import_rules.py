"""The layout's dependency rules (docs/design.md, "Dependency rules"), checked on the source.

Every module of the four packages is parsed with :mod:`ast`; every import of a project module
counts, at module level or inside a function (a lazy import still couples the two), except
those under ``if TYPE_CHECKING:``. The test fails on an import cycle between modules, on a
package importing one it must not (``hw_profiles`` and ``search_spaces`` import neither of the
others; ``cost_models`` never imports ``nas``), and on an upward import between the layers of
a package (a layer imports only lower layers; siblings on one layer are independent).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("nas", "cost_models", "search_spaces", "hw_profiles")

# package -> packages it may import (besides itself)
ALLOWED_PACKAGES: dict[str, set[str]] = {
    "hw_profiles": set(),
    "search_spaces": set(),
    "cost_models": {"search_spaces", "hw_profiles"},
    "nas": {"cost_models", "search_spaces", "hw_profiles"},
}

# Layers inside a package: unit (a module or sub-package, by dotted prefix) -> layer number.
# A module may import modules of its own unit or of lower layers only; two units on the same
# layer never import each other. The longest matching prefix names a module's unit.
LAYERS: dict[str, dict[str, int]] = {
    "cost_models": {
        "cost_models.plan": 0,
        "cost_models.options": 0,
        "cost_models.stacks": 1,
        "cost_models.sharding": 0,
        "cost_models.efficiency": 0,
        "cost_models.plan_grid": 0,  # divisors and cartesian grids for the enumerators
        "cost_models.plan_batch": 1,
        "cost_models.plans": 2,
        "cost_models.network": 2,
        "cost_models.train": 3,
        "cost_models.inference": 3,
        "cost_models.estimate": 4,
        "cost_models": 5,  # the package's public API (__init__)
        "cost_models.validation": 6,
    },
    "nas": {
        "nas": 0,  # the package itself holds only __version__
        "nas.explain": 0,  # the memory headroom and estimate explanations (cost_models only)
        "nas.bounds": 0,  # physical bounds on input numbers
        "nas.safe_yaml": 0,  # YAML reading with a depth cap and the file named
        "nas.experiment_errors": 0,  # one-line messages from pydantic errors
        "nas.experiment_numbers": 0,  # number fields that refuse text and booleans
        "nas.jsonsafe": 0,  # values made plain for JSON
        "nas.units": 0,  # numbers for people: the one formatter of the CLI and the dashboard
        "nas.rundir": 1,  # run-directory files: lock, atomic writes, tolerant readers
        "nas.constraints": 1,
        "nas.experiment": 2,
        "nas.evaluators": 3,
        "nas.search": 4,  # drivers: never nas.problem, nas.runs, nas.jobs or nas.cli
        "nas.problem": 5,
        "nas.dashboard": 5,
        "nas.run_results": 5,  # pareto.csv, summary.json and the progress bar's front
        "nas.runs": 6,
        "nas.jobs": 7,
        "nas.cli": 8,
        "nas.__main__": 9,
    },
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[_module_name(path)] = path
    return found


MODULES = _modules()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST) -> Iterator[ast.AST]:
    """Like :func:`ast.walk`, skipping ``if TYPE_CHECKING:`` bodies."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child):
            yield from (n for orelse in child.orelse for n in [orelse, *_walk(orelse)])
            continue
        yield child
        yield from _walk(child)


def _resolve(name: str) -> str | None:
    """The project module ``name`` refers to (the longest existing prefix)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in MODULES:
            return candidate
        parts.pop()
    return None


def imports_of(module: str) -> set[str]:
    """Project modules that ``module`` imports."""
    path = MODULES[module]
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in _walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            names = [f"{base}.{a.name}" for a in node.names] + [base]
        for name in names:
            target = _resolve(name)
            if target is not None and target != module:
                out.add(target)
    # "from pkg import sub" resolves to pkg.sub; "from pkg import name" to pkg; keep the
    # most specific: drop a package when one of its submodules was also named by that import
    return out


GRAPH = {m: imports_of(m) for m in MODULES}


def _unit(module: str, layers: dict[str, int]) -> str | None:
    best = None
    for prefix in layers:
        if (module == prefix or module.startswith(prefix + ".")) and (
            best is None or len(prefix) > len(best)
        ):
            best = prefix
    return best


def test_every_module_of_a_layered_package_has_a_layer() -> None:
    for package, layers in LAYERS.items():
        top = {f"{package}.{m.split('.')[1]}" for m in MODULES if m.startswith(package + ".")}
        missing = sorted(top - set(layers))
        assert not missing, f"{package}: give these a layer in LAYERS: {missing}"


def test_the_walk_finds_the_packages() -> None:
    assert "cost_models.train.step" in MODULES
    assert "cost_models.network.collectives" in GRAPH["cost_models.train.comm"]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_package_dependencies(module: str) -> None:
    package = module.split(".")[0]
    bad = sorted(
        t
        for t in GRAPH[module]
        if t.split(".")[0] != package and t.split(".")[0] not in ALLOWED_PACKAGES[package]
    )
    assert not bad, (
        f"{module} imports {bad}; {package} may import {sorted(ALLOWED_PACKAGES[package])}"
    )


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_no_upward_imports(package: str) -> None:
    layers = LAYERS[package]
    problems = []
    for module, targets in GRAPH.items():
        src = _unit(module, layers)
        if src is None:
            continue
        for target in targets:
            dst = _unit(target, layers)
            if dst is None or dst == src:
                continue
            if layers[dst] >= layers[src]:
                problems.append(f"{module} (layer {layers[src]}) -> {target} (layer {layers[dst]})")
    assert not problems, "upward or sideways imports:\n" + "\n".join(sorted(problems))


def _cycles() -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(GRAPH[v]):
            if w not in index:
                visit(w)
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
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    return out


def _is_package_init(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def test_no_import_cycles() -> None:
    # A package's __init__ re-exporting its own submodules is not a cycle of the design:
    # edges from a submodule up to its own package __init__ are counted as upward imports by
    # test_no_upward_imports instead, so they are left out here.
    cycles = []
    for component in _cycles():
        inner = [m for m in component if not _is_package_init(m)]
        if len(inner) > 1:
            cycles.append(component)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)
