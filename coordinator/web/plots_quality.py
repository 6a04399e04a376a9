"""Plots of the data-quality report: completeness heat maps (variables × sites, one per
visit) and each site's standardized mean difference against the other sites."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from coordinator.web.vega import Plot, Row, heatmap, number, plot


def completeness_rows(result: Mapping[str, Any], visit: str) -> list[Row]:
    """One row per variable reported at ``visit`` and site: completeness (null: suppressed
    or withheld) and ``n``."""
    rows: list[Row] = []
    for code in result["variables"]:
        cells = result["report"][code].get(visit)
        for site in result["sites"] if cells else ():
            cell = cells[site]
            rows.append(
                {
                    "variable": code,
                    "site": site,
                    "completeness": number(cell["completeness"]),
                    "n": cell["n"],
                }
            )
    return rows


def smd_rows(result: Mapping[str, Any]) -> list[Row]:
    """One row per numeric variable, visit and site with an SMD."""
    return [
        {"variable": code, "visit": visit, "site": site, "smd": number(cell["smd"])}
        for code in result["variables"]
        for visit, cells in result["report"][code].items()
        for site, cell in cells.items()
        if number(cell.get("smd")) is not None
    ]


def quality_plots(result: Mapping[str, Any], request: Mapping[str, Any]) -> list[Plot]:
    plots = []
    for visit in result["visits"]:
        rows = completeness_rows(result, visit)
        if not rows:
            continue
        body = heatmap("site", "variable", "completeness", domain=[0, 1], fmt=".0%")
        plots.append(
            plot(
                f"completeness-{visit}",
                f"Completeness at {visit}",
                f"Share of each site's persons at {visit} with a value of each variable "
                "(empty: suppressed or withheld by the site).",
                rows,
                body,
                height=max(120, 18 * len(result["variables"])),
            )
        )
    smd = smd_rows(result)
    if smd:
        limit = float(result["smd_threshold"])
        body = {
            "layer": [
                {
                    "mark": {"type": "point", "filled": True, "size": 70},
                    "encoding": {
                        "y": {"field": "variable", "type": "nominal", "sort": None, "title": None},
                        "x": {"field": "smd", "type": "quantitative", "title": "SMD"},
                        "color": {"field": "site", "type": "nominal"},
                        "shape": {"field": "visit", "type": "nominal"},
                        "tooltip": [
                            {"field": "variable"},
                            {"field": "visit"},
                            {"field": "site"},
                            {"field": "smd", "type": "quantitative", "format": ".3f"},
                        ],
                    },
                },
                {
                    "data": {"values": [{"x": -limit}, {"x": limit}]},
                    "mark": {"type": "rule", "strokeDash": [4, 4], "color": "#666"},
                    "encoding": {"x": {"field": "x", "type": "quantitative"}},
                },
            ]
        }
        plots.append(
            plot(
                "smd",
                "Standardized mean difference per site",
                "Each site's mean against the other sites pooled, in pooled SD units; beyond "
                f"±{limit:g} (dashed) a site effect is flagged.",
                smd,
                body,
                height=max(120, 18 * len({r["variable"] for r in smd})),
            )
        )
    return plots
