"""Registered nodes and researchers (tokens stored only as SHA-256 digests)."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from coordinator.store import tables as t
from coordinator.store.projects import DEFAULT, get_project
from schemas.errors import ErrorCode, FedpsyError
from schemas.wire import NodeInfo

SEEN_WITHIN_S = 30.0
"""A job rewrites a node's record (dictionary, policy, last seen) only when it changed or
was last written longer ago than this."""


@dataclass(frozen=True)
class NodeRecord:
    """A node the coordinator knows, with its pinned identity."""

    site: str
    url: str
    public_key: str
    fingerprint: str
    dictionary_hash: str
    variable_hashes: dict[str, str]
    last_seen: float | None
    mode: str = "push"  # push: the coordinator calls the node; pull: the node polls
    policy: dict[str, Any] | None = None  # the public part of its policy, as last seen


def _record(row: dict[str, object]) -> NodeRecord:
    return NodeRecord(
        site=str(row["site"]),
        url=str(row["url"]),
        public_key=str(row["public_key"]),
        fingerprint=str(row["fingerprint"]),
        dictionary_hash=str(row["dictionary_hash"]),
        variable_hashes=json.loads(str(row["variable_hashes"])),
        last_seen=row["last_seen"] if isinstance(row["last_seen"], float) else None,
        mode=str(row.get("mode") or "push"),
        policy=json.loads(str(row["policy"])) if row.get("policy") else None,
    )


def save_node(engine: Engine, site: str, url: str, info: NodeInfo, fingerprint: str) -> NodeRecord:
    """Register (or re-register) a node with the identity it presented."""
    if info.site != site:
        raise FedpsyError(
            f"the node at {url} says it is site {info.site!r}, not {site!r}",
            code=ErrorCode.BAD_INPUT,
        )
    values = {
        "url": url.rstrip("/"),
        "public_key": info.public_key,
        "fingerprint": fingerprint,
        "dictionary_hash": info.dictionary_hash,
        "variable_hashes": json.dumps(info.variable_hashes, sort_keys=True),
        "last_seen": time.time(),
        "mode": "push",
        "policy": info.policy.model_dump_json(),
    }
    return _upsert(engine, site, values)


def save_pull_node(engine: Engine, site: str, public_key: str, fingerprint: str) -> NodeRecord:
    """Register (or re-register) a node that polls: its pinned key, no URL; its dictionary
    arrives with its first poll."""
    values = {
        "url": "",
        "public_key": public_key,
        "fingerprint": fingerprint,
        "dictionary_hash": "",
        "variable_hashes": "{}",
        "last_seen": None,
        "mode": "pull",
    }
    return _upsert(engine, site, values)


def _upsert(engine: Engine, site: str, values: Mapping[str, object]) -> NodeRecord:
    with engine.begin() as conn:
        exists = conn.execute(select(t.node.c.site).where(t.node.c.site == site)).first()
        if exists:
            conn.execute(update(t.node).where(t.node.c.site == site).values(**values))
        else:
            conn.execute(insert(t.node).values(site=site, added_at=time.time(), **values))
    return get_node(engine, site)


def get_node(engine: Engine, site: str) -> NodeRecord:
    with engine.connect() as conn:
        row = conn.execute(select(t.node).where(t.node.c.site == site)).mappings().first()
    if row is None:
        raise FedpsyError(f"no node registered as {site!r}", code=ErrorCode.NOT_FOUND)
    return _record(dict(row))


def list_nodes(engine: Engine) -> list[NodeRecord]:
    with engine.connect() as conn:
        rows = conn.execute(select(t.node).order_by(t.node.c.site)).mappings().all()
    return [_record(dict(r)) for r in rows]


def recorded(node: NodeRecord, info: NodeInfo, within_s: float = SEEN_WITHIN_S) -> bool:
    """Whether ``node``'s record already holds what ``info`` says and was seen within
    ``within_s`` seconds (then a job need not write it again)."""
    return (
        node.last_seen is not None
        and time.time() - node.last_seen < within_s
        and node.dictionary_hash == info.dictionary_hash
        and node.variable_hashes == info.variable_hashes
        and node.policy == info.policy.model_dump(mode="json")
    )


def touch_node(engine: Engine, site: str, info: NodeInfo | None = None) -> None:
    """Record that a node answered (and its current dictionary, when known)."""
    values: dict[str, object] = {"last_seen": time.time()}
    if info is not None:
        values["dictionary_hash"] = info.dictionary_hash
        values["variable_hashes"] = json.dumps(info.variable_hashes, sort_keys=True)
        values["policy"] = info.policy.model_dump_json()
    with engine.begin() as conn:
        conn.execute(update(t.node).where(t.node.c.site == site).values(**values))


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def add_user(engine: Engine, name: str, project: str = DEFAULT) -> str:
    """Create a researcher, a member of ``project``, and return their token (shown once,
    stored as a digest)."""
    get_project(engine, project)
    token = "fpy_" + secrets.token_urlsafe(32)
    with engine.begin() as conn:
        if user_exists(conn, name):
            raise FedpsyError(f"user {name!r} already exists", code=ErrorCode.BAD_INPUT)
        conn.execute(
            insert(t.user).values(
                name=name, token_sha256=token_digest(token), created_at=time.time()
            )
        )
        conn.execute(
            insert(t.project_member).values(project=project, user_name=name, added_at=time.time())
        )
    return token


def user_exists(conn: Connection, name: str) -> bool:
    return conn.execute(select(t.user.c.name).where(t.user.c.name == name)).first() is not None


def user_for_token(engine: Engine, token: str) -> str:
    """The user a token belongs to, or an ``unauthorized`` error."""
    digest = token_digest(token)
    with engine.connect() as conn:
        rows = conn.execute(select(t.user.c.name, t.user.c.token_sha256)).all()
    for name, stored in rows:
        if hmac.compare_digest(stored, digest):
            return str(name)
    raise FedpsyError(
        "unknown or missing token; ask the coordinator for one (`fedpsy coordinator add-user`)",
        code=ErrorCode.UNAUTHORIZED,
    )
