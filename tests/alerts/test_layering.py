"""The alert pipeline's shape: small stage modules, imports that run one way."""

from __future__ import annotations

import ast
from pathlib import Path

ALERTS = Path(__file__).resolve().parents[2] / "alerts"


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports from, at any level (also under TYPE_CHECKING)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_no_pipeline_module_is_over_300_lines() -> None:
    for package in ("notify", "service", "statedb", "receivers"):
        for path in (ALERTS / package).glob("*.py"):
            lines = len(path.read_text().splitlines())
            assert lines <= 300, f"{path.relative_to(ALERTS)} has {lines} lines"


def test_the_notify_pipeline_does_not_reach_up_into_the_service() -> None:
    for path in (ALERTS / "notify").glob("*.py"):
        upward = {m for m in imports(path) if m.startswith("alerts.service")}
        assert not upward, f"{path.name} imports {sorted(upward)}"


def test_delivery_talks_only_to_the_outbox() -> None:
    stages = {
        m for m in imports(ALERTS / "notify" / "delivery.py") if m.startswith("alerts.notify")
    }
    assert stages == {"alerts.notify.events", "alerts.notify.outbox"}


def test_the_decision_is_pure() -> None:
    assert imports(ALERTS / "notify" / "decision.py") == {
        "__future__",
        "enum",
        "alerts.statedb.records",
    }


def test_oneshot_does_not_import_the_component() -> None:
    assert "alerts.service.component" not in imports(ALERTS / "service" / "oneshot.py")
