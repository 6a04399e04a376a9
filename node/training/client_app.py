"""The site's Flower ClientApp (deployment): ``node.training.client_app:app``.

The site's SuperNode runs it with ``--node-config 'node-dir="DIR"'`` in the site's
long-running worker (:mod:`node.training.worker`). The ServerApp sends it ``query``
messages (:mod:`schemas.training.carriage`): a hello, answered with the site's name
signed by its identity, and the coordinator's signed node requests — train steps as
``train_sum`` tasks masked for secure aggregation, the secure aggregation key exchange,
per-site ``train`` tasks for the site's own test metrics. Each request is replayed into
the node's own API (:mod:`node.http.replay`): signature, nonce, policy, approved app, gate,
differencing guard, disclosure, release (DP, masking) and audit, exactly as over HTTP.
Before that the bundle this run came with must be one the site approved
(``app_not_approved``). What leaves is the API's answer, signed by the site; never rows.

The node is opened once per process and kept (:class:`CarriedNode`): a secure aggregation
session's keys live in its memory between the messages of a run, which is why fedpsy runs
the ClientApp in one long-running worker rather than a fresh process per message. When
the node's configuration, policy or dictionary files change, the next message reopens
it, keeping the secure aggregation sessions. Flower is imported with this module, so the
process must have Flower's environment set first (the SuperNode passes on the one fedpsy
starts it with).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import sys
from pathlib import Path
from typing import Any

from flwr.app import Context, Message
from flwr.clientapp import ClientApp

from node.auth.identity import load_identity
from node.http.api import create_app
from node.http.replay import problem, replay
from node.privacy.approvals import check_app
from node.service import NodeService
from node.site import NodeSite
from schemas.errors import ErrorCode, FedpsyError
from schemas.training.bundle import app_hash
from schemas.training.carriage import answer_reply, hello_reply, is_hello, request_of

logger = logging.getLogger(__name__)

NODE_DIR_KEY = "node-dir"

app = ClientApp()


def installed_bundle() -> Path | None:
    """The directory of the app bundle Flower installed for this run, if any.

    Flower installs a run's bundle under ``$FLWR_HOME/apps`` and puts that directory on
    ``sys.path`` before loading the ClientApp.
    """
    home = os.environ.get("FLWR_HOME")
    if not home:
        return None
    apps = (Path(home) / "apps").resolve()
    for entry in sys.path:
        path = Path(entry or ".").resolve()
        if path.parent == apps and (path / "pyproject.toml").is_file():
            return path
    return None


def _stamp(node: NodeSite) -> tuple[float, ...]:
    """When the files the service reads at start last changed."""
    files = [node.dir.config, node.dir.policy, *sorted(node.dir.dictionary.glob("*"))]
    return tuple(f.stat().st_mtime if f.exists() else 0.0 for f in files)


class CarriedNode:
    """One node directory answering carried requests: its API application, kept open."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._open(None)
        self.identity = load_identity(self.node.dir)

    def _open(self, previous: NodeService | None) -> None:
        self.node = NodeSite.open(self.root)
        self.stamp = _stamp(self.node)
        self.service = NodeService(self.node, secagg=previous.secagg if previous else None)
        self.api: Any = create_app(self.service, secrets.token_urlsafe(32))

    def refresh(self) -> None:
        """Reopen the node when its configuration, policy or dictionary changed."""
        if _stamp(self.node) != self.stamp:
            old = self.service
            self._open(old)
            old.node.close()

    @property
    def site(self) -> str:
        return self.service.site

    def _refusal(self, exc: FedpsyError, path: str) -> tuple[int, str]:
        self.service.audit.append(
            "refused", None, {"source": "training-app", "path": path, "code": exc.code}
        )
        return problem(exc, path)

    def answer(self, message: Message, installed_app: str | None) -> Message:
        """The signed reply to one carried message."""
        if is_hello(message):
            return hello_reply(message, self.site, self.identity)
        request = request_of(message)
        if request is None:
            raise FedpsyError(
                "the message carries no fedpsy request", code=ErrorCode.REQUEST_INVALID
            )
        self.refresh()
        try:
            if installed_app is None:
                raise FedpsyError(
                    "no installed app bundle found for this run", code=ErrorCode.APP_NOT_APPROVED
                )
            check_app(self.root, installed_app)
        except FedpsyError as exc:
            status, body = self._refusal(exc, request.path)
        else:
            status, body = asyncio.run(
                replay(self.api, request.method, request.path, request.headers, request.body)
            )
        return answer_reply(message, status, body, self.identity)


_NODES: dict[Path, CarriedNode] = {}


def carried_node(node_dir: object) -> CarriedNode:
    """The kept node of ``node_dir`` (opened on first use)."""
    if not isinstance(node_dir, str) or not node_dir:
        raise FedpsyError(
            f"the SuperNode needs --node-config '{NODE_DIR_KEY}=\"DIR\"'",
            code=ErrorCode.CONFIG_INVALID,
        )
    root = Path(node_dir).resolve()
    if root not in _NODES:
        _NODES[root] = CarriedNode(root)
    return _NODES[root]


def respond(message: Message, node_dir: object, installed_app: str | None) -> Message:
    """The reply of the site in ``node_dir`` to ``message``; ``installed_app`` is the app
    hash of the bundle this run came with."""
    return carried_node(node_dir).answer(message, installed_app)


@app.query()
def query(message: Message, context: Context) -> Message:
    bundle = installed_bundle()
    return respond(
        message, context.node_config.get(NODE_DIR_KEY), None if bundle is None else app_hash(bundle)
    )


__all__ = ["NODE_DIR_KEY", "CarriedNode", "app", "carried_node", "installed_bundle", "respond"]
