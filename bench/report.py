"""Printing a benchmark table and writing its JSON next to the others."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

RESULTS = Path("bench-results")
console = Console(highlight=False)


def emit(
    name: str,
    title: str,
    columns: list[str],
    rows: list[dict[str, Any]],
    notes: list[str] | None = None,
) -> None:
    """Print ``rows`` as a table and write them to ``bench-results/<name>.json``."""
    table = Table(*columns, title=title)
    for row in rows:
        table.add_row(*(_fmt(row.get(c)) for c in columns))
    console.print(table)
    for note in notes or []:
        console.print(f"  {note}")
    RESULTS.mkdir(exist_ok=True)
    payload = {
        "benchmark": name,
        "title": title,
        "machine": platform.platform(),
        "python": platform.python_version(),
        "rows": rows,
        "notes": notes or [],
    }
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=2), encoding="utf-8")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return "" if value is None else str(value)
