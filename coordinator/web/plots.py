"""Vega-Lite plots of result envelopes, one builder per analysis.

:func:`plots_for` turns an ``ok`` envelope (and the request it answers) into
:class:`~coordinator.web.vega.Plot` objects. Only values the envelope holds are plotted:
the envelope is what the coordinator received, so every number passed each site's gate.
A result whose shape a builder does not know (an analysis added later, a field renamed)
gets no plot rather than an error; its tables still show.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from coordinator.web.plots_models import coefficient_plots, forest_plots, kaplan_meier_plots
from coordinator.web.plots_multivariate import (
    combat_plots,
    gmm_plots,
    kmeans_plots,
    pca_plots,
    training_plots,
)
from coordinator.web.plots_quality import quality_plots
from coordinator.web.plots_stats import (
    correlation_plots,
    crosstab_plots,
    histogram_plots,
    quantile_plots,
    summary_plots,
    ttest_plots,
)
from coordinator.web.vega import Plot

log = logging.getLogger(__name__)
Builder = Callable[[Mapping[str, Any], Mapping[str, Any]], list[Plot]]

BUILDERS: dict[str, Builder] = {
    "summary": summary_plots,
    "histogram": histogram_plots,
    "quantiles": quantile_plots,
    "crosstab": crosstab_plots,
    "correlation": correlation_plots,
    "ttest": ttest_plots,
    "ols": coefficient_plots,
    "glm": coefficient_plots,
    "lmm": coefficient_plots,
    "cox": coefficient_plots,
    "meta": forest_plots,
    "kaplan_meier": kaplan_meier_plots,
    "combat": combat_plots,
    "pca": pca_plots,
    "kmeans": kmeans_plots,
    "gmm": gmm_plots,
    "train": training_plots,
    "data_quality": quality_plots,
}


def plots_for(envelope: Mapping[str, Any], request: Mapping[str, Any]) -> list[Plot]:
    """The plots of an envelope (none unless its status is ``ok``)."""
    analysis = str(envelope.get("analysis"))
    builder = BUILDERS.get(analysis)
    result = envelope.get("result")
    if envelope.get("status") != "ok" or builder is None or not isinstance(result, Mapping):
        return []
    try:
        return builder(result, {"analysis": analysis, **request})
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        log.warning("no plot for this %s result: %s: %s", analysis, type(exc).__name__, exc)
        return []


def find_plot(envelope: Mapping[str, Any], request: Mapping[str, Any], name: str) -> Plot | None:
    return next((p for p in plots_for(envelope, request) if p.name == name), None)
