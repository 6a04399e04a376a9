"""Predictive models: federated training and scoring at the nodes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import pandas as pd

from coordinator.http.client.asking import Asking
from coordinator.http.client.result import Convert, Result, Tables
from coordinator.http.client.tables import coefficient_frame, named

METRIC_COLUMNS = ["n", "auc", "auc_lower", "auc_upper", "accuracy", "brier", "log_loss"]


def train_tables(result: Mapping[str, Any], _: Mapping[str, Any]) -> Tables:
    metrics = result["metrics"]
    rows = {"pooled": {k: metrics.get(k) for k in METRIC_COLUMNS}, **metrics["per_site"]}
    table = pd.DataFrame.from_dict(rows, orient="index").reindex(columns=METRIC_COLUMNS)
    table = table.astype({c: float for c in METRIC_COLUMNS[1:]}).astype({"n": "Int64"})
    history = pd.DataFrame(result["history"]).set_index("round")
    local = pd.DataFrame.from_dict(result["local_only"], orient="index")
    ratio = "odds_ratio" if result["model_kind"] == "logistic" else None
    frames = {
        "history": history,
        "coefficients": coefficient_frame(result["coefficients"], ratio=ratio),
        "local_only": named(local, "site"),
    }
    return named(table, "site"), frames


def predict_tables(result: Mapping[str, Any], _: Mapping[str, Any]) -> Tables:
    keys = ["model_id", "new_variable", "formula", "n", "run_id"]
    return pd.DataFrame([{k: result[k] for k in keys}]), {}


class Training(Asking):
    """Models trained across sites with Flower, and their scores kept at the nodes."""

    def train(
        self,
        formula: str,
        model: Literal["logistic", "mlp"] = "logistic",
        strategy: Literal["fedavg", "fedprox"] = "fedavg",
        rounds: int | None = None,
        **options: Any,
    ) -> Result:
        """Train a model of a binary outcome: ``table`` indexed by ``site`` (``pooled``
        first, then each site's own test metrics) with ``n``, ``auc`` (pooled: with its
        bounds ``auc_lower``, ``auc_upper``), ``accuracy``, ``brier``, ``log_loss``;
        ``.history`` a row per round; ``.coefficients`` (logistic: estimates and odds
        ratios, without standard errors); ``.local_only`` each site's own model;
        ``.model_id`` for :meth:`predict`. Each node must have approved the training app.

        Sends::

            {"analysis": "train", "model": "logistic", "formula": "trs ~ age + sex",
             "strategy": "fedavg", "rounds": 10, "test_fraction": 0.25, "seed": 1}
        """
        return self._ask(
            "train",
            train_tables,
            formula=formula,
            model=model,
            strategy=strategy,
            rounds=rounds,
            **options,
        )

    def predict(self, model_id: str, new_variable: str, **options: Any) -> Result:
        """Score every node's rows with a trained model; the scores stay at the nodes as
        ``new_variable``. ``table`` has one row: ``model_id``, ``new_variable``,
        ``formula``, ``n`` (rows scored) and ``run_id``.

        Sends::

            {"analysis": "predict", "model_id": "4f1c…", "new_variable": "trs_risk"}
        """
        return self._ask(
            "predict", predict_tables, model_id=model_id, new_variable=new_variable, **options
        )


TABLES: dict[str, Convert] = {
    "train": train_tables,
    "predict": predict_tables,
}
"""Each analysis of this module with its conversion."""
