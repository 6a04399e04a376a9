"""Descriptive analyses: count, summary, histogram, quantiles, crosstab, correlation, t-test."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from coordinator.http.client.asking import Asking
from coordinator.http.client.result import Convert, Result, Tables
from coordinator.http.client.tables import named
from coordinator.stats.wald import critical

SUMMARY_COLUMNS = ["n", "missing", "mean", "sd", "var", "skewness", "kurtosis"]


def count_tables(result: Mapping[str, Any], _: Mapping[str, Any]) -> Tables:
    return pd.DataFrame({"n": [int(result["n"])]}), {}


def summary_tables(result: Mapping[str, Any], _: Mapping[str, Any]) -> Tables:
    rows = result["variables"]
    frame = pd.DataFrame.from_dict(rows, orient="index").reindex(columns=SUMMARY_COLUMNS)
    frame = frame.astype({c: float for c in SUMMARY_COLUMNS[2:]})
    n = frame["n"].astype(float)
    se: pd.Series = frame["sd"] / np.sqrt(n)
    crit = pd.Series(
        [critical(k - 1) if k > 1 else math.nan for k in n], index=frame.index, dtype=float
    )
    frame = frame.assign(se=se, ci_low=frame["mean"] - crit * se, ci_high=frame["mean"] + crit * se)
    return named(frame, "variable"), {}


def histogram_tables(result: Mapping[str, Any], _: Mapping[str, Any]) -> Tables:
    edges = result["edges"]
    frame = pd.DataFrame({"low": edges[:-1], "high": edges[1:], "count": result["counts"]})
    return frame, {}


def quantiles_tables(result: Mapping[str, Any], _: Mapping[str, Any]) -> Tables:
    values = np.asarray(result["values"], dtype=float)
    bound = float(result["error_bound"])
    frame = pd.DataFrame(
        {"value": values, "lower": values - bound, "upper": values + bound},
        index=pd.Index(result["probabilities"], name="probability"),
    )
    return frame, {}


def crosstab_tables(result: Mapping[str, Any], request: Mapping[str, Any]) -> Tables:
    frame = pd.DataFrame(result["counts"], index=result["rows"], columns=result["columns"])
    return named(frame, str(request["row"]), str(request["column"])), {}


def correlation_tables(result: Mapping[str, Any], _: Mapping[str, Any]) -> Tables:
    names = result["variables"]
    frame = pd.DataFrame(result["matrix"], index=names, columns=names, dtype=float)
    return named(frame, "variable", "variable"), {}


def ttest_tables(result: Mapping[str, Any], _: Mapping[str, Any]) -> Tables:
    groups = named(pd.DataFrame.from_dict(result["groups"], orient="index"), result["group"])
    (n1, m1, v1), (n2, m2, v2) = (
        (np.float64(r["n"]), r["mean"], r["sd"] ** 2 if r["sd"] is not None else math.nan)
        for r in result["groups"].values()
    )
    difference = m1 - m2 if m1 is not None and m2 is not None else math.nan
    dof = n1 + n2 - 2
    squares = sum((n - 1) * v for n, v in ((n1, v1), (n2, v2)) if n > 1)
    pooled_var = squares / dof if dof > 0 else math.nan
    with np.errstate(all="ignore"):  # a level without rows: no interval
        se = {
            "welch": np.sqrt(v1 / n1 + v2 / n2),
            "pooled": np.sqrt(pooled_var * (1 / n1 + 1 / n2)),
        }
    rows = []
    for kind in ("welch", "pooled"):
        test = result[kind]
        df = test["df"]
        half = critical(df) * se[kind] if df is not None else math.nan
        rows.append(
            {
                "test": kind,
                "difference": difference,
                "std_error": se[kind],
                "statistic": test["statistic"],
                "df": df,
                "p_value": test["p_value"],
                "ci_low": difference - half,
                "ci_high": difference + half,
            }
        )
    frame = pd.DataFrame(rows).set_index("test").astype(float)
    return frame, {"groups": groups}


class Descriptive(Asking):
    """Counts, summaries and simple tests."""

    def count(self, cohort: dict[str, Any] | None = None, **options: Any) -> Result:
        """The rows in ``cohort``: ``table`` has one column ``n`` (also ``.n``).

        Sends::

            {"analysis": "count", "cohort": {"all": [{"var": "trs", "op": "==", "value": 1}]}}
        """
        return self._ask("count", count_tables, cohort=cohort, **options)

    def summary(self, variables: Sequence[str], **options: Any) -> Result:
        """Per variable (the index): ``n``, ``missing``, ``mean``, ``sd``, ``var``,
        ``skewness``, ``kurtosis``, and the mean's standard error ``se`` with its 95 % t
        interval ``ci_low``, ``ci_high``. Each variable uses its own non-missing rows.

        Sends::

            {"analysis": "summary", "variables": ["panss_total", "age"]}
        """
        return self._ask("summary", summary_tables, variables=variables, **options)

    def histogram(self, variable: str, edges: Sequence[float], **options: Any) -> Result:
        """Counts per bin: ``table`` columns ``low``, ``high``, ``count`` (the bins actually
        reported, after merging small ones); ``.below``, ``.above``, ``.merged``.

        Sends::

            {"analysis": "histogram", "variable": "age", "edges": [20, 30, 40, 50, 60, 70]}
        """
        return self._ask("histogram", histogram_tables, variable=variable, edges=edges, **options)

    def quantiles(
        self, variable: str, probabilities: Sequence[float] | None = None, **options: Any
    ) -> Result:
        """Approximate quantiles indexed by ``probability``: ``value`` and the interval
        ``lower``, ``upper`` (± ``.error_bound``) that holds the exact pooled quantile.

        Sends::

            {"analysis": "quantiles", "variable": "panss_total", "probabilities": [0.25, 0.5]}
        """
        return self._ask(
            "quantiles", quantiles_tables, variable=variable, probabilities=probabilities, **options
        )

    def crosstab(self, row: str, column: str, **options: Any) -> Result:
        """Counts as a 2-D frame, its index named ``row`` and its columns ``column``;
        ``.chi2`` is Pearson's test ``{statistic, df, p_value}``.

        Sends::

            {"analysis": "crosstab", "row": "sex", "column": "trs"}
        """
        return self._ask("crosstab", crosstab_tables, row=row, column=column, **options)

    def correlation(self, variables: Sequence[str], **options: Any) -> Result:
        """The Pearson matrix as a square frame (both axes named ``variable``); complete
        cases, ``.n`` rows.

        Sends::

            {"analysis": "correlation", "variables": ["age", "panss_total", "dacc_glx"]}
        """
        return self._ask("correlation", correlation_tables, variables=variables, **options)

    def ttest(
        self, variable: str, group: str, levels: Sequence[str] | None = None, **options: Any
    ) -> Result:
        """Two-sample t-test of the first level minus the second: ``table`` rows ``welch``
        and ``pooled`` with ``difference``, ``std_error``, ``statistic``, ``df``,
        ``p_value`` and the 95 % interval ``ci_low``, ``ci_high``; ``.groups`` has each
        level's ``n``, ``mean``, ``sd``.

        Sends::

            {"analysis": "ttest", "variable": "panss_total", "group": "trs", "levels": ["1", "0"]}
        """
        return self._ask(
            "ttest", ttest_tables, variable=variable, group=group, levels=levels, **options
        )


TABLES: dict[str, Convert] = {
    "count": count_tables,
    "summary": summary_tables,
    "histogram": histogram_tables,
    "quantiles": quantiles_tables,
    "crosstab": crosstab_tables,
    "correlation": correlation_tables,
    "ttest": ttest_tables,
}
"""Each analysis of this module with its conversion."""
