"""The gated local path of a site's training work: what a ClientApp at the site calls.

It never hands out rows. For one train step it applies, in the order the node's task
service does for statistics: the approved training app (``app_not_approved``), the
policy's allowed analyses, the differencing guard on the cohort, the step's computation
(:func:`node.steps.registry.run_step`), the disclosure rules of :mod:`node.gate` (minimum
rows for a model, parameters per row, cells), and writes every decision and exactly what
left to the audit log. Approving the app is the site's approval of the training run, so
``approval = "manual"`` for ``train`` is satisfied by the app approval.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from node.audit import AuditLog
from node.differencing import DifferencingGuard
from node.frame_store import StoreFrameSource
from node.gate import check_disclosure
from node.policy import Policy, load_policy
from node.site import NodeSite
from node.steps.registry import run_step
from node.training.approvals import check_app
from schemas.errors import CATALOG, EXIT_REFUSED, FedpsyError, Refused
from schemas.steps.train import TrainResult, TrainStep

logger = logging.getLogger(__name__)
ANALYSIS = "train"


def _task_id(step: TrainStep) -> str:
    return f"{step.run_id[:40]}:{step.round}:{step.phase}"


def _digest(payload: object) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


class LocalGate:
    """Train steps of one node directory, gated and audited."""

    def __init__(self, node: NodeSite, installed_app: str | None = None) -> None:
        self.node = node
        self.policy: Policy = load_policy(node.dir.policy)
        self.frames = StoreFrameSource(node.engine, node.config.site, node.dictionary)
        self.guard = DifferencingGuard(node.engine, self.policy.min_cohort)
        self.audit = AuditLog(node.engine)
        self.installed_app = installed_app

    @property
    def site(self) -> str:
        return self.node.config.site

    @property
    def root(self) -> Path:
        return self.node.dir.root

    def run(self, step: TrainStep) -> TrainResult:
        """Compute ``step`` if every rule allows it; raise the refusal otherwise."""
        task = _task_id(step)
        request = step.model_dump(mode="json", exclude={"weights"})
        self.audit.append("received", task, {"source": "training-app", "analysis": ANALYSIS,
                                             "weights_digest": _digest(step.weights),
                                             **request})  # fmt: skip
        try:
            if self.installed_app is not None and self.installed_app != step.app_hash:
                raise Refused(
                    "the run's app hash differs from the installed bundle", code="app_not_approved"
                )
            check_app(self.root, step.app_hash)
            if not self.policy.allows(ANALYSIS):
                raise Refused(
                    "analysis 'train' is not allowed at this site", code="analysis_not_allowed"
                )
            rows = self.frames.cohort_rows(step.visit, step.cohort).to_numpy()
            self.guard.check(rows, self.node.dictionary.hash)
            computed = run_step(step, self.frames)
            check_disclosure(self.policy, ANALYSIS, step.step, computed.disclosure)
            self.guard.admit(rows, self.node.dictionary.hash)
        except FedpsyError as exc:
            refused = exc.code in CATALOG and CATALOG[exc.code].exit_code == EXIT_REFUSED
            kind = "refused" if refused else "error"
            self.audit.append(kind, task, {"code": exc.code,
                                           "detail": exc.detail or exc.message})  # fmt: skip
            logger.info("train step %s %s: %s", task, kind, exc.code)
            raise
        result = computed.result
        assert isinstance(result, TrainResult)
        leaving = {"rows": computed.disclosure.rows, "result": result.model_dump(mode="json")}
        self.audit.append("released", task, {"digest": _digest(leaving), "left": leaving})
        return result


__all__ = ["LocalGate"]
