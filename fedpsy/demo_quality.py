"""The demo's data-quality step: the report on MRS across the sites flags the scanners'
site effect; ComBat removes it, and the report on the harmonized values shows the SMDs
after harmonization."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from coordinator.service import Coordinator
from fedpsy.show import show_result

MRS = ["dacc_glu", "dacc_glx", "mpfc_glu", "mpfc_glx"]
REPORT: dict[str, Any] = {"analysis": "data_quality", "variables": ["age", *MRS]}


def _smds(result: dict[str, Any], code: str) -> dict[str, float | None]:
    cells = result["report"][code]["baseline"]
    return {site: cell["smd"] for site, cell in cells.items()}


def quality_step(out: Console, coord: Coordinator) -> None:
    out.rule("6. data quality across the sites: a scanner effect, and ComBat removing it")
    request = {**REPORT, "visits": ["baseline"]}
    out.print(f"[dim]{escape(json.dumps(request))}[/]")
    before = asyncio.run(coord.run(request))
    show_result(out, before)
    if before.status != "ok":
        return
    effects = [f for f in before.result["flags"] if f["rule"] == "site_effect"]
    if not effects:
        out.print("no site effect above the threshold")
        return
    strongest = max(effects, key=lambda f: abs(f["value"] or 0.0))
    combat = strongest["suggestion"]
    flagged = combat["variables"]
    out.print(f"\n[bold]The ComBat the strongest flag suggests, for {', '.join(flagged)}[/]")
    out.print(f"[dim]{escape(json.dumps(combat))}[/]")
    harmonized = asyncio.run(coord.run(combat))
    if harmonized.status != "ok":
        show_result(out, harmonized)
        return
    new = harmonized.result["new_variables"]
    after = asyncio.run(
        coord.run({"analysis": "data_quality", "variables": new, "visits": ["baseline"]})
    )
    if after.status != "ok":
        show_result(out, after)
        return
    table = Table("variable", "site", "SMD before", "SMD after ComBat", title="site effects")
    for code, harmonized_code in zip(flagged, new, strict=True):
        was, now = _smds(before.result, code), _smds(after.result, harmonized_code)
        for site in was:
            cells = [f"{v:+.2f}" if v is not None else "–" for v in (was[site], now.get(site))]
            table.add_row(code, site, *cells)
    out.print(table)
    left = [f for f in after.result["flags"] if f["rule"] == "site_effect"]
    out.print(f"site-effect flags after harmonization: {len(left)}")
