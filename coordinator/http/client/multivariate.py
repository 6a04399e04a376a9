"""Harmonization and structure: ComBat, PCA, k-means and the Gaussian mixture."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from coordinator.http.client.asking import Asking
from coordinator.http.client.result import Convert, Result, Tables
from coordinator.http.client.tables import named


def combat_tables(result: Mapping[str, Any], _: Mapping[str, Any]) -> Tables:
    rows = [
        {"batch": label, "variable": v, "n": b["n"], "gamma": b["gamma"][v], "delta": b["delta"][v]}
        for label, b in result["batches"].items()
        for v in result["variables"]
    ]
    table = pd.DataFrame(rows).set_index(["batch", "variable"])
    variables = pd.DataFrame(
        {"grand_mean": result["grand_mean"], "var_pooled": result["var_pooled"]}
    ).reindex(result["variables"])
    coefficients = pd.DataFrame(result["coefficients"], dtype=float).T
    return table, {
        "variables": named(variables, "variable"),
        "coefficients": named(coefficients, "term", "variable"),
    }


def _components(count: int) -> pd.Index:
    return pd.Index([f"PC{j + 1}" for j in range(count)], name="component")


def pca_tables(result: Mapping[str, Any], _: Mapping[str, Any]) -> Tables:
    components = np.asarray(result["components"], dtype=float)
    names = _components(len(components))
    loadings = pd.DataFrame(components.T, index=result["variables"], columns=names)
    ratio = np.asarray(result["explained_variance_ratio"], dtype=float)
    explained = pd.DataFrame(
        {
            "explained_variance": result["explained_variance"],
            "explained_variance_ratio": ratio,
            "cumulative_ratio": np.cumsum(ratio),
        },
        index=names,
    )
    return named(loadings, "variable", "component"), {"explained": explained}


def _clusters(count: int, name: str) -> pd.Index:
    return pd.Index([str(j + 1) for j in range(count)], name=name)


def kmeans_tables(result: Mapping[str, Any], _: Mapping[str, Any]) -> Tables:
    variables = result["variables"]
    centers = [c if c is not None else [None] * len(variables) for c in result["centers"]]
    table = pd.DataFrame(centers, columns=variables, dtype=float)
    table.insert(0, "size", pd.array(result["sizes"], dtype="Int64"))
    table.index = _clusters(len(table), "cluster")
    return table, {}


def gmm_tables(result: Mapping[str, Any], _: Mapping[str, Any]) -> Tables:
    variables = result["variables"]
    index = _clusters(len(result["weights"]), "component")
    table = pd.DataFrame(result["means"], columns=variables, index=index, dtype=float)
    table.insert(0, "weight", result["weights"])
    covariances = pd.concat(
        {
            label: pd.DataFrame(cov, index=variables, columns=variables, dtype=float)
            for label, cov in zip(index, result["covariances"], strict=True)
        },
        names=["component", "variable"],
    )
    bic = pd.DataFrame(
        {"bic": pd.Series(result["bic_by_k"], dtype=float)}, index=list(result["bic_by_k"])
    )
    return table, {"covariances": covariances, "bic_by_k": named(bic, "k")}


class Multivariate(Asking):
    """Harmonization (ComBat) and structure (PCA, k-means, Gaussian mixture)."""

    def combat(
        self,
        variables: Sequence[str],
        batch: str = "site",
        covariates: Sequence[str] | None = None,
        **options: Any,
    ) -> Result:
        """Distributed ComBat: ``table`` indexed by (``batch``, ``variable``) with the
        batch's ``n`` and its location ``gamma`` and scale ``delta``; ``.variables`` the
        ``grand_mean`` and ``var_pooled`` per variable, ``.coefficients`` the covariates'
        (design column × variable). Harmonized values stay at the nodes as
        ``.new_variables``.

        Sends::

            {"analysis": "combat", "variables": ["dacc_glu", "dacc_glx"], "batch": "site",
             "covariates": ["age", "sex"], "eb": true}
        """
        return self._ask(
            "combat",
            combat_tables,
            variables=variables,
            batch=batch,
            covariates=covariates,
            **options,
        )

    def pca(self, variables: Sequence[str], scale: bool = True, **options: Any) -> Result:
        """Principal components: ``table`` the loadings (variables × ``PC1`` …),
        ``.explained`` per component ``explained_variance``, ``explained_variance_ratio``
        and ``cumulative_ratio``. Scores stay at the nodes.

        Sends::

            {"analysis": "pca", "variables": ["panss_positive", "panss_negative", "age"],
             "scale": true}
        """
        return self._ask("pca", pca_tables, variables=variables, scale=scale, **options)

    def kmeans(self, variables: Sequence[str], k: int, **options: Any) -> Result:
        """Federated k-means: ``table`` indexed by ``cluster`` (``"1"`` … ``"k"``) with its
        ``size`` and center (a column per variable; empty for a suppressed cluster);
        ``.inertia``, ``.iterations``, ``.converged``. Labels stay at the nodes.

        Sends::

            {"analysis": "kmeans", "variables": ["panss_positive", "panss_negative"], "k": 3}
        """
        return self._ask("kmeans", kmeans_tables, variables=variables, k=k, **options)

    def gmm(self, variables: Sequence[str], k: int | Sequence[int], **options: Any) -> Result:
        """Gaussian mixture (federated EM; a list of ``k`` is chosen by BIC): ``table``
        indexed by ``component`` with its ``weight`` and mean per variable;
        ``.covariances`` (component, variable) × variable; ``.bic_by_k``; ``.bic``,
        ``.aic``, ``.log_likelihood``.

        Sends::

            {"analysis": "gmm", "variables": ["panss_positive", "panss_negative"], "k": [2, 3]}
        """
        return self._ask("gmm", gmm_tables, variables=variables, k=k, **options)


TABLES: dict[str, Convert] = {
    "combat": combat_tables,
    "pca": pca_tables,
    "kmeans": kmeans_tables,
    "gmm": gmm_tables,
}
"""Each analysis of this module with its conversion."""
