"""Plots of model results: coefficients, forest plots and Kaplan–Meier curves.

Shapes follow the result table of the design (``coefficients`` rows with ``term``,
``estimate``, ``std_error``; ``meta`` ``per_site`` with its pooled estimates; Kaplan–Meier
``groups: {label: {time, survival, std_error, at_risk, events}}``). Confidence intervals
are Wald intervals, estimate ± z·SE (t with the residual df for least squares), as
statsmodels' ``conf_int``; survival bands are Ŝ ± z·SE(Greenwood) clipped to [0, 1] (R's
``conf.type = "plain"``), and each curve starts at Ŝ(0) = 1 and steps (step-after) only at
the reported times.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from coordinator.stats.wald import critical
from coordinator.web.variables import term_label
from coordinator.web.vega import Z_95, Plot, Row, interval_layers, number, plot

RATIO_OF = {"binomial": "odds ratio", "poisson": "rate ratio", "cox": "hazard ratio"}


def _crit(result: Mapping[str, Any], request: Mapping[str, Any]) -> float:
    df = result.get("df_residual")
    return critical(df if request.get("analysis") == "ols" and df else None)


def coefficient_plots(result: Mapping[str, Any], request: Mapping[str, Any]) -> list[Plot]:
    """Coefficients with Wald 95% intervals; for a log link (binomial, poisson, Cox) as
    ratios, exp(β) with exp(β ± z·SE), on a log axis around 1, else around 0. A
    categorical term is labelled with the level it is compared with."""
    ratio = RATIO_OF.get(str(result.get("family") or request.get("analysis")))
    crit = _crit(result, request)
    rows: list[Row] = []
    for c in result["coefficients"]:
        est, se = number(c.get("estimate")), number(c.get("std_error"))
        if c.get("term") == "Intercept" or est is None:
            continue
        half = crit * se if se is not None else 0.0
        low, high = est - half, est + half
        row: Row = {"term": c["term"], "label": term_label(str(c["term"]))}
        if ratio is not None:
            row |= {"coefficient": est, "estimate": math.exp(est)}
            row |= {"low": math.exp(low), "high": math.exp(high)}
        else:
            row |= {"estimate": est, "low": low, "high": high}
        rows.append(row | {"std_error": se, "p_value": c.get("p_value")})
    if not rows:
        return []
    what = f"{ratio}s" if ratio else "coefficients"
    scale = f"{ratio} (log scale)" if ratio else "estimate"
    layers = interval_layers(
        "label", x_title=scale, reference=1.0 if ratio else 0.0, log=ratio is not None
    )
    return [
        plot(
            "coefficients",
            f"{what.capitalize()} with 95% confidence intervals",
            f"{len(rows)} {what} with 95% intervals"
            + (", exp(coefficient), on a log axis; 1 is no effect" if ratio else "")
            + "; the intercept is listed in the table only.",
            rows,
            {"layer": layers},
            height=max(110, 34 * len(rows)),
        )
    ]


def trained_coefficient_plots(result: Mapping[str, Any], request: Mapping[str, Any]) -> list[Plot]:
    """A trained logistic model's coefficients (log odds), which come without standard
    errors: points only."""
    rows: list[Row] = [
        {"term": c["term"], "label": term_label(str(c["term"])), "estimate": est}
        for c in result.get("coefficients") or []
        if c.get("term") != "Intercept" and (est := number(c.get("estimate"))) is not None
    ]
    if not rows:
        return []
    title = "Coefficients (no CI: federated training does not estimate standard errors)"
    return [
        plot(
            "coefficients",
            title,
            f"{len(rows)} coefficients of the trained model (log odds) without intervals; "
            "the intercept is listed in the table only.",
            rows,
            {"layer": interval_layers("label", x_title="log odds")[1:]},
            height=max(110, 34 * len(rows)),
        )
    ]


def forest_plots(result: Mapping[str, Any], request: Mapping[str, Any]) -> list[Plot]:
    rows: list[Row] = [
        {
            "label": f"{s['site']} (n={s['n']})",
            "kind": "site",
            "estimate": s["estimate"],
            "low": s["ci_low"],
            "high": s["ci_high"],
            "weight": s.get("weight"),
        }
        for s in result["per_site"]
    ]
    for key, name in (("random", "random effects"), ("fixed", "fixed effect")):
        pooled = result.get(key)
        if pooled:
            rows.append(
                {
                    "label": f"pooled, {name}",
                    "kind": "pooled",
                    "estimate": pooled["estimate"],
                    "low": pooled["ci_low"],
                    "high": pooled["ci_high"],
                    "weight": None,
                }
            )
    level = float(result.get("level", 0.95))
    term = result.get("term", "term")
    layers = interval_layers("label", color="kind", x_title=f"{term} ({level:.0%} CI)")
    layers[1]["mark"] = {"type": "point", "filled": True, "shape": "diamond", "size": 110}
    layers[1]["encoding"]["shape"] = {
        "field": "kind",
        "type": "nominal",
        "scale": {"domain": ["site", "pooled"], "range": ["square", "diamond"]},
    }
    return [
        plot(
            "forest",
            f"Forest plot of {term}",
            f"Per-site estimates of {term} with {level:.0%} intervals and the pooled "
            f"estimates (I² = {float(result.get('i_squared', 0)):.0%}).",
            rows,
            {"layer": layers},
            height=max(110, 34 * len(rows)),
        )
    ]


def _curve_rows(label: str, curve: Mapping[str, Any]) -> list[Row]:
    """One group's points, starting at S(0) = 1, with a Greenwood 95% band when given.

    The curve is drawn as a step function through these points only (step-after: each
    estimate holds until the next reported time, where the curve drops to that time's
    estimate), never interpolated between them: the result estimates the curve at the
    reported times and nowhere else.
    """
    rows: list[Row] = [{"group": label, "time": 0.0, "survival": 1.0}]
    errors = curve.get("std_error")
    for i, (t, s) in enumerate(zip(curve["time"], curve["survival"], strict=True)):
        row: Row = {"group": label, "time": t, "survival": s}
        for extra in ("at_risk", "events"):
            if isinstance(curve.get(extra), list):
                row[extra] = curve[extra][i]
        se = number(errors[i]) if isinstance(errors, list) else None
        if se is not None and number(s) is not None:
            row["lower"], row["upper"] = max(0.0, s - Z_95 * se), min(1.0, s + Z_95 * se)
        rows.append(row)
    if len(rows) > 1 and "lower" in rows[1]:
        rows[0]["lower"] = rows[0]["upper"] = 1.0
    return rows


def kaplan_meier_plots(result: Mapping[str, Any], request: Mapping[str, Any]) -> list[Plot]:
    rows = [r for label, g in result["groups"].items() for r in _curve_rows(str(label), g)]
    colour = {"field": "group", "type": "nominal", "title": request.get("group") or "group"}
    layers: list[dict[str, Any]] = [
        {
            "mark": {"type": "line", "interpolate": "step-after", "strokeWidth": 2, "point": True},
            "encoding": {
                "color": colour,
                "y": {
                    "field": "survival",
                    "type": "quantitative",
                    "scale": {"domain": [0, 1]},
                    "title": "survival probability",
                },
                "tooltip": [
                    {"field": "group"},
                    {"field": "time"},
                    {"field": "survival", "format": ".3f"},
                    *([{"field": "at_risk"}] if len(rows) > 1 and "at_risk" in rows[1] else []),
                ],
            },
        }
    ]
    if any("lower" in r for r in rows):
        layers.insert(
            0,
            {
                "mark": {"type": "area", "interpolate": "step-after", "opacity": 0.15},
                "encoding": {
                    "color": colour,
                    "y": {"field": "lower", "type": "quantitative"},
                    "y2": {"field": "upper"},
                },
            },
        )
    time_title = request.get("time") or "time"
    left_out = result.get("merged_points") or []
    merged = (
        f" {len(left_out)} requested times were left out under the sites' rules (merged_points)."
        if left_out
        else ""
    )
    return [
        plot(
            "survival",
            "Kaplan–Meier survival curves",
            f"Survival over {time_title} for {len(result['groups'])} groups, from (0, 1), "
            f"stepping only at the reported times.{merged}",
            rows,
            {
                "encoding": {"x": {"field": "time", "type": "quantitative", "title": time_title}},
                "layer": layers,
            },
        )
    ]
