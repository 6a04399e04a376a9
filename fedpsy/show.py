"""Readable terminal tables for result envelopes (used by the demo)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from fedpsy.show_quality import show_quality
from schemas.envelope import Envelope


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e-3 else f"{value:,.{digits}f}"
    return str(value)


def show_sites(out: Console, tables: Mapping[str, Mapping[str, int]]) -> None:
    columns = ["person", "visit", "observation", "drug_exposure", "mrs_measure", "event"]
    table = Table("site", *columns, title="what each node holds (rows)")
    for site, counts in tables.items():
        table.add_row(site, *(f"{counts.get(c, 0):,}" for c in columns))
    out.print(table)


def _summary(r: dict[str, Any]) -> tuple[Table, str]:
    t = Table("variable", "n", "mean", "sd", "skewness", "kurtosis", "missing")
    for code, s in r["variables"].items():
        t.add_row(
            code,
            str(s["n"]),
            _num(s["mean"]),
            _num(s["sd"]),
            _num(s.get("skewness")),
            _num(s.get("kurtosis")),
            str(s["missing"]),
        )
    return t, ""


def _ttest(r: dict[str, Any]) -> tuple[Table, str]:
    t = Table(r["group"], "n", f"mean {r['variable']}", "sd")
    for label, g in r["groups"].items():
        t.add_row(label, str(g["n"]), _num(g["mean"]), _num(g["sd"]))
    w = r["welch"]
    note = f"Welch t = {_num(w['statistic'])}, df = {_num(w['df'], 1)}, p = {_num(w['p_value'])}"
    return t, note


def _crosstab(r: dict[str, Any]) -> tuple[Table, str]:
    t = Table("", *r["columns"])
    for label, row in zip(r["rows"], r["counts"], strict=True):
        t.add_row(label, *map(str, row))
    c = r["chi2"]
    note = f"χ² = {_num(c['statistic'])}, df = {c['df']}, p = {_num(c['p_value'])}"
    return t, note


def _coefficients(r: dict[str, Any]) -> tuple[Table, str]:
    t = Table("term", "estimate", "std. error", "z/t", "p")
    for c in r["coefficients"]:
        t.add_row(
            c["term"],
            _num(c["estimate"]),
            _num(c["std_error"]),
            _num(c["statistic"]),
            _num(c["p_value"]),
        )
    extra = [f"n = {r['n']}"]
    if "iterations" in r:
        extra.append(f"{r['iterations']} Newton iterations")
    return t, ", ".join(extra)


def _meta(r: dict[str, Any]) -> tuple[Table, str]:
    t = Table("site", "n", "estimate", "95% CI", "weight")
    for s in r["per_site"]:
        t.add_row(
            s["site"],
            str(s["n"]),
            _num(s["estimate"]),
            f"{_num(s['ci_low'])} … {_num(s['ci_high'])}",
            _num(s["weight"]),
        )
    p = r["random"]
    t.add_row(
        "[bold]random effects[/]",
        str(r["n"]),
        _num(p["estimate"]),
        f"{_num(p['ci_low'])} … {_num(p['ci_high'])}",
        "",
    )
    note = f"I² = {_num(r['i_squared'])}, τ² = {_num(r.get('tau2'))}"
    return t, note


SHOW: dict[str, Callable[[dict[str, Any]], tuple[Table, str]]] = {
    "summary": _summary,
    "ttest": _ttest,
    "crosstab": _crosstab,
    "glm": _coefficients,
    "ols": _coefficients,
    "meta": _meta,
    "data_quality": show_quality,
}


def show_result(out: Console, envelope: Envelope) -> None:
    """Print an envelope: refusals and errors with their reason, results as a table."""
    status = envelope.status
    if status != "ok":
        reason = envelope.reason
        code, detail = (None, None) if reason is None else (reason.code, reason.detail)
        out.print(f"[bold yellow]{status}[/] ({escape(str(code))}): {escape(str(detail))}")
        return
    result = envelope.result
    sites = ", ".join(f"{s} n={v.n}" for s, v in envelope.sites.items())
    shower = SHOW.get(str(envelope.analysis))
    if envelope.analysis == "count":
        out.print(f"n = {result['n']:,}")
    elif shower is None:
        out.print(result)
    else:
        table, note = shower(result)
        out.print(table)
        if note:
            out.print(note)
    out.print(f"[dim]sites: {sites}[/]")
    for site, code in (envelope.dropped_sites or {}).items():
        out.print(f"[dim]left out: {site} ({code})[/]")
