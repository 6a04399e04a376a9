"""How a simulated ClientApp reaches its site: a :class:`SiteLink` runs one train step.

In simulation the ClientApps run in Flower's simulation workers (separate processes), so
a link must be picklable and synchronous. :class:`HttpSiteLink` posts the step as a
signed task to the node's API, exactly as the HTTP federation does for statistics, so the
node applies its whole gate (signature, policy, approval, differencing, disclosure rules,
audit) to every round. Another federation can provide its own links with a
``training_links()`` method (the in-process federation of the tests does).
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from schemas.errors import CATALOG, FedpsyError
from schemas.signing import sign_headers
from schemas.steps.train import TrainResult, TrainStep
from schemas.wire import TaskOutcome, TaskRequest

logger = logging.getLogger(__name__)
TASKS = "/v1/tasks"


@runtime_checkable
class SiteLink(Protocol):
    """One site, reachable for train steps."""

    @property
    def site(self) -> str: ...

    def run(self, step: TrainStep) -> TrainResult: ...


@runtime_checkable
class ProvidesLinks(Protocol):
    def training_links(self) -> list[SiteLink]: ...


@dataclass(frozen=True)
class HttpSiteLink:
    """A node's task API, with requests signed by the coordinator's key."""

    site: str
    url: str
    key_pem: bytes
    job_id: str
    analysis: str = "train"
    timeout: float = 120.0
    poll_interval: float = 0.5
    verify: bool | str = True

    def run(self, step: TrainStep) -> TrainResult:
        key = load_pem_private_key(self.key_pem, password=None)
        assert isinstance(key, Ed25519PrivateKey)
        task = TaskRequest(task_id=uuid.uuid4().hex, job_id=self.job_id,
                           analysis=self.analysis, step=step.model_dump(mode="json"))  # fmt: skip
        body = task.model_dump_json().encode("utf-8")
        deadline = time.monotonic() + self.timeout
        with httpx.Client(base_url=self.url.rstrip("/"), timeout=self.timeout,
                          verify=self.verify) as client:  # fmt: skip
            try:
                outcome = self._send(client, key, "POST", TASKS, body)
                while outcome.status == "pending" and time.monotonic() < deadline:
                    time.sleep(self.poll_interval)
                    outcome = self._send(client, key, "GET", f"{TASKS}/{task.task_id}", b"")
            except httpx.HTTPError as exc:
                raise FedpsyError(f"site {self.site}: {type(exc).__name__}",
                                  code="site_unreachable") from None  # fmt: skip
        if outcome.status == "pending":
            raise FedpsyError(f"site {self.site} did not approve in time", code="site_timeout")
        if outcome.status != "answered":
            reason = outcome.reason or {}
            code = reason.get("code", "approval_rejected")
            raise FedpsyError(reason.get("detail", ""),
                              code=code if code in CATALOG else "internal")  # fmt: skip
        return TrainResult.model_validate(outcome.result or {})

    @staticmethod
    def _send(client: httpx.Client, key: Ed25519PrivateKey, method: str, path: str,
              body: bytes) -> TaskOutcome:  # fmt: skip
        headers = sign_headers(key, method, path, body)
        if body:
            headers["Content-Type"] = "application/json"
        response = client.request(method, path, content=body, headers=headers)
        if response.status_code not in (200, 202):  # refusals come as problem bodies
            problem: dict[str, Any] = {}
            with contextlib.suppress(ValueError):
                problem = dict(response.json())
            code = str(problem.get("code", "internal"))
            raise FedpsyError(str(problem.get("detail", f"HTTP {response.status_code}")),
                              code=code if code in CATALOG else "internal")  # fmt: skip
        return TaskOutcome.model_validate_json(response.content)


def key_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())


def links_for(federation: object) -> list[SiteLink]:
    """The links of a federation's sites, in its site order."""
    if isinstance(federation, ProvidesLinks):
        return federation.training_links()
    endpoints = getattr(federation, "endpoints", None)
    key = getattr(federation, "key", None)
    job_id = getattr(federation, "job_id", None)
    if endpoints is not None and isinstance(key, Ed25519PrivateKey) and isinstance(job_id, str):
        pem = key_pem(key)
        timeout = float(getattr(federation, "request_timeout", 120.0))
        return [HttpSiteLink(e.site, e.url, pem, job_id, timeout=timeout) for e in endpoints]
    raise FedpsyError("this federation cannot run training (no links to its sites)",
                      code="request_invalid")  # fmt: skip


__all__ = ["HttpSiteLink", "ProvidesLinks", "SiteLink", "key_pem", "links_for"]
