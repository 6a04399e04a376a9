"""Plots of descriptive results: summary, histogram, quantiles, crosstab, correlation, t-test.

Each builder takes the envelope's ``result`` and the request and returns plots of values
that are in the result — nothing is recomputed from anything the sites did not send.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import pairwise
from typing import Any

from scipy import stats

from coordinator.web.variables import value_range
from coordinator.web.vega import Plot, Row, heatmap, interval_layers, number, plot

PANEL = {"width": 150, "height": 170}


def _clipped(code: str, mean: float, sd: float) -> tuple[float, float, bool]:
    """mean ± sd within the variable's range, and whether either end was clipped."""
    low, high = mean - sd, mean + sd
    floor, ceiling = value_range(code)
    clipped_low = max(low, floor) if floor is not None else low
    clipped_high = min(high, ceiling) if ceiling is not None else high
    return clipped_low, clipped_high, (clipped_low, clipped_high) != (low, high)


def summary_plots(result: Mapping[str, Any], request: Mapping[str, Any]) -> list[Plot]:
    """One small panel per variable (each its own scale): the mean and a bar of one SD
    either side, clipped to the variable's range and said to be."""
    rows: list[Row] = []
    for code, s in result["variables"].items():
        mean, sd = number(s.get("mean")), number(s.get("sd"))
        if mean is None:
            continue
        low, high, clipped = _clipped(code, mean, sd or 0.0)
        rows.append(
            {
                "variable": code,
                "n": s.get("n"),
                "estimate": mean,
                "sd": sd,
                "low": low,
                "high": high,
                "clipped": clipped,
            }
        )
    if not rows:
        return []
    clipped_codes = [str(r["variable"]) for r in rows if r["clipped"]]
    note = (
        f" The bar is clipped to the variable's possible range for {', '.join(clipped_codes)}."
        if clipped_codes
        else ""
    )
    y = {"type": "quantitative", "scale": {"zero": False}, "title": None}
    tooltip = [
        {"field": "variable"},
        {"field": "n"},
        {"field": "estimate", "title": "mean", "format": ".4g"},
        {"field": "sd", "title": "SD", "format": ".4g"},
    ]
    return [
        plot(
            "means",
            "Mean ± 1 SD of each variable",
            f"Mean and one standard deviation either side for {len(rows)} variables, one "
            f"panel each on its own scale.{note}",
            rows,
            {
                "facet": {"field": "variable", "type": "nominal", "sort": None, "title": None},
                "columns": min(len(rows), 5),
                "spec": {
                    **PANEL,
                    "layer": [
                        {
                            "mark": {"type": "rule", "strokeWidth": 3, "color": "#4c78a8"},
                            "encoding": {
                                "y": {"field": "low", **y},
                                "y2": {"field": "high"},
                                "tooltip": tooltip,
                            },
                        },
                        {
                            "mark": {"type": "point", "filled": True, "size": 90},
                            "encoding": {"y": {"field": "estimate", **y}, "tooltip": tooltip},
                        },
                    ],
                },
                "resolve": {"scale": {"y": "independent"}},
            },
        )
    ]


def histogram_plots(result: Mapping[str, Any], request: Mapping[str, Any]) -> list[Plot]:
    edges, counts = result["edges"], result["counts"]
    rows = [
        {"bin_start": a, "bin_end": b, "count": c}
        for (a, b), c in zip(pairwise(edges), counts, strict=True)
    ]
    variable = result.get("variable", "value")
    note = f"; {result.get('below', 0)} below and {result.get('above', 0)} above the range"
    return [
        plot(
            "histogram",
            f"Histogram of {variable}",
            f"Counts of {variable} in {len(rows)} bins{note}.",
            rows,
            {
                "mark": {"type": "bar", "stroke": "white", "color": "#4c78a8"},
                "encoding": {
                    "x": {
                        "field": "bin_start",
                        "type": "quantitative",
                        "title": variable,
                        "bin": {"binned": True},
                    },
                    "x2": {"field": "bin_end"},
                    "y": {"field": "count", "type": "quantitative", "title": "count"},
                    "tooltip": [
                        {"field": "bin_start", "title": "from"},
                        {"field": "bin_end", "title": "to"},
                        {"field": "count"},
                    ],
                },
            },
        )
    ]


