"""Plots of multivariate results: ComBat site effects, PCA, k-means profiles, training.

Shapes follow the result table of the design: ComBat ``batches: {label: {n, gamma,
delta}}`` (per-variable values as a list in the request's variable order or an object
keyed by variable); PCA ``components`` (components × variables) and
``explained_variance_ratio``; k-means ``centers`` (clusters × variables; null for a
cluster too small to show) and ``sizes``; Gaussian mixtures ``means`` and ``weights``;
training ``history`` (one object per round) and ``coefficients``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from coordinator.web.plots_models import trained_coefficient_plots
from coordinator.web.vega import Plot, Row, heatmap, number, plot


def _per_variable(value: Any, variables: Sequence[str]) -> dict[str, float | None]:
    if isinstance(value, Mapping):
        return {str(k): number(v) for k, v in value.items()}
    if isinstance(value, list):
        names = (
            list(variables)
            if len(variables) == len(value)
            else [f"variable {i + 1}" for i in range(len(value))]
        )
        return {n: number(v) for n, v in zip(names, value, strict=True)}
    return {"all": number(value)}


def combat_plots(result: Mapping[str, Any], request: Mapping[str, Any]) -> list[Plot]:
    variables = list(result.get("variables") or request.get("variables") or [])
    rows: list[Row] = []
    for batch, b in result["batches"].items():
        gamma = _per_variable(b.get("gamma"), variables)
        delta = _per_variable(b.get("delta"), variables)
        for var in gamma:
            for stage, loc, scale in (("before", gamma[var], delta.get(var)), ("after", 0.0, 1.0)):
                rows.append(
                    {
                        "site": str(batch),
                        "variable": var,
                        "stage": stage,
                        "location": loc,
                        "scale": scale,
                    }
                )
    out = []
    for measure, title, ref in (
        ("location", "additive site effect (γ)", 0),
        ("scale", "multiplicative site effect (δ²)", 1),
    ):
        x = {"field": "variable", "type": "nominal", "sort": None, "title": None}
        y = {"field": measure, "type": "quantitative", "title": title}
        out.append(
            plot(
                f"combat_{measure}",
                f"ComBat {title}, before and after harmonization",
                f"Bars: estimated {title} of each site per variable before harmonization; "
                f"ticks: after harmonization every site has {measure} {ref} by construction.",
                rows,
                {
                    "layer": [
                        {
                            "transform": [{"filter": "datum.stage === 'before'"}],
                            "mark": "bar",
                            "encoding": {
                                "x": x,
                                "xOffset": {"field": "site"},
                                "y": y,
                                "color": {"field": "site", "type": "nominal"},
                                "tooltip": [
                                    {"field": "site"},
                                    {"field": "variable"},
                                    {"field": measure, "format": ".4g"},
                                ],
                            },
                        },
                        {
                            "transform": [{"filter": "datum.stage === 'after'"}],
                            "mark": {"type": "tick", "thickness": 2, "color": "#222"},
                            "encoding": {"x": x, "xOffset": {"field": "site"}, "y": y},
                        },
                    ]
                },
            )
        )
    return out


def pca_plots(result: Mapping[str, Any], request: Mapping[str, Any]) -> list[Plot]:
    variables = list(result.get("variables") or request.get("variables") or [])
    ratios = result["explained_variance_ratio"]
    scree = [
        {"component": f"PC{i + 1}", "ratio": r, "cumulative": sum(ratios[: i + 1])}
        for i, r in enumerate(ratios)
    ]
    loadings = [
        {"component": f"PC{i + 1}", "variable": v, "loading": x}
        for i, comp in enumerate(result["components"])
        for v, x in _per_variable(comp, variables).items()
    ]
    x = {"field": "component", "type": "nominal", "sort": None, "title": None}
    return [
        plot(
            "scree",
            "Explained variance per component",
            f"Share of variance explained by each of {len(ratios)} components, with the "
            "cumulative share.",
            scree,
            {
                "encoding": {"x": x},
                "layer": [
                    {
                        "mark": {"type": "bar", "color": "#4c78a8"},
                        "encoding": {
                            "y": {
                                "field": "ratio",
                                "type": "quantitative",
                                "axis": {"format": "%"},
                                "title": "explained variance",
                            }
                        },
                    },
                    {
                        "mark": {"type": "line", "point": True, "color": "#e45756"},
                        "encoding": {"y": {"field": "cumulative", "type": "quantitative"}},
                    },
                ],
            },
        ),
        plot(
            "loadings",
            "PCA loadings",
            "Loading of each variable on each component.",
            loadings,
            heatmap(
                "variable", "component", "loading", domain=[-1, 1], scheme="redblue", fmt=".2f"
            ),
            height=max(110, 36 * len(ratios)),
        ),
    ]


def _cluster_plots(
    centers: list[Any], sizes: list[Any], variables: Sequence[str], size_title: str
) -> list[Plot]:
    """Profiles of cluster centers and a bar of cluster sizes; suppressed (null) clusters
    are left out and said to be."""
    shown = [(k, c) for k, c in enumerate(centers) if c is not None]
    hidden = len(centers) - len(shown)
    note = f" {hidden} cluster(s) too small to show are left out." if hidden else ""
    profile = [
        {"cluster": f"cluster {k + 1}", "variable": v, "center": value}
        for k, center in shown
        for v, value in _per_variable(center, variables).items()
    ]
    size_rows = [
        {"cluster": f"cluster {k + 1}", "size": s} for k, s in enumerate(sizes) if s is not None
    ]
    out = [
        plot(
            "profiles",
            "Cluster profiles (centers)",
            f"Center of each of {len(shown)} clusters on each variable.{note}",
            profile,
            {
                "mark": {"type": "line", "point": True},
                "encoding": {
                    "x": {"field": "variable", "type": "nominal", "sort": None, "title": None},
                    "y": {"field": "center", "type": "quantitative", "title": "center"},
                    "color": {"field": "cluster", "type": "nominal"},
                    "tooltip": [
                        {"field": "cluster"},
                        {"field": "variable"},
                        {"field": "center", "format": ".4g"},
                    ],
                },
            },
        )
    ]
    if size_rows:
        out.append(
            plot(
                "sizes",
                f"Cluster {size_title}",
                f"{size_title.capitalize()} of each cluster.{note}",
                size_rows,
                {
                    "mark": "bar",
                    "encoding": {
                        "y": {"field": "cluster", "type": "nominal", "title": None},
                        "x": {"field": "size", "type": "quantitative", "title": size_title},
                        "color": {"field": "cluster", "type": "nominal", "legend": None},
                    },
                },
                height=max(110, 30 * len(size_rows)),
            )
        )
    return out


def kmeans_plots(result: Mapping[str, Any], request: Mapping[str, Any]) -> list[Plot]:
    variables = list(result.get("variables") or request.get("variables") or [])
    return _cluster_plots(result["centers"], result.get("sizes") or [], variables, "sizes")


def gmm_plots(result: Mapping[str, Any], request: Mapping[str, Any]) -> list[Plot]:
    variables = list(result.get("variables") or request.get("variables") or [])
    return _cluster_plots(result["means"], result.get("weights") or [], variables, "weights")


LOSSES = {"train_loss": "training loss", "val_loss": "validation loss"}


def training_plots(result: Mapping[str, Any], request: Mapping[str, Any]) -> list[Plot]:
    """Losses per round (not timings), and the coefficients of a logistic model."""
    rows = [
        {"round": h.get("round", i + 1), "metric": LOSSES.get(k, k), "value": v}
        for i, h in enumerate(result.get("history") or [])
        for k, v in h.items()
        if k not in ("round", "seconds") and number(v) is not None
    ]
    out = trained_coefficient_plots(result, request)
    if not rows:
        return out
    history = plot(
        "history",
        "Training history",
        "Mean log loss on the training and validation rows after each round.",
        rows,
        {
            "mark": {"type": "line", "point": True},
            "encoding": {
                "x": {
                    "field": "round",
                    "type": "quantitative",
                    "title": "round",
                    "axis": {"tickMinStep": 1, "format": "d"},
                },
                "y": {
                    "field": "value",
                    "type": "quantitative",
                    "title": "mean log loss",
                    "scale": {"zero": False},
                },
                "color": {"field": "metric", "type": "nominal"},
            },
        },
    )
    return [history, *out]
