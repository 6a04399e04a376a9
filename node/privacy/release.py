"""What leaves the node for a computed step: clear, noised, or masked for secure sums.

Order (after the privacy gate has passed the clear result): differential privacy noise
when the site's policy enables it (:mod:`node.privacy.dp`, charged to
:mod:`node.privacy.ledger`), then
masking when the task asks for secure aggregation (:mod:`node.secagg.sessions`). The clear result
is kept only for the site's own review of pending tasks; the audit log records what left
— for a masked answer its digest and shape, never the clear numbers.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from node.privacy import dp
from node.privacy.ledger import PrivacyLedger
from node.privacy.policy import Policy
from node.secagg.sessions import SecaggNode
from node.steps.base import Computed
from schemas.dictionary.model import Dictionary
from schemas.secagg.wire import DpRelease, NoisyResult, SecureAnswer
from schemas.steps.additive import flatten, unflatten
from schemas.steps.base import StepBase
from schemas.wire import TaskRequest


@dataclass(frozen=True)
class Release:
    """``rows`` and ``result`` leave (``TaskOutcome``); ``review`` stays at the node."""

    rows: int | None
    result: dict[str, Any]
    review: dict[str, Any] | None = None

    def leaving(self) -> dict[str, Any]:
        return {"rows": self.rows, "result": self.result}

    def stored(self) -> dict[str, Any]:
        return self.leaving() | ({"review": self.review} if self.review is not None else {})


@dataclass(frozen=True)
class Releaser:
    policy: Policy
    ledger: PrivacyLedger
    secagg: SecaggNode
    dictionary: Dictionary

    def release(self, task: TaskRequest, step: StepBase, computed: Computed) -> Release:
        result = computed.result
        clear = result.model_dump(mode="json")
        settings = self.policy.dp
        if task.secure is None and not settings.enabled:
            return Release(computed.disclosure.rows, clear)
        if task.secure is not None:
            self.secagg.check(task.secure)  # before any budget is spent
        vector, layout = flatten(result)
        noise: DpRelease | None = None
        if settings.enabled:
            sensitivity = dp.sensitivity(step, self.dictionary)
            secure = task.secure is not None
            sites = len(task.secure.participants) if task.secure is not None else 1
            sigma = dp.node_sigma(
                dp.gaussian_sigma(sensitivity, settings.epsilon_per_release, settings.delta),
                sites,
                secure,
            )
            spent = self.ledger.charge(
                task.task_id,
                epsilon=settings.epsilon_per_release,
                delta=settings.delta,
                sigma=sigma,
                sensitivity=sensitivity,
                budget=settings.epsilon_total,
            )
            vector = dp.add_noise(vector, sigma)
            noise = DpRelease(
                epsilon=settings.epsilon_per_release,
                delta=settings.delta,
                sigma=sigma,
                sensitivity=sensitivity,
                calibration="distributed" if secure else "local",
                participants=sites,
                epsilon_spent=spent,
                epsilon_total=settings.epsilon_total,
            )
        rows = None if settings.enabled else computed.disclosure.rows
        if task.secure is not None:
            masked, shares = self.secagg.mask(task.secure, vector, f"step {step.step}")
            template = unflatten(np.zeros(layout.size), layout, type(result))
            answer = SecureAnswer(
                masked=masked, template=template.model_dump(mode="json"), shares=shares, dp=noise
            )
            return Release(rows, answer.model_dump(mode="json"), clear)
        if noise is not None:
            noisy = unflatten(vector, layout, type(result)).model_dump(mode="json")
            return Release(rows, NoisyResult(noisy=noisy, dp=noise).model_dump(mode="json"), clear)
        return Release(rows, clear)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def audit_form(leaving: dict[str, Any], secure: dict[str, Any] | None) -> dict[str, Any]:
    """What the audit log records as having left: everything, except that a masked
    answer is recorded by digest (the masked vector and sealed shares) and shape."""
    result = leaving.get("result") or {}
    if secure is None or "masked" not in result:
        return leaving
    return {
        "rows": leaving.get("rows"),
        "secure": secure,
        "masked_sha256": _sha256(base64.b64decode(result["masked"])),
        "shares_sha256": _sha256(json.dumps(result.get("shares"), sort_keys=True).encode()),
        "template": result.get("template"),
        "dp": result.get("dp"),
    }