def quantile_plots(result: Mapping[str, Any], request: Mapping[str, Any]) -> list[Plot]:
    variable = result.get("variable", "value")
    bound = number(result.get("error_bound"))
    pairs = sorted(
        (float(p), float(v))
        for p, v in zip(result["probabilities"], result["values"], strict=True)
        if number(v) is not None
    )
    rows = [
        {"probability": p, "value": v, "low": v - (bound or 0), "high": v + (bound or 0)}
        for p, v in pairs
    ]
    out: list[Plot] = []
    by_p = dict(pairs)
    if all(q in by_p for q in (0.25, 0.5, 0.75)) and len(pairs) >= 3:
        lo_p, hi_p = pairs[0][0], pairs[-1][0]
        box = [
            {
                "variable": variable,
                "whisker_low": by_p[lo_p],
                "q1": by_p[0.25],
                "median": by_p[0.5],
                "q3": by_p[0.75],
                "whisker_high": by_p[hi_p],
                "whisker_probabilities": f"{lo_p:g}–{hi_p:g}",
            }
        ]
        y = {"field": "variable", "type": "nominal", "title": None}
        out.append(
            plot(
                "box",
                f"Box plot of {variable} from its quantiles",
                f"Box from the 0.25 to the 0.75 quantile with the median; whiskers span the "
                f"{lo_p:g} to {hi_p:g} quantiles (federated quantiles, within ±{bound or 0:.3g}).",
                box,
                {
                    "encoding": {"y": y},
                    "layer": [
                        {
                            "mark": "rule",
                            "encoding": {
                                "x": {
                                    "field": "whisker_low",
                                    "type": "quantitative",
                                    "title": variable,
                                    "scale": {"zero": False},
                                },
                                "x2": {"field": "whisker_high"},
                            },
                        },
                        {
                            "mark": {
                                "type": "bar",
                                "size": 28,
                                "color": "#9ecae9",
                                "stroke": "#4c78a8",
                            },
                            "encoding": {
                                "x": {"field": "q1", "type": "quantitative"},
                                "x2": {"field": "q3"},
                            },
                        },
                        {
                            "mark": {
                                "type": "tick",
                                "size": 28,
                                "thickness": 3,
                                "color": "#1f3d66",
                            },
                            "encoding": {"x": {"field": "median", "type": "quantitative"}},
                        },
                    ],
                },
                height=90,
            )
        )
    out.append(
        plot(
            "quantiles",
            f"Quantiles of {variable}",
            f"{len(rows)} quantiles of {variable}; bars show the stated error bound.",
            rows,
            {
                "encoding": {
                    "x": {
                        "field": "probability",
                        "type": "quantitative",
                        "scale": {"domain": [0, 1]},
                    }
                },
                "layer": [
                    {
                        "mark": {"type": "rule", "color": "#999"},
                        "encoding": {
                            "y": {
                                "field": "low",
                                "type": "quantitative",
                                "title": variable,
                                "scale": {"zero": False},
                            },
                            "y2": {"field": "high"},
                        },
                    },
                    {
                        "mark": {"type": "line", "point": True},
                        "encoding": {
                            "y": {"field": "value", "type": "quantitative"},
                            "tooltip": [
                                {"field": "probability"},
                                {"field": "value", "format": ".4g"},
                            ],
                        },
                    },
                ],
            },
        )
    )
    return out


def crosstab_plots(result: Mapping[str, Any], request: Mapping[str, Any]) -> list[Plot]:
    rows = [
        {"row": r, "column": c, "count": n}
        for r, counts in zip(result["rows"], result["counts"], strict=True)
        for c, n in zip(result["columns"], counts, strict=True)
    ]
    row_var, col_var = request.get("row", "row"), request.get("column", "column")
    return [
        plot(
            "counts",
            f"Counts of {row_var} by {col_var}",
            f"Heat map of the {len(rows)} cells of the {row_var} × {col_var} table.",
            rows,
            heatmap("column", "row", "count"),
            height=max(110, 40 * len(result["rows"])),
        )
    ]


def correlation_plots(result: Mapping[str, Any], request: Mapping[str, Any]) -> list[Plot]:
    names = result["variables"]
    rows = [
        {"x": a, "y": b, "r": number(v)}
        for b, line in zip(names, result["matrix"], strict=True)
        for a, v in zip(names, line, strict=True)
    ]
    return [
        plot(
            "matrix",
            "Pearson correlations",
            f"Correlation matrix of {len(names)} variables on {result.get('n')} rows.",
            rows,
            heatmap("x", "y", "r", domain=[-1, 1], scheme="redblue", fmt=".2f"),
            height=max(120, 44 * len(names)),
        )
    ]


def ttest_plots(result: Mapping[str, Any], request: Mapping[str, Any]) -> list[Plot]:
    rows: list[Row] = []
    for label, g in result["groups"].items():
        n, mean, sd = g.get("n") or 0, number(g.get("mean")), number(g.get("sd"))
        if mean is None:
            continue
        half = float(stats.t.ppf(0.975, n - 1)) * sd / n**0.5 if sd is not None and n > 1 else 0
        rows.append(
            {
                "group": str(label),
                "n": n,
                "estimate": mean,
                "sd": sd,
                "low": mean - half,
                "high": mean + half,
            }
        )
    variable, group = result.get("variable", "value"), result.get("group", "group")
    return [
        plot(
            "groups",
            f"Mean {variable} by {group} (95% CI)",
            f"Mean of {variable} in each level of {group} with its 95% confidence interval.",
            rows,
            {"layer": interval_layers("group", x_title=f"mean {variable}", reference=None)},
            height=max(110, 40 * len(rows)),
        )
    ]
