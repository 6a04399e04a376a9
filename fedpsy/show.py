"""Readable terminal output for result envelopes (``fedpsy run`` and the demo).

:func:`show_result` prints an answer as a researcher reads it: the result's tables
(:mod:`fedpsy.show_tables`: estimates with 95 % CIs, odds, rate or hazard ratios where they
apply), then the rows each site used, what was left out and why (sites, rows with missing
values, aliased terms), and the privacy line (the sites' policies, secure aggregation,
differential privacy). A refusal names each refusing site with the rule it applied; an
error its code and what to fix.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from fedpsy.show_models import MODELS
from fedpsy.show_quality import show_quality
from fedpsy.show_tables import DESCRIPTIVE, Shower, plural
from schemas.errors import CATALOG, known_code

if TYPE_CHECKING:
    from schemas.envelope import Envelope, Privacy

SHOW: dict[str, Shower] = {**DESCRIPTIVE, **MODELS, "data_quality": show_quality}
"""Every analysis's table-maker, by name (a test checks it covers every analysis)."""


def show_sites(out: Console, tables: Mapping[str, Mapping[str, int]]) -> None:
    columns = ["person", "visit", "observation", "drug_exposure", "mrs_measure", "event"]
    table = Table("site", *columns, title="what each node holds (rows)")
    for site, counts in tables.items():
        table.add_row(site, *(f"{counts.get(c, 0):,}" for c in columns))
    out.print(table)


def describe(code: str) -> str:
    """The catalog's public message for a code, or nothing for a code it does not know."""
    known = known_code(code)
    return "" if known is None else CATALOG[known].message


def site_reasons(detail: str, sites: Mapping[str, str]) -> dict[str, str]:
    """Each failing site's own part of a reason's ``detail`` (the coordinator writes
    ``site S: CODE (why); site T: …``), by site; sites whose part is not found get none."""
    starts = sorted(
        (m.start(), site)
        for site, code in sites.items()
        if (m := re.search(rf"(?:^|; )site {re.escape(site)}: {re.escape(code)}\b", detail))
    )
    found = {}
    for (start, site), end in zip(starts, [s for s, _ in starts[1:]] + [len(detail)], strict=True):
        part = detail[start:end].removeprefix("; ")
        why = part.removeprefix(f"site {site}: {sites[site]}").strip()
        found[site] = why[1:-1] if why.startswith("(") and why.endswith(")") else why
    return found


def _show_failure(out: Console, envelope: Envelope, request: Mapping[str, Any]) -> None:
    reason = envelope.reason
    code, detail = ("", "") if reason is None else (reason.code, reason.detail)
    sites = (reason.sites if reason is not None else None) or {}
    if envelope.status == "refused" and sites:
        out.print("[bold yellow]refused[/] by the privacy policy of " + ", ".join(sorted(sites)))
    elif envelope.status == "refused":
        out.print(f"[bold yellow]refused[/] {escape(f'[{code}]')} {escape(describe(code))}")
    else:
        out.print(f"[bold red]error[/] {escape(f'[{code}]')} {escape(describe(code))}")
    if sites:
        parts = site_reasons(detail, sites)
        table = Table("site", "rule" if envelope.status == "refused" else "code", "why")
        for site, rule in sorted(sites.items()):
            table.add_row(site, rule, escape(parts.get(site) or describe(rule)))
        out.print(table)
        if len(parts) < len(sites):
            out.print(escape(detail))
    else:
        out.print(escape(detail))
    if envelope.status == "refused" and request.get("on_refusal", "fail") == "fail":
        out.print(
            '[dim]with "on_refusal": "drop_site" the other sites answer and the refusing '
            "ones are left out[/]"
        )


def privacy_line(privacy: Privacy, request: Mapping[str, Any]) -> str:
    """How the answer was protected: the sites' policies, secure aggregation, DP."""
    on_refusal = request.get("on_refusal", "fail")
    secure = "yes (the coordinator saw only sums)" if privacy.secure_aggregation else "no"
    dp = privacy.dp
    if dp is None:
        noise = "none"
    else:
        spent = ", ".join(
            f"{site} ε {s.epsilon:g} in {plural(s.releases, 'release')}"
            for site, s in sorted(dp.sites.items())
        )
        noise = f"ε = {dp.epsilon:g}, δ = {dp.delta:g} at most per site ({dp.mechanism}; {spent})"
    return (
        f"privacy: site policies applied, on refusal: {on_refusal} · secure aggregation: "
        f"{secure} · differential privacy: {noise}"
    )


def _leftovers(out: Console, envelope: Envelope) -> None:
    result = envelope.result
    if envelope.sites:
        used = " · ".join(f"{site} {rows.n:,}" for site, rows in envelope.sites.items())
        out.print(f"rows used per site: {used}")
    missing = result.get("missing")
    if isinstance(missing, int) and missing > 0:
        out.print(f"left out: {missing:,} rows missing a variable the analysis uses")
    for site, code in (envelope.dropped_sites or {}).items():
        meaning = describe(code)
        out.print(f"left out: {site} ({code}{': ' + meaning if meaning else ''})")
    dropped = result.get("dropped")
    if dropped:
        out.print(
            f"left out: terms {', '.join(map(str, dropped))} (aliased: a linear combination "
            "of the others)"
        )


def show_result(out: Console, envelope: Envelope, request: Mapping[str, Any] | None = None) -> None:
    """Print an envelope: its result as tables with notes, the rows used per site, what
    was left out and why, and the privacy line; a refusal or error with its reasons.
    ``request`` (when given) names what the result does not, e.g. a crosstab's variables."""
    request = request or {}
    if envelope.status != "ok":
        _show_failure(out, envelope, request)
        return
    shower = SHOW.get(str(envelope.analysis))
    if shower is None:
        out.print(envelope.result)
    else:
        for part in shower(envelope.result, request):
            out.print(part if isinstance(part, Table) else escape(part))
    _leftovers(out, envelope)
    out.print(f"[dim]{escape(privacy_line(envelope.privacy, request))}[/]")
