"""Regression models: OLS, GLM, the linear mixed model, meta-analysis and Cox."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import pandas as pd

from coordinator.http.client.asking import Asking
from coordinator.http.client.result import Convert, Result, Tables
from coordinator.http.client.tables import RATIO_OF_FAMILY, coefficient_frame, named, with_ratio

Family = Literal["gaussian", "binomial", "poisson"]
META_COLUMNS = ["n", "estimate", "std_error", "ci_low", "ci_high", "weight", "statistic", "p_value"]


def ols_tables(result: Mapping[str, Any], _: Mapping[str, Any]) -> Tables:
    return coefficient_frame(result["coefficients"], df=result["df_residual"]), {}


def glm_tables(result: Mapping[str, Any], _: Mapping[str, Any]) -> Tables:
    ratio = RATIO_OF_FAMILY.get(result["family"])
    return coefficient_frame(result["coefficients"], ratio=ratio), {}


def lmm_tables(result: Mapping[str, Any], _: Mapping[str, Any]) -> Tables:
    components = pd.DataFrame({"variance": pd.Series(result["variance_components"], dtype=float)})
    return coefficient_frame(result["coefficients"]), {
        "variance_components": named(components, "component")
    }


def meta_tables(result: Mapping[str, Any], request: Mapping[str, Any]) -> Tables:
    rows = [{**site, "kind": "site"} for site in result["per_site"]]
    for kind in ("fixed", "random"):
        rows.append({"site": kind, "kind": "pooled", "n": result["n"], **result[kind]})
    frame = pd.DataFrame(rows).set_index("site")
    frame = frame.reindex(columns=["kind", *META_COLUMNS])
    frame = frame.astype({c: float for c in META_COLUMNS[1:]}).astype({"n": "Int64"})
    ratio = RATIO_OF_FAMILY.get(str(request.get("family")))
    return with_ratio(frame, ratio), {}


def cox_tables(result: Mapping[str, Any], _: Mapping[str, Any]) -> Tables:
    return coefficient_frame(result["coefficients"], ratio="hazard_ratio"), {}


class Models(Asking):
    """Regression models. Their ``table`` is indexed by ``term`` (formulaic's names:
    ``Intercept``, ``age``, ``sex[T.M]``) with ``estimate``, ``std_error``, ``statistic``,
    ``p_value`` and the 95 % interval ``ci_low``, ``ci_high``; ratio models add the ratio
    and its interval (``odds_ratio``, ``odds_ratio_ci_low``, ``odds_ratio_ci_high``)."""

    def ols(self, formula: str, **options: Any) -> Result:
        """Least squares; intervals use t with ``.df_residual`` degrees of freedom;
        ``.r_squared``, ``.adj_r_squared``, ``.sigma``, ``.dropped`` (terms left out).

        Sends::

            {"analysis": "ols", "formula": "panss_total ~ age + sex + cpz_eq_current"}
        """
        return self._ask("ols", ols_tables, formula=formula, **options)

    def glm(self, formula: str, family: Family = "gaussian", **options: Any) -> Result:
        """Generalized linear model (z intervals, as statsmodels); ``binomial`` adds odds
        ratios, ``poisson`` rate ratios; ``.deviance``, ``.null_deviance``,
        ``.iterations``, ``.converged``.

        Sends::

            {"analysis": "glm", "formula": "trs ~ age + sex", "family": "binomial"}
        """
        return self._ask("glm", glm_tables, formula=formula, family=family, **options)

    def lmm(self, formula: str, **options: Any) -> Result:
        """Linear mixed model with a random intercept per site (REML): fixed effects in
        ``table``, ``.variance_components`` (``site`` τ², ``residual`` σ²).

        Sends::

            {"analysis": "lmm", "formula": "dacc_glx ~ age + trs"}
        """
        return self._ask("lmm", lmm_tables, formula=formula, **options)

    def meta(
        self,
        formula: str,
        term: str,
        method: Literal["dl", "reml", "pm"] = "reml",
        family: Family | None = None,
        **options: Any,
    ) -> Result:
        """Two-stage random-effects meta-analysis of ``term``: ``table`` has one row per
        site and the pooled ``fixed`` and ``random`` rows (``kind`` says which), with
        ``n``, ``estimate``, ``std_error``, ``ci_low``, ``ci_high`` (at ``.level``),
        ``weight`` (random effects), ``statistic`` and ``p_value`` (pooled rows) — a forest
        plot's data; odds or rate ratios for a binomial or poisson ``family``; ``.tau2``,
        ``.i_squared``, ``.q``.

        Sends::

            {"analysis": "meta", "formula": "trs ~ panss_negative", "term": "panss_negative",
             "method": "reml", "family": "binomial"}
        """
        return self._ask(
            "meta", meta_tables, formula=formula, term=term, method=method, family=family, **options
        )

    def cox(self, time: str, event: str, formula: str, **options: Any) -> Result:
        """Cox proportional hazards (Efron ties): log hazard ratios with z intervals and
        ``hazard_ratio``, ``hazard_ratio_ci_low``, ``hazard_ratio_ci_high``; ``.events``,
        ``.resolution`` (the time axis the fit used), ``.coarsened``.

        Sends::

            {"analysis": "cox", "time": "time_to_rehospitalization",
             "event": "rehospitalization", "formula": "age + sex + trs"}
        """
        return self._ask("cox", cox_tables, time=time, event=event, formula=formula, **options)


TABLES: dict[str, Convert] = {
    "ols": ols_tables,
    "glm": glm_tables,
    "lmm": lmm_tables,
    "meta": meta_tables,
    "cox": cox_tables,
}
"""Each analysis of this module with its conversion."""
