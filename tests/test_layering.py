"""The house rules, checked on the source: layers import only downwards, and no circles.

Layers, bottom to top: ``monitor.kernel``; ``collectors`` and ``alerts`` (plug-ins, which
know the kernel but not each other); ``monitor.app`` (CLI, daemon wiring, demo).
Every import counts, including those inside functions and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("monitor", "collectors", "alerts")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {
        _module_name(p): p
        for package in PACKAGES
        for p in sorted((ROOT / package).rglob("*.py"))
        if "__pycache__" not in p.parts
    }


MODULES = _modules()


def _imports(name: str, path: Path) -> Iterator[str]:
    """Every module of ours that ``name`` imports (``from a import b`` counts ``a.b`` if
    that is a module, else ``a``)."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names
            ]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                yield target


GRAPH = {name: set(_imports(name, path)) for name, path in MODULES.items()}


def _layer(module: str) -> str:
    for prefix in ("monitor.kernel", "monitor.app", "collectors", "alerts"):
        if module == prefix or module.startswith(prefix + "."):
            return prefix
    return module


def _violations(lower: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{m} imports {t}"
        for m, targets in GRAPH.items()
        if _layer(m) == lower
        for t in targets
        if any(t == f or t.startswith(f + ".") for f in forbidden)
    )


def test_the_graph_sees_the_packages() -> None:
    # guards the checks below against silently reading nothing
    assert "monitor.kernel.snapshot" in GRAPH and "monitor.app.daemon" in GRAPH
    assert "monitor.kernel.snapshot" in GRAPH["monitor.kernel.snapshot_store"]


def test_kernel_imports_nothing_above_it() -> None:
    assert _violations("monitor.kernel", ("collectors", "alerts", "monitor.app")) == []


def test_collectors_know_only_the_kernel() -> None:
    assert _violations("collectors", ("alerts", "monitor.app")) == []


def test_alerts_know_only_the_kernel() -> None:
    assert _violations("alerts", ("collectors", "monitor.app")) == []


def test_only_the_top_level_package_holds_no_code() -> None:
    """``monitor/`` itself holds only ``__version__`` and ``__main__``: everything else is
    in the kernel or the application."""
    loose = [
        m
        for m in MODULES
        if m.startswith("monitor.") and _layer(m) not in ("monitor.kernel", "monitor.app")
    ]
    assert loose == ["monitor.__main__"]


def _cycles() -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
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

    for v in GRAPH:
        if v not in index:
            visit(v)
    return out


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_circles(package: str) -> None:
    cycles = [c for c in _cycles() if any(m.split(".")[0] == package for m in c)]
    assert cycles == []
