"""The data-quality report as a terminal table: completeness and SMD per variable, visit and
site, then the flags."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table


def _cell(cell: dict[str, Any]) -> str:
    """``92% · SMD 0.84``; ``withheld (code)`` where the site said nothing."""
    if cell["completeness"] is None:
        why = ", ".join(c for c in cell["suppressed"] if c) or "suppressed"
        return f"[dim]{escape(why)}[/]"
    text = f"{cell['completeness']:.0%}"
    if cell.get("smd") is not None:
        text += f" · SMD {cell['smd']:+.2f}"
    if cell.get("implausible"):
        text += f" · {cell['implausible']} implausible"
    return text


def _flag(flag: dict[str, Any]) -> str:
    value = "suppressed (1 to min_cell − 1)" if flag["value"] is None else f"{flag['value']:.3g}"
    where = f"{flag['variable']} at {flag['visit']}" if flag["visit"] else flag["variable"]
    return f"  {flag['site']}: {where}: {flag['rule']} = {value}"


def show_quality(r: dict[str, Any]) -> tuple[Table, str]:
    """Rows: variable × visit; columns: each site's completeness (and SMD, implausible
    values). The note lists the flags and the temporal checks."""
    t = Table("variable", "visit", *r["sites"], title="data quality: completeness per site")
    for code in r["variables"]:
        for visit, cells in r["report"][code].items():
            t.add_row(code, visit, *(_cell(cells[s]) for s in r["sites"]))
    lines = [f"{len(r['flags'])} flags:"] + [_flag(f) for f in r["flags"]]
    for site, counts in r["temporal"].items():
        shown = ", ".join(f"{k} {'–' if v is None else v}" for k, v in counts.items())
        lines.append(f"temporal checks at {site}: {shown}")
    return t, escape("\n".join(lines))
