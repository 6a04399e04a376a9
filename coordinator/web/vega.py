"""A plot as the dashboard holds it: a Vega-Lite spec with its data inline, and that data.

Every spec carries its rows as the inline data set named ``table`` (so the page can read
them back from the rendered view, and the same rows are offered as CSV/JSON), a
``description`` that screen readers announce, and (unless it is faceted into panels) a
width that follows its container.
Specs are plain dicts in Vega-Lite v6 (Satyanarayan et al., *Vega-Lite: A Grammar of
Interactive Graphics*, IEEE TVCG 23(1), 2017).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json"
DATA = "table"
Row = dict[str, Any]
Z_95 = 1.959963984540054  # standard normal 97.5 % quantile


@dataclass(frozen=True)
class Plot:
    """One plot of a result: ``name`` is unique within the result (used in URLs)."""

    name: str
    title: str
    description: str
    rows: list[Row]
    spec: dict[str, Any]


def number(value: Any) -> float | None:
    """``value`` as a finite float, or None (missing, null, NaN, text)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    out = float(value)
    return out if math.isfinite(out) else None


def plot(
    name: str,
    title: str,
    description: str,
    rows: Sequence[Row],
    body: Mapping[str, Any],
    *,
    height: int | None = 280,
) -> Plot:
    """A :class:`Plot` whose spec is ``body`` (mark/encoding/layer…) plus the common parts."""
    spec: dict[str, Any] = {
        "$schema": SCHEMA,
        "title": title,
        "description": description,
        "data": {"name": DATA, "values": list(rows)},
        "config": {
            "font": "system-ui, sans-serif",
            "axis": {"labelLimit": 220},
            "view": {"stroke": None},
        },
        **body,
    }
    if "facet" not in body:  # a faceted plot sizes its panels itself
        spec.setdefault("width", "container")
        if height is not None:
            spec.setdefault("height", height)
    return Plot(name, title, description, list(rows), spec)


def interval_layers(
    y: str,
    *,
    color: str | None = None,
    sort: Any = None,
    x_title: str = "estimate",
    reference: float | None = 0.0,
    log: bool = False,
    point: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """A dot with a horizontal interval (``low``–``high``) per ``y`` row, and a dashed rule
    at ``reference`` (0 for differences, 1 for ratios on a ``log`` axis; None: no rule)."""
    y_enc = {"field": y, "type": "nominal", "sort": sort, "title": None}
    scale: dict[str, Any] = {"type": "log"} if log else {"zero": False}
    x_enc = {"field": "estimate", "type": "quantitative", "title": x_title, "scale": scale}
    tip = [
        {"field": y, "type": "nominal"},
        {"field": "estimate", "type": "quantitative", "format": ".4g"},
        {"field": "low", "type": "quantitative", "format": ".4g"},
        {"field": "high", "type": "quantitative", "format": ".4g"},
    ]
    colour = {"color": {"field": color, "type": "nominal"}} if color else {}
    layers: list[dict[str, Any]] = [
        {
            "mark": {"type": "rule", "strokeWidth": 2},
            "encoding": {
                "y": y_enc,
                "x": {"field": "low", "type": "quantitative", "title": x_title, "scale": scale},
                "x2": {"field": "high"},
                **colour,
            },
        },
        {
            "mark": {"type": "point", "filled": True, "size": 70, **(point or {})},
            "encoding": {"y": y_enc, "x": x_enc, "tooltip": tip, **colour},
        },
    ]
    if reference is not None:
        layers.append(
            {
                "data": {"values": [{"reference": reference}]},
                "mark": {"type": "rule", "strokeDash": [4, 4], "color": "#666"},
                "encoding": {"x": {"field": "reference", "type": "quantitative"}},
            }
        )
    return layers


def heatmap(
    x: str,
    y: str,
    value: str,
    *,
    domain: list[float] | None = None,
    scheme: str = "blues",
    fmt: str = ".0f",
) -> dict[str, Any]:
    """A rect heat map of ``value`` over ``x`` × ``y`` with the value written in each cell."""
    scale: dict[str, Any] = {"scheme": scheme}
    if domain is not None:
        scale["domain"] = domain
    axis_x = {
        "field": x,
        "type": "nominal",
        "sort": None,
        "title": None,
        "axis": {"labelAngle": -30},
    }
    axis_y = {"field": y, "type": "nominal", "sort": None, "title": None}
    return {
        "encoding": {"x": axis_x, "y": axis_y},
        "layer": [
            {
                "mark": "rect",
                "encoding": {
                    "color": {"field": value, "type": "quantitative", "scale": scale},
                    "tooltip": [
                        {"field": y},
                        {"field": x},
                        {"field": value, "type": "quantitative", "format": fmt},
                    ],
                },
            },
            {
                "mark": {"type": "text", "fontSize": 12},
                "encoding": {"text": {"field": value, "type": "quantitative", "format": fmt}},
            },
        ],
    }
