"""The mailbox of pull nodes: nodes that accept no inbound connections and poll instead.

For a pull node the federation signs each request exactly as it would send it (the signed
path is the node's path, e.g. ``/v1/tasks``), queues it here and waits for the node's
answer (status code and body) under the same request timeout and job deadline as a push
node. The node collects messages with ``GET|POST /v1/pull/{site}/next`` (a long poll; a
POST carries its current ``NodeInfo``) and answers with
``POST /v1/pull/{site}/responses/{message_id}``; both are signed with the node's Ed25519
identity pinned at ``add-node --pull`` (:func:`schemas.verify.check_signature`), nonces
are recorded here. State lives in the coordinator's store, so the job runner and the API
may run in different threads or event loops.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from coordinator.federation.failures import SiteFailure
from coordinator.store import registry
from coordinator.store import tables as t
from schemas.errors import AuthError, ErrorCode, FedpsyError
from schemas.keys import fingerprint, public_key_from_pem
from schemas.verify import WINDOW_S, check_signature
from schemas.wire import NodeInfo

log = logging.getLogger(__name__)
STALE_S = 120.0  # a pull node silent for longer is reported unreachable before a job
MAX_WAIT_S = 60.0


@dataclass
class Mailbox:
    """Queued requests for pull nodes and their answers, in the coordinator's store."""

    engine: Engine
    poll_s: float = 0.02

    # -- the federation's side --------------------------------------------------------------
    async def exchange(
        self,
        site: str,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes,
        timeout: float,
    ) -> tuple[int, bytes]:
        """Queue one signed request for ``site``; its answer, or ``site_timeout``."""
        message_id = uuid.uuid4().hex
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(
                insert(t.message).values(
                    message_id=message_id,
                    site=site,
                    method=method.upper(),
                    path=path,
                    headers=json.dumps(dict(headers)),
                    body=body.decode("utf-8"),
                    status="queued",
                    created_at=now,
                    expires_at=now + timeout,
                )
            )
        end = time.monotonic() + timeout
        while True:
            row = self._row(message_id)
            if row is not None and row["status"] == "answered":
                return int(row["response_status"]), str(row["response_body"]).encode("utf-8")
            if time.monotonic() >= end:
                break
            await asyncio.sleep(self.poll_s)
        with self.engine.begin() as conn:
            conn.execute(
                update(t.message)
                .where(t.message.c.message_id == message_id, t.message.c.status != "answered")
                .values(status="expired")
            )
        state = (
            "did not collect"
            if row is not None and row["status"] == "queued"
            else ("collected but did not answer")
        )
        raise SiteFailure(
            ErrorCode.SITE_TIMEOUT,
            f"the pull node {state} {method.upper()} {path} within {timeout:g} s",
        )

    def _row(self, message_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(select(t.message).where(t.message.c.message_id == message_id))
                .mappings()
                .first()
            )
        return None if row is None else dict(row)

    # -- the node's side (through coordinator.http.pull_api) ---------------------------------------
    def authenticate(
        self, site: str, headers: Mapping[str, str], method: str, path: str, body: bytes
    ) -> registry.NodeRecord:
        """The pull node ``site`` if the request is signed by its pinned key, fresh and not
        replayed; :class:`AuthError` otherwise."""
        try:
            node = registry.get_node(self.engine, site)
        except FedpsyError:
            node = None
        if node is None or node.mode != "pull":
            raise AuthError(
                f"no pull node is registered as {site!r}; register it with "
                "`fedpsy coordinator add-node DIR --site SITE --pull --key FILE`",
                code=ErrorCode.UNKNOWN_KEY,
            )
        key = public_key_from_pem(node.public_key.encode(), f"pinned key of {site}")
        now = time.time()
        signed = check_signature(
            headers,
            method,
            path,
            body,
            {node.fingerprint: key},
            now,
            hint=f" for site {site}; re-register the node if it rotated its key",
        )
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    delete(t.pull_nonce).where(t.pull_nonce.c.seen_at < now - 2 * WINDOW_S)
                )
                conn.execute(insert(t.pull_nonce).values(nonce=signed.nonce, seen_at=now))
        except IntegrityError:
            raise AuthError(
                "this nonce was already used; sign each request afresh", code=ErrorCode.REPLAYED
            ) from None
        return node

    def record_info(self, node: registry.NodeRecord, body: bytes) -> None:
        """Note a poll, with the node's current ``NodeInfo`` when it sent one."""
        info = None
        if body:
            try:
                info = NodeInfo.model_validate_json(body)
            except ValueError:
                raise FedpsyError(
                    "a poll's body must be the node's NodeInfo (JSON)",
                    code=ErrorCode.REQUEST_INVALID,
                ) from None
            presented = fingerprint(public_key_from_pem(info.public_key.encode()))
            if info.site != node.site or presented != node.fingerprint:
                raise FedpsyError(
                    f"the posted info names site {info.site!r} with key "
                    f"{presented[:16]}…, not {node.site!r} with its pinned key",
                    code=ErrorCode.BAD_SIGNATURE,
                )
        registry.touch_node(self.engine, node.site, info)

    async def next(
        self, site: str, wait: float, gone: Callable[[], Awaitable[bool]] | None = None
    ) -> dict[str, Any] | None:
        """The oldest message waiting for ``site`` (now delivered), waiting up to ``wait``
        seconds for one; ``None`` when none came or the poller is ``gone()``."""
        end = time.monotonic() + min(max(wait, 0.0), MAX_WAIT_S)
        while True:
            found = self._claim(site)
            if found is not None or time.monotonic() >= end:
                return found
            if gone is not None and await gone():
                return None
            await asyncio.sleep(max(self.poll_s, 0.05))

    def _claim(self, site: str) -> dict[str, Any] | None:
        with self.engine.begin() as conn:
            rows = (
                conn.execute(
                    select(t.message)
                    .where(
                        t.message.c.site == site,
                        t.message.c.status == "queued",
                        t.message.c.expires_at > time.time(),
                    )
                    .order_by(t.message.c.created_at)
                    .limit(1)
                )
                .mappings()
                .all()
            )
            for row in rows:
                claimed = conn.execute(
                    update(t.message)
                    .where(
                        t.message.c.message_id == row["message_id"], t.message.c.status == "queued"
                    )
                    .values(status="delivered")
                )
                if claimed.rowcount == 1:
                    return {
                        "message_id": row["message_id"],
                        "method": row["method"],
                        "path": row["path"],
                        "headers": json.loads(row["headers"]),
                        "body": row["body"],
                    }
        return None

    def answer(self, site: str, message_id: str, status: int, body: str) -> None:
        """Store the node's answer to a message it collected."""
        with self.engine.begin() as conn:
            done = conn.execute(
                update(t.message)
                .where(
                    t.message.c.message_id == message_id,
                    t.message.c.site == site,
                    t.message.c.status == "delivered",
                )
                .values(status="answered", response_status=status, response_body=body)
            )
        if done.rowcount != 1:
            raise FedpsyError(
                f"no message {message_id!r} is waiting for an answer from "
                f"{site!r} (unknown, expired or already answered)",
                code=ErrorCode.NOT_FOUND,
            )
