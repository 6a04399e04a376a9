"""The federation over HTTP: signed tasks fanned out to nodes concurrently with httpx.

Each request has a timeout; connection errors (and only those) are retried with
exponential backoff a bounded number of times; the whole job has a deadline. A site that
refuses, fails or does not answer in time is named with its reason code in a
:class:`SitesFailed` error, which the job runner turns into the result envelope.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from coordinator.failures import SiteFailure, SitesFailed
from schemas.signing import sign_headers
from schemas.steps.additive import add_results
from schemas.steps.base import StepBase, StepResult
from schemas.wire import TaskOutcome, TaskRequest

log = logging.getLogger(__name__)
R = TypeVar("R", bound=StepResult)
TASKS = "/v1/tasks"


@dataclass(frozen=True)
class Endpoint:
    site: str
    url: str


@dataclass
class HttpFederation:
    """Sites of one job, reached over HTTP(S) with requests signed by ``key``."""

    endpoints: list[Endpoint]
    key: Ed25519PrivateKey
    job_id: str
    analysis: str
    client: httpx.AsyncClient
    request_timeout: float = 60.0
    deadline: float = field(default_factory=lambda: time.monotonic() + 600.0)
    retries: int = 3
    backoff: float = 0.2
    poll_interval: float = 0.5
    on_site: Callable[[str, str], None] | None = None  # (site, status) for progress
    _rows: dict[str, int] = field(default_factory=dict)

    @property
    def sites(self) -> list[str]:
        return [e.site for e in self.endpoints]

    @property
    def rows(self) -> dict[str, int]:
        return dict(self._rows)

    async def gather(self, step: StepBase, result_type: type[R]) -> dict[str, R]:
        outcomes = await asyncio.gather(*(self._ask(e, step) for e in self.endpoints),
                                        return_exceptions=True)
        failures: dict[str, SiteFailure] = {}
        results: dict[str, R] = {}
        for endpoint, outcome in zip(self.endpoints, outcomes, strict=True):
            if isinstance(outcome, SiteFailure):
                failures[endpoint.site] = outcome
            elif isinstance(outcome, BaseException):
                failures[endpoint.site] = SiteFailure("internal", repr(outcome))
            else:
                self._rows[endpoint.site] = outcome.rows or 0
                results[endpoint.site] = result_type.model_validate(outcome.result)
        if failures:
            raise SitesFailed(failures)
        return results

    async def sum(self, step: StepBase, result_type: type[R]) -> R:
        parts = await self.gather(step, result_type)
        return add_results([parts[s] for s in self.sites])

    def _remaining(self) -> float:
        return self.deadline - time.monotonic()

    def _report(self, site: str, status: str) -> None:
        if self.on_site is not None:
            self.on_site(site, status)

    async def _send(self, method: str, url: str, path: str, body: bytes) -> httpx.Response:
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            headers = sign_headers(self.key, method, path, body)
            if body:
                headers["Content-Type"] = "application/json"
            timeout = max(min(self.request_timeout, self._remaining()), 0.01)
            try:
                return await self.client.request(method, url + path, content=body,
                                                 headers=headers, timeout=timeout)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                last = exc
                if attempt < self.retries and self._remaining() > self.backoff * 2**attempt:
                    await asyncio.sleep(self.backoff * 2**attempt)
        raise SiteFailure("site_unreachable", f"cannot connect to {url}: {last}")

    async def _ask(self, endpoint: Endpoint, step: StepBase) -> TaskOutcome:
        task = TaskRequest(task_id=uuid.uuid4().hex, job_id=self.job_id, analysis=self.analysis,
                           step=step.model_dump(mode="json"))
        body = task.model_dump_json().encode("utf-8")
        self._report(endpoint.site, f"running {step.step}")
        try:
            async with asyncio.timeout(max(self._remaining(), 0.01)):
                response = await self._send("POST", endpoint.url, TASKS, body)
                outcome = _outcome(endpoint.site, response)
                while outcome.status == "pending":
                    self._report(endpoint.site, "waiting for approval")
                    await asyncio.sleep(self.poll_interval)
                    path = f"{TASKS}/{task.task_id}"
                    outcome = _outcome(endpoint.site,
                                       await self._send("GET", endpoint.url, path, b""))
        except TimeoutError:
            self._report(endpoint.site, "timed out")
            raise SiteFailure("site_timeout", "no answer before the job's deadline") from None
        except httpx.HTTPError as exc:
            self._report(endpoint.site, "failed")
            raise SiteFailure("site_unreachable", f"{type(exc).__name__}: {exc}") from None
        if outcome.status != "answered":
            reason = outcome.reason or {}
            self._report(endpoint.site, outcome.status)
            raise SiteFailure(reason.get("code", outcome.status), reason.get("detail", ""))
        self._report(endpoint.site, f"answered {step.step}")
        return outcome


def _outcome(site: str, response: httpx.Response) -> TaskOutcome:
    if response.status_code in (200, 202):
        return TaskOutcome.model_validate_json(response.content)
    try:
        problem: dict[str, Any] = response.json()
    except ValueError:
        problem = {}
    code = str(problem.get("code", "internal"))
    detail = str(problem.get("detail", f"HTTP {response.status_code}"))
    raise SiteFailure(code, detail)
