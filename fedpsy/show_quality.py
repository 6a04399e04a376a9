"""The data-quality report as terminal tables: completeness and SMD per variable, visit and
site, then the flags and the temporal checks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.table import Table

from fedpsy.show_tables import Part, esc, num


def _cell(cell: Mapping[str, Any]) -> str:
    """``92% · SMD +0.84``; what the site withheld, or ``suppressed``, where it said nothing."""
    if cell["completeness"] is None:
        why = ", ".join(c for c in cell["suppressed"] if c) or "suppressed"
        return f"[dim]{esc(why)}[/]"
    text = f"{cell['completeness']:.0%}"
    if cell.get("smd") is not None:
        text += f" · SMD {cell['smd']:+.2f}"
    if cell.get("implausible"):
        text += f" · {cell['implausible']} implausible"
    return text


def show_quality(result: dict[str, Any], request: Mapping[str, Any]) -> list[Part]:
    """Rows: variable × visit; columns: each site's completeness (and SMD, implausible
    values). Then the flags (site, variable, visit, rule, value) and the temporal checks."""
    sites = result["sites"]
    report = Table("variable", "visit", *sites, title="data quality: completeness per site")
    for code in result["variables"]:
        for visit, cells in result["report"][code].items():
            report.add_row(esc(code), esc(visit), *(_cell(cells[s]) for s in sites))
    flags = Table("site", "variable", "visit", "rule", "value", title="flags")
    for flag in result["flags"]:
        value = "suppressed" if flag["value"] is None else num(flag["value"], 3)
        flags.add_row(
            esc(flag["site"]), esc(flag["variable"]), esc(flag["visit"] or ""), flag["rule"], value
        )
    rules = list(next(iter(result["temporal"].values()), {}))
    temporal = Table("site", *rules, title="temporal checks (persons)")
    for site, counts in result["temporal"].items():
        temporal.add_row(esc(site), *(num(counts.get(rule)) for rule in rules))
    return [report, flags, temporal]
