"""The federation over HTTP: signed tasks fanned out to nodes concurrently with httpx.

Each request has a timeout; connection errors (and only those) are retried with
exponential backoff a bounded number of times; the whole job has a deadline. A site that
refuses, fails or does not answer in time is named with its reason code in a
:class:`SitesFailed` error, which the job runner turns into the result envelope.

Additive steps are summed with secure aggregation by default (:mod:`coordinator.federation.secagg`;
one session per federation, opened at the first sum): the coordinator receives only
masked vectors and learns only the sum. ``secure=False`` asks in the clear (a site whose
policy requires secure aggregation refuses). With ``tolerate_dropouts`` a site that drops
after the session started is recovered from (the round's sum is over the others) and left
out of later steps; otherwise its failure fails the job as in the clear. ``on_receive``
sees every payload a node sends back, for audits and tests; ``trips`` counts the requests
sent to nodes by kind (the job's round trips, for benchmarks).

A pull node (``Endpoint.mode == "pull"``) is reached through the coordinator's
:class:`~coordinator.federation.mailbox.Mailbox` instead: the same signed request is queued for the
node to collect, and its answer awaited under the same timeout and deadline.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel

from coordinator.federation.base import PrivacyTally
from coordinator.federation.failures import SiteFailure, SitesFailed, collect
from coordinator.federation.receipts import receipt_of
from coordinator.federation.secagg import SecureSession, establish, fetch_bundles
from coordinator.store.jobs import failure_state
from schemas.errors import ErrorCode
from schemas.receipts import GENESIS, Receipt
from schemas.secagg.wire import NoisyResult, SecureTask
from schemas.signing import sign_headers
from schemas.steps.additive import add_results
from schemas.steps.base import StepBase, StepResult
from schemas.steps.registry import step_spec
from schemas.wire import TaskOutcome, TaskRequest

log = logging.getLogger(__name__)
R = TypeVar("R", bound=StepResult)
T = TypeVar("T")
TASKS = "/v1/tasks"
SECAGG = "/v1/secagg/"
Receiver = Callable[[str, str, dict[str, Any]], None]  # (site, kind, payload)


class Carrier(Protocol):
    """How a pull node's signed requests reach it: the coordinator's
    :class:`~coordinator.federation.mailbox.Mailbox`, or a Flower grid in deployment
    (:class:`~coordinator.training.grid_mailbox.GridMailbox`)."""

    async def exchange(
        self,
        site: str,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes,
        timeout: float,
    ) -> tuple[int, bytes]: ...


@dataclass(frozen=True)
class Endpoint:
    site: str
    url: str
    fingerprint: str | None = None  # identity pinned at add-node, checked in secure sessions
    mode: str = "push"  # pull: reached through the mailbox (``url`` unused)


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
    secure: bool = True
    threshold: int | None = None
    tolerate_dropouts: bool = False
    on_receive: Receiver | None = None
    tally: PrivacyTally = field(default_factory=PrivacyTally)
    dropped: dict[str, SiteFailure] = field(default_factory=dict)
    mailbox: Carrier | None = None  # needed when an endpoint is a pull node
    project: str | None = None  # who asks, told to every site in the signed task
    researcher: str | None = None
    trips: Counter[str] = field(default_factory=Counter)
    """Requests sent to nodes (each retry too), by :func:`trip_kind`: the job's round trips."""
    _rows: dict[str, int] = field(default_factory=dict)
    _session: SecureSession | None = None
    receipts: dict[str, Receipt] = field(default_factory=dict)  # each site's latest

    @property
    def sites(self) -> list[str]:
        return [e.site for e in self.endpoints]

    @property
    def rows(self) -> dict[str, int]:
        return dict(self._rows)

    def privacy(self) -> dict[str, Any]:
        return self.tally.envelope()

    async def gather(self, step: StepBase, result_type: type[R]) -> dict[str, R]:
        answers, failures = await collect(
            {e.site: self.task(e.site, step, None) for e in self.endpoints}
        )
        results: dict[str, R] = {}
        for site, outcome in answers.items():
            self._rows[site] = outcome.rows or 0
            results[site] = result_type.model_validate(self._unwrap(site, outcome.result))
        if failures:
            raise SitesFailed(failures, answered=results)
        self.tally.clear += len(results)
        return results

    async def sum(self, step: StepBase, result_type: type[R]) -> R:
        if not (self.secure and step_spec(step.step).additive and len(self.endpoints) >= 2):
            parts = await self.gather(step, result_type)
            return add_results([parts[s] for s in self.sites])
        session = self._session or await self._open()
        self._session = session
        try:
            outcome = await session.run(step, result_type, self.tolerate_dropouts)
        except BaseException:
            self._session = None  # an abandoned round ends the session
            raise
        self.tally.secure += 1
        for site, release in outcome.dp.items():
            self.tally.add_dp(site, release)
        if outcome.dropped:
            log.warning("sites dropped during a secure sum: %s", sorted(outcome.dropped))
            self.dropped.update(outcome.dropped)
            self.endpoints = [e for e in self.endpoints if e.site not in outcome.dropped]
        self._rows = dict(outcome.rows)
        return outcome.total

    async def _open(self) -> SecureSession:
        pinned = {e.site: e.fingerprint for e in self.endpoints if e.fingerprint}
        bundles = await fetch_bundles(self, self.sites, pinned)
        return await establish(self, bundles, self.threshold)

    def _unwrap(self, site: str, result: dict[str, Any] | None) -> dict[str, Any]:
        data = result or {}
        if set(data) == {"noisy", "dp"}:
            noisy = NoisyResult.model_validate(data)
            self.tally.add_dp(site, noisy.dp)
            return noisy.noisy
        return data

    def _received(self, site: str, kind: str, payload: dict[str, Any]) -> None:
        if self.on_receive is not None:
            self.on_receive(site, kind, payload)

    # -- transport (also used by the secure session) ---------------------------------------
    def _endpoint(self, site: str) -> Endpoint:
        return next(e for e in self.endpoints if e.site == site)

    async def fetch(self, site: str, path: str) -> dict[str, Any]:
        endpoint = self._endpoint(site)
        url = endpoint.url

        async def call() -> dict[str, Any]:
            if endpoint.mode == "pull":
                return _json(await self._send("GET", endpoint, path, b""))
            self.trips[trip_kind("GET", path)] += 1
            timeout = max(min(self.request_timeout, self._remaining()), 0.01)
            return _json(await self.client.get(url + path, timeout=timeout))

        payload = await self._guard(site, call())
        self._received(site, "key", payload)
        return payload

    async def post(self, site: str, path: str, payload: BaseModel) -> dict[str, Any]:
        endpoint = self._endpoint(site)
        body = payload.model_dump_json().encode("utf-8")

        async def call() -> dict[str, Any]:
            return _json(await self._send("POST", endpoint, path, body))

        answer = await self._guard(site, call())
        self._received(site, path.rsplit("/", 1)[-1], answer)
        return answer

    async def task(self, site: str, step: StepBase, secure: SecureTask | None) -> TaskOutcome:
        endpoint = self._endpoint(site)
        task = TaskRequest(
            task_id=uuid.uuid4().hex,
            job_id=self.job_id,
            analysis=self.analysis,
            step=step.model_dump(mode="json"),
            secure=secure,
            project=self.project,
            researcher=self.researcher,
            chain=self.receipts[site].chain if site in self.receipts else GENESIS,
        )
        body = task.model_dump_json().encode("utf-8")
        self._report(site, f"running {step.step}")

        async def call() -> TaskOutcome:
            outcome = _outcome(await self._send("POST", endpoint, TASKS, body))
            while outcome.status == "pending":
                self._report(site, "waiting for approval")
                await asyncio.sleep(self.poll_interval)
                path = f"{TASKS}/{task.task_id}"
                outcome = _outcome(await self._send("GET", endpoint, path, b""))
            return outcome

        outcome = await self._guard(site, call())
        self._received(site, "task", outcome.result or {})
        if outcome.status != "answered":
            reason = outcome.reason or {}
            failure = SiteFailure(reason.get("code", outcome.status), reason.get("detail", ""))
            self._report(site, failure_state(failure.code))
            raise failure
        try:
            self.receipts[site] = receipt_of(task, outcome)
        except SiteFailure as failure:
            self._report(site, failure_state(failure.code))
            raise
        self._report(site, f"answered {step.step}")
        return outcome

    async def _guard(self, site: str, call: Awaitable[T]) -> T:
        """Run ``call`` within the deadline; map transport errors to site failures, and
        report each failure (a refusal, an error, no answer) as the site's state."""
        try:
            async with asyncio.timeout(max(self._remaining(), 0.01)):
                return await call
        except SiteFailure as failure:  # a problem body: the site refused or failed
            failed = failure
        except TimeoutError:
            failed = SiteFailure(ErrorCode.SITE_TIMEOUT, "no answer before the job's deadline")
        except httpx.UnsupportedProtocol as exc:  # plain http refused by a TLS transport
            failed = SiteFailure(ErrorCode.TLS_REQUIRED, str(exc))
        except httpx.HTTPError as exc:
            failed = SiteFailure(ErrorCode.SITE_UNREACHABLE, f"{type(exc).__name__}: {exc}")
        self._report(site, failure_state(failed.code))
        raise failed

    def _remaining(self) -> float:
        return self.deadline - time.monotonic()

    def _report(self, site: str, status: str) -> None:
        if self.on_site is not None:
            self.on_site(site, status)

    async def _send(
        self, method: str, endpoint: Endpoint, path: str, body: bytes
    ) -> httpx.Response:
        if endpoint.mode == "pull":
            self.trips[trip_kind(method, path)] += 1
            return await self._exchange(method, endpoint.site, path, body)
        url = endpoint.url
        last: Exception | None = None
        # a lost connection is retried; a task POST only when it never reached the node
        # (the node may still be computing it), a poll GET (idempotent) on any transport error
        retry: tuple[type[Exception], ...] = (
            (httpx.TransportError,)
            if method == "GET"
            else (httpx.ConnectError, httpx.ConnectTimeout)
        )
        for attempt in range(self.retries + 1):
            headers = sign_headers(self.key, method, path, body)
            if body:
                headers["Content-Type"] = "application/json"
            timeout = max(min(self.request_timeout, self._remaining()), 0.01)
            self.trips[trip_kind(method, path)] += 1
            try:
                return await self.client.request(
                    method, url + path, content=body, headers=headers, timeout=timeout
                )
            except retry as exc:
                last = exc
                if attempt < self.retries and self._remaining() > self.backoff * 2**attempt:
                    await asyncio.sleep(self.backoff * 2**attempt)
        if isinstance(last, httpx.TimeoutException) and not isinstance(last, httpx.ConnectTimeout):
            raise SiteFailure(
                ErrorCode.SITE_TIMEOUT,
                f"no answer from {url} within {self.request_timeout:g} s ({type(last).__name__})",
            )
        raise SiteFailure(
            ErrorCode.SITE_UNREACHABLE,
            f"cannot connect to {url}: {str(last) or type(last).__name__}",
        )

    async def _exchange(self, method: str, site: str, path: str, body: bytes) -> httpx.Response:
        """Queue the signed request for a pull node and wait for its answer."""
        if self.mailbox is None:
            raise SiteFailure(
                ErrorCode.SITE_UNREACHABLE,
                f"{site} is a pull node and this federation has no mailbox",
            )
        headers = sign_headers(self.key, method, path, body)
        if body:
            headers["Content-Type"] = "application/json"
        timeout = max(min(self.request_timeout, self._remaining()), 0.01)
        status, content = await self.mailbox.exchange(site, method, path, headers, body, timeout)
        return httpx.Response(status, content=content)


def trip_kind(method: str, path: str) -> str:
    """What a request to a node is for: ``task``, ``poll`` (a pending task's answer),
    or the secure aggregation ``key``, ``setup`` and ``unmask``."""
    if path == TASKS:
        return "task"
    if path.startswith(TASKS + "/"):
        return "poll"
    if path.startswith(SECAGG):
        return path.removeprefix(SECAGG)
    return f"{method} {path}"


def _problem(response: httpx.Response) -> SiteFailure:
    try:
        problem: dict[str, Any] = response.json()
    except ValueError:
        problem = {}
    code = str(problem.get("code", ErrorCode.INTERNAL))
    detail = str(problem.get("detail", f"HTTP {response.status_code}"))
    return SiteFailure(code, detail)


def _json(response: httpx.Response) -> dict[str, Any]:
    if response.status_code != 200:
        raise _problem(response)
    try:
        return dict(response.json())
    except ValueError:
        raise SiteFailure(
            ErrorCode.INTERNAL, "the node answered something that is not JSON"
        ) from None


def _outcome(response: httpx.Response) -> TaskOutcome:
    if response.status_code in (200, 202):
        return TaskOutcome.model_validate_json(response.content)
    raise _problem(response)
