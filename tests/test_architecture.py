"""The package's shape: imports go one way only, no cycles, every package says what it may import."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

SRC = REPO / "src" / "customerlens"
LAYERS = ("core", "io", "cleaning", "features", "models", "insights", "outputs", "pipeline", "api", "cli")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the customerlens modules it imports, anywhere in it (functions included)."""
    modules = {module_name(p): p for p in SRC.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
                targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_between_modules():
    graph = import_graph()
    # packages re-export their modules; a package and its own modules are not a cycle between stages.
    # The root package is a facade that imports its public names lazily: no module may import it.
    assert [name for name, targets in graph.items() if "customerlens" in targets and name != "customerlens"] == []
    graph["customerlens"] = set()
    flat = {name: {t for t in targets if not (name == t.rpartition(".")[0] or t == name.rpartition(".")[0])}
            for name, targets in graph.items()}
    assert len(graph) > 50
    assert cycles(flat) == []


def test_the_cycle_finder_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_lower_layers_never_import_higher_ones():
    graph = import_graph()
    rank = {layer: i for i, layer in enumerate(LAYERS)}
    wrong = []
    for name, targets in graph.items():
        layer = name.split(".")[1] if name.count(".") else None
        if layer not in rank:
            continue
        for target in targets:
            other = target.split(".")[1] if target.count(".") else None
            if other in rank and rank[other] > rank[layer]:
                wrong.append(f"{name} -> {target}")
    assert wrong == []


def test_import_linter_contracts_are_kept():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert lint, "import-linter is a dev dependency (pip install -e '.[dev]')"
    result = subprocess.run([lint], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0 and "0 broken" in result.stdout, result.stdout + result.stderr


def test_every_package_says_what_lives_there_and_what_it_may_import():
    for layer in LAYERS:
        doc = (SRC / layer / "__init__.py").read_text()
        assert doc.startswith('"""') and "TODO" not in doc.split('"""')[1], layer
    for layer in ("core", "io", "cleaning", "features", "models", "insights", "outputs", "pipeline"):
        assert "May import" in (SRC / layer / "__init__.py").read_text(), layer


def test_subpackages_are_modules_not_shadowed_by_functions():
    """``import customerlens.cleaning`` gives the package, and ``cl.clean`` the function."""
    import customerlens.cleaning
    import customerlens.pipeline

    assert customerlens.cleaning.__name__ == "customerlens.cleaning"
    assert callable(customerlens.clean) and callable(customerlens.run) and callable(customerlens.analyze)
    assert set(customerlens.__all__) <= set(dir(customerlens))
    assert customerlens.pipeline.__name__ == "customerlens.pipeline"
