"""A trained model's result as tables a researcher reads: the model, its test metrics,
the rows of each split per site, the rounds and the coefficients.

Fields are named in words (``auc_error_bound`` is "AUC ± bound"); only the model fields
that apply to its kind are shown (hidden units for an MLP). The notes say why numbers do
not add up or are missing: ``sites.<site>.n`` of a training job is the rows each site
fitted the model on (its training split), so the sites' rows plus the held-out test and
validation rows make ``n``; a pooled AUC is withheld when no split of the scores into two
bins passes every site's cell rule; per-site metrics leave each site in the clear.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from coordinator.web.table import Cell, Table
from schemas.analyses.train import TrainRequest

NO_AUC = (
    "withheld: no split of the scores into two bins keeps every site's count of each "
    "outcome per bin at 0 or its minimum cell size (accuracy and Brier are sums and pass)"
)


def _setting(request: Mapping[str, Any], name: str) -> Any:
    return request.get(name, TrainRequest.model_fields[name].default)


def _model_table(result: Mapping[str, Any], request: Mapping[str, Any]) -> Table:
    kind = result.get("model_kind")
    spec = (result.get("model") or {}).get("spec") or {}
    model = (
        f"MLP, one hidden layer of {spec.get('hidden')} units"
        if kind == "mlp"
        else "logistic regression"
    )
    strategy = str(result.get("strategy"))
    if strategy == "fedprox":
        strategy += f" (proximal μ = {_setting(request, 'proximal_mu')})"
    history = result.get("history") or []
    stopped = "stopped early" if result.get("stopped_early") else "ran every round asked"
    rows: list[list[Cell]] = [
        ["model", model],
        ["formula", result.get("formula")],
        ["strategy", strategy],
        ["rounds", f"{len(history)} ({stopped}); best round {result.get('best_round')}"],
        ["rows (complete cases)", result.get("n")],
        ["rows dropped (missing values)", result.get("missing")],
        ["model id", result.get("model_id")],
        ["training app hash", result.get("app_hash")],
    ]
    return Table("model", "Model", ["", "value"], rows)


def _auc_cell(metrics: Mapping[str, Any]) -> Cell:
    auc = metrics.get("auc")
    if auc is None:
        return "no test rows" if not metrics.get("n") else "withheld"
    return f"{auc:.3f} ± {metrics.get('auc_error_bound', 0.0):.3f}"


def _metrics_table(result: Mapping[str, Any], envelope: Mapping[str, Any]) -> Table:
    metrics = result.get("metrics") or {}
    local = result.get("local_only") or {}
    columns = ["", "test rows", "AUC", "accuracy", "Brier score", "log loss", "local-only AUC"]
    rows: list[list[Cell]] = [
        [
            "all sites (pooled)",
            metrics.get("n"),
            _auc_cell(metrics),
            metrics.get("accuracy"),
            metrics.get("brier"),
            metrics.get("log_loss"),
            None,
        ]
    ]
    for site, own in (metrics.get("per_site") or {}).items():
        alone = local.get(site) or {}
        own_metrics = [own.get(k) for k in ("n", "auc", "accuracy", "brier")]
        rows.append([site, *own_metrics, None, alone.get("auc")])
    lower, upper = metrics.get("auc_lower"), metrics.get("auc_upper")
    notes = (
        [f"Pooled AUC {NO_AUC}."]
        if metrics.get("auc") is None and metrics.get("n")
        else [
            f"The pooled AUC is computed from {metrics.get('auc_bins')} score bins: the exact "
            f"AUC lies between {lower:.3f} and {upper:.3f}; shown is the midpoint ± half "
            "that width."
        ]
        if lower is not None and upper is not None
        else []
    )
    notes.append(_per_site_note(result, envelope))
    return Table("metrics", "Test metrics", columns, rows, note=" ".join(n for n in notes if n))


def _per_site_note(result: Mapping[str, Any], envelope: Mapping[str, Any]) -> str:
    """What left each site in the clear, and what only as sums."""
    per_site = bool((result.get("metrics") or {}).get("per_site") or result.get("local_only"))
    secure = bool((envelope.get("privacy") or {}).get("secure_aggregation"))
    if not per_site:
        return "No per-site metric was asked (per_site false)." + (
            " Every answer the coordinator received was a secure sum." if secure else ""
        )
    return (
        "Per-site rows are each site's own test metrics and its local-only baseline (the "
        "request's per_site, on by default): these numbers leave each site in the clear, "
        "which is why the privacy line does not say secure aggregation for this job. Ask "
        'with "per_site": false to receive only sums.'
    )


def _split_note(n: int, training: int, test: int, request: Mapping[str, Any]) -> str:
    """Why the rows used per site (the training rows) do not add up to ``n``."""
    test_fraction = float(_setting(request, "test_fraction"))
    validation_fraction = float(_setting(request, "validation_fraction"))
    held_out = n - training - (test if test_fraction > 0 else 0)
    if training <= 0 or held_out < 0:  # the sites did not release their exact rows
        return "The rows used per site are each site's training rows; none were released."
    scored = (
        f", {test} test rows held out for scoring (test_fraction {test_fraction:g})"
        if test_fraction > 0
        else " (scored on those same rows: test_fraction 0)"
    )
    return (
        "The rows used per site are the rows each site fitted the model on (its training "
        f"split), so they do not add up to n = {n}: {training} training rows{scored} and "
        f"{held_out} validation rows held out for early stopping (validation_fraction "
        f"{validation_fraction:g})."
    )


def _split_table(
    result: Mapping[str, Any], envelope: Mapping[str, Any], request: Mapping[str, Any]
) -> Table:
    sites = envelope.get("sites") or {}
    metrics = result.get("metrics") or {}
    per_site = metrics.get("per_site") or {}
    rows: list[list[Cell]] = [
        [s, (v or {}).get("n"), (per_site.get(s) or {}).get("n")] for s, v in sites.items()
    ]
    training = sum(int((v or {}).get("n") or 0) for v in sites.values())
    note = _split_note(int(result.get("n") or 0), training, int(metrics.get("n") or 0), request)
    columns = ["site", "training rows (rows used)", "test rows"]
    return Table("sites", "Rows per site and split", columns, rows, note=note)


def training_tables(envelope: Mapping[str, Any], request: Mapping[str, Any]) -> list[Table]:
    """The tables of an ``ok`` ``train`` envelope."""
    result = envelope["result"]
    history = [
        [h.get("round"), h.get("train_loss"), h.get("val_loss"), h.get("seconds")]
        for h in result.get("history") or []
    ]
    tables = [
        _model_table(result, request),
        _metrics_table(result, envelope),
        _split_table(result, envelope, request),
        Table(
            "history",
            "Rounds",
            ["round", "training loss", "validation loss", "seconds"],
            history,
        ),
    ]
    coefficients = [[c.get("term"), c.get("estimate")] for c in result.get("coefficients") or []]
    if coefficients:
        tables.append(
            Table(
                "coefficients",
                "Coefficients",
                ["term", "estimate (log odds)"],
                coefficients,
                note="Federated training estimates no standard errors: there are no "
                "confidence intervals or p-values (a glm request gives them).",
            )
        )
    return tables
