"""The coordinator: its directory, key, registry and the running of jobs over HTTP."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine

from coordinator.federation.failures import SiteFailure
from coordinator.federation.http import Endpoint, HttpFederation
from coordinator.federation.mailbox import STALE_S, Mailbox
from coordinator.federation.receipts import sign_envelope
from coordinator.federation.transport import NodeTransport, node_transport
from coordinator.jobs.progress import SiteProgress
from coordinator.jobs.runner import envelope, run_request
from coordinator.jobs.scope import check_scope, resolve_project, scoped_request
from coordinator.layout import CoordinatorConfig, CoordinatorDir, load_config, write_config
from coordinator.settings import coordinator_settings
from coordinator.store import jobs, models, registry
from coordinator.store.projects import Project
from coordinator.store.schema import upgrade
from schemas.engine import open_engine
from schemas.envelope import Envelope, FailureReason
from schemas.errors import ErrorCode, FedpsyError
from schemas.keys import (
    fingerprint,
    generate_private_key,
    load_private_key,
    public_key_from_pem,
    public_pem,
    write_private_key,
    write_public_key,
)
from schemas.wire import NodeInfo


def open_state(url: str) -> Engine:
    """The coordinator's store at ``url``, its schema brought to the newest revision."""
    engine = open_engine(url)
    try:
        upgrade(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine


@dataclass
class Coordinator:
    """An opened coordinator directory."""

    dir: CoordinatorDir
    config: CoordinatorConfig
    engine: Engine
    key: Ed25519PrivateKey
    transport: NodeTransport = field(default_factory=NodeTransport)  # TLS towards nodes
    _slots: WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = field(
        default_factory=WeakKeyDictionary, repr=False
    )

    @classmethod
    def create(cls, root: Path, database_url: str | None = None) -> Coordinator:
        cdir = CoordinatorDir(root)
        write_config(cdir, database_url)
        key = generate_private_key()
        write_private_key(cdir.private_key, key)
        write_public_key(cdir.public_key, key.public_key())
        return cls.open(root)

    @classmethod
    def open(cls, root: Path) -> Coordinator:
        cdir = CoordinatorDir(root).require()
        config = load_config(cdir)
        transport = node_transport(coordinator_settings(root))
        return cls(
            cdir,
            config,
            open_state(cdir.store_url(config)),
            load_private_key(cdir.private_key),
            transport,
        )

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Coordinator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add_node(self, site: str, url: str, verify: bool | str = True) -> registry.NodeRecord:
        """Fetch the node's ``/v1/info`` and pin its key and dictionary."""
        self.transport.check_url(url)
        try:
            if verify is True:
                with self.transport.client() as client:
                    response = client.get(url.rstrip("/") + "/v1/info", timeout=10)
            else:
                response = httpx.get(url.rstrip("/") + "/v1/info", timeout=10, verify=verify)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise FedpsyError(
                f"cannot reach the node at {url}: {exc}", code=ErrorCode.SITE_UNREACHABLE
            ) from None
        info = NodeInfo.model_validate_json(response.content)
        key = public_key_from_pem(info.public_key.encode(), f"{url}/v1/info public_key")
        return registry.save_node(self.engine, site, url, info, fingerprint(key))

    def add_pull_node(self, site: str, key_file: Path) -> registry.NodeRecord:
        """Register a node that polls (no inbound connections): pin its Ed25519 identity
        from ``key_file`` (the node's ``keys/`` public key); its dictionary arrives with its
        first poll."""
        try:
            key = public_key_from_pem(key_file.read_bytes(), str(key_file))
        except OSError as exc:
            raise FedpsyError(
                f"cannot read the node's public key {key_file}: {exc.strerror}",
                code=ErrorCode.BAD_INPUT,
            ) from None
        return registry.save_pull_node(
            self.engine, site, public_pem(key).decode("ascii"), fingerprint(key)
        )

    async def _refresh(
        self, client: httpx.AsyncClient, nodes: list[registry.NodeRecord]
    ) -> tuple[dict[str, dict[str, str]], dict[str, SiteFailure]]:
        """Current variable hashes per site, and the sites that failed (unreachable, or
        presenting another key than the pinned one); the job's quorum rule decides. The
        nodes are asked concurrently."""
        answers = await asyncio.gather(*(self._node_hashes(client, n) for n in nodes))
        hashes: dict[str, dict[str, str]] = {}
        failures: dict[str, SiteFailure] = {}
        for node, answer in zip(nodes, answers, strict=True):
            if isinstance(answer, SiteFailure):
                failures[node.site] = answer
            else:
                hashes[node.site] = answer
        return hashes, failures

    async def _node_hashes(
        self, client: httpx.AsyncClient, node: registry.NodeRecord
    ) -> dict[str, str] | SiteFailure:
        """One node's current variable hashes, or why it cannot take part."""
        if node.mode == "pull":  # its info arrives with each poll
            if not node.dictionary_hash or node.last_seen is None:
                return SiteFailure(
                    ErrorCode.SITE_UNREACHABLE,
                    "the pull node has not polled yet; start it with "
                    "`fedpsy node serve DIR --pull COORDINATOR_URL`",
                )
            if time.time() - node.last_seen > STALE_S:
                return SiteFailure(
                    ErrorCode.SITE_UNREACHABLE,
                    f"the pull node last polled {time.time() - node.last_seen:.0f} s ago",
                )
            return node.variable_hashes
        try:
            response = await client.get(
                node.url + "/v1/info", timeout=min(10.0, self.config.request_timeout_s)
            )
            info = NodeInfo.model_validate_json(response.content)
        except (httpx.HTTPError, ValueError) as exc:
            slow = isinstance(exc, httpx.TimeoutException) and not isinstance(
                exc, httpx.ConnectTimeout
            )
            code = (
                ErrorCode.TLS_REQUIRED
                if isinstance(exc, httpx.UnsupportedProtocol)
                else ErrorCode.SITE_TIMEOUT
                if slow
                else ErrorCode.SITE_UNREACHABLE
            )
            return SiteFailure(
                code, f"{node.url}/v1/info: {type(exc).__name__}" + (f": {exc}" if str(exc) else "")
            )
        if _fingerprint(info.public_key) != node.fingerprint:
            return SiteFailure(
                ErrorCode.BAD_SIGNATURE,
                "the node presents a different key than the one pinned "
                "at add-node; re-register it if the site rotated its key",
            )
        if not registry.recorded(node, info):
            await asyncio.to_thread(registry.touch_node, self.engine, node.site, info)
        return info.variable_hashes

    def authorize(
        self, request: dict[str, Any], user: str | None
    ) -> tuple[Project | None, dict[str, Any]]:
        """The project ``request`` runs under and the request as it runs (its defaults
        bounded by the project); ``forbidden`` when it is outside the researcher's projects
        or the project's analyses, variables (a ``predict`` model's too) or sites,
        ``not_found`` for a ``predict`` model the researcher may not use."""
        project = resolve_project(self.engine, user, request)
        if project is None:
            return None, request
        scoped = scoped_request(project, request)
        resolved = models.with_model(self.engine, scoped, user)
        if resolved.get("analysis") == "predict" and resolved.get("model") is None:
            raise FedpsyError(
                f"no model {resolved.get('model_id')!r} in the registry",
                code=ErrorCode.NOT_FOUND,
            )
        check_scope(project, resolved, [n.site for n in registry.list_nodes(self.engine)])
        return project, scoped

    async def run(
        self, request: dict[str, Any], user: str | None = None, job_id: str | None = None
    ) -> Envelope:
        """Run one request over the registered nodes (those its project allows); returns
        the result envelope."""
        job_id = job_id or uuid.uuid4().hex
        # the store is written and read in worker threads: a commit on the event loop
        # would hold up every other job this coordinator serves
        if await asyncio.to_thread(jobs.get_job, self.engine, job_id) is None:
            await asyncio.to_thread(jobs.create_job, self.engine, job_id, user, request)
        async with self._slot():
            return await self._run(request, user, job_id)

    def _slot(self) -> asyncio.Semaphore:
        """One of ``running_jobs`` places to run in (per event loop): a job beyond them
        waits, queued, instead of sharing the nodes' CPUs with every other job, so each
        job's rounds are not each queued behind all the others' steps."""
        loop = asyncio.get_running_loop()
        if loop not in self._slots:
            self._slots[loop] = asyncio.Semaphore(self.config.running_jobs)
        return self._slots[loop]

    async def _run(self, request: dict[str, Any], user: str | None, job_id: str) -> Envelope:
        nodes = await asyncio.to_thread(registry.list_nodes, self.engine)
        deadline = time.monotonic() + self.config.job_deadline_s
        async with self.transport.async_client() as client:
            try:
                project, request = self.authorize(request, user)
                named = None if project is None else project.name
                await asyncio.to_thread(jobs.set_project, self.engine, job_id, named)
                if project is not None and project.sites is not None:
                    nodes = [n for n in nodes if n.site in project.sites]
                    if not nodes:
                        raise FedpsyError(
                            f"none of project {project.name!r}'s sites "
                            f"({', '.join(project.sites)}) is registered",
                            code=ErrorCode.BAD_INPUT,
                        )
                if not nodes:
                    raise FedpsyError(
                        "no nodes registered; add one with `fedpsy coordinator "
                        "add-node DIR --site SITE --url URL`",
                        code=ErrorCode.BAD_INPUT,
                    )
                hashes, down = await self._refresh(client, nodes)
            except FedpsyError as exc:
                result = envelope(
                    "error",
                    request.get("analysis"),
                    job_id,
                    reason=FailureReason(
                        code=exc.code, detail=exc.detail, sites=exc.extra.get("sites")
                    ),
                )
                await asyncio.to_thread(jobs.finish_job, self.engine, job_id, result)
                return result
            by_site = {n.site: n for n in nodes}
            progress = SiteProgress(self.engine, job_id)

            def federation_for(sites: list[str]) -> HttpFederation:
                return HttpFederation(
                    [
                        Endpoint(s, by_site[s].url, by_site[s].fingerprint, by_site[s].mode)
                        for s in sites
                    ],
                    self.key,
                    job_id,
                    str(request.get("analysis")),
                    client,
                    request_timeout=self.config.request_timeout_s,
                    deadline=deadline,
                    on_site=progress,
                    mailbox=Mailbox(self.engine),
                    project=None if project is None else project.name,
                    researcher=user,
                )

            # predict: the stored model, if the researcher may use it
            resolved = await asyncio.to_thread(models.with_model, self.engine, request, user)
            try:
                result = await run_request(resolved, hashes, federation_for, job_id, down)
            finally:
                await progress.settled()
        result = sign_envelope(self.key, result)
        await asyncio.to_thread(
            models.register,
            self.engine,
            job_id,
            request,
            result,
            None if project is None else project.name,
        )
        await asyncio.to_thread(jobs.finish_job, self.engine, job_id, result)
        return result


@lru_cache(maxsize=256)
def _fingerprint(public_key_pem: str) -> str:
    """The fingerprint of the key a node's ``/v1/info`` presents (parsed once per key)."""
    return fingerprint(public_key_from_pem(public_key_pem.encode()))
