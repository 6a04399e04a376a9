"""The demo's training step: a TRS-risk model across the sites, and its scores kept there.

Each site approves the training app by its hash; the coordinator trains a logistic model
of treatment resistance (FedAvg, early stopping on the federated validation loss) with
every model update sent as a secure sum; the table compares the federated model on all
sites' test rows (pooled, from secure sums), on each site's own test rows, and each
site's local-only model (trained on its rows alone). No pooled model can be fitted here
without moving rows, so "pooled" means the federated model scored on the pooled test
rows. Then ``predict`` keeps each person's predicted risk at their site.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from rich.console import Console
from rich.markup import escape

from coordinator.service import Coordinator
from fedpsy.show import describe, show_result
from fedpsy.show_models import metrics_table
from node.privacy.approvals import approve_app
from node.site import NodeSite
from schemas.envelope import Envelope
from schemas.training.bundle import app_hash

SPECTRUM: dict[str, Any] = {
    "all": [
        {"var": "primary_diagnosis", "op": "in", "value": ["F20", "F25"]},
        *(
            {"var": code, "op": "not_null"}
            for code in ("trs", "panss_total", "panss_positive", "panss_negative")
        ),
    ]
}
"""The tour's analysis cohort: the schizophrenia spectrum with TRS and PANSS recorded.
Every request uses it, so every answer is about the same persons: a site refuses
answers about nearly (but not exactly) the same persons as an earlier one."""

TRAIN: dict[str, Any] = {
    "analysis": "train",
    "formula": "trs ~ age + sex + panss_total",
    "model": "logistic",
    "rounds": 30,
    "local_epochs": 2,
    "learning_rate": 0.5,
    "patience": 4,
    "seed": 1,
    "bins": 8,
    "validation_fraction": 0.3,
    "cohort": SPECTRUM,
    "on_refusal": "drop_site",
}
RISK = "trs_risk"


def show_training(out: Console, envelope: Envelope) -> str | None:
    """Print a train envelope; returns the model id when it trained."""
    if envelope.status != "ok":
        show_result(out, envelope, TRAIN)
        return None
    result = envelope.result
    out.print(metrics_table(result, "TRS risk: federated vs local-only models"))
    if result["metrics"]["auc"] is None:
        out.print(
            "[dim]pooled AUC withheld: no split of the scores into two bins keeps every "
            "site's count of each outcome per bin at 0 or its minimum cell size (accuracy "
            "and Brier are sums and pass)[/]"
        )
    coefficients = ", ".join(f"{c['term']} {c['estimate']:+.3g}" for c in result["coefficients"])
    out.print(f"coefficients (log-odds): {escape(coefficients)}")
    stopped = "stopped early" if result["stopped_early"] else "ran all rounds"
    out.print(
        f"{len(result['history'])} rounds ({stopped}); best round "
        f"{result['best_round']}; model {result['model_id']} in the coordinator's "
        "registry"
    )
    if len(envelope.sites) >= 2:
        out.print(
            "[dim]every model update left its site masked (secure aggregation): the "
            "coordinator only saw sums; per-site AUCs were asked per site[/]"
        )
    else:
        out.print("[dim]one site took part: a sum over one site is its own update[/]")
    for site, code in (envelope.dropped_sites or {}).items():
        out.print(f"[dim]left out: {site} ({code}: {escape(describe(code))})[/]")
    return str(result["model_id"])


def training_step(out: Console, coord: Coordinator, nodes: dict[str, NodeSite]) -> None:
    """Approve the app at every site, train, then keep the scores at the sites."""
    out.rule("5. a predictive model of treatment resistance, trained across the sites")
    digest = app_hash()
    for node in nodes.values():
        approve_app(node.dir.root, digest, "fedpsy training app (demo)")
    out.print(f"each site reviewed the training app and approved its hash {digest[:16]}…")
    out.print(f"[dim]{escape(json.dumps(TRAIN))}[/]")
    model_id = show_training(out, asyncio.run(coord.run(TRAIN)))
    if model_id is None:
        return
    out.print(f"\n[bold]Each site keeps every person's predicted risk as `{RISK}`[/]")
    scored = asyncio.run(
        coord.run(
            {"analysis": "predict", "model_id": model_id, "new_variable": RISK, "cohort": SPECTRUM}
        )
    )
    if scored.status != "ok":
        show_result(out, scored, TRAIN)
        return
    out.print(f"{scored.result['n']:,} persons scored; the scores never left their sites")
    request = {
        "analysis": "ttest",
        "variable": RISK,
        "group": "trs",
        "cohort": SPECTRUM,
        "on_refusal": "drop_site",
    }
    out.print(f"[dim]{escape(json.dumps(request))}[/]")
    show_result(out, asyncio.run(coord.run(request)), request)


__all__ = ["TRAIN", "show_training", "training_step"]
