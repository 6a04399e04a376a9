"""The site's Flower ClientApp (deployment): ``node.training.client_app:app``.

The site's SuperNode runs it with ``--node-config 'node-dir="DIR"'``, in a fresh
``flwr-clientapp`` process per message or in the site's long-running worker
(:mod:`node.training.worker`). For each message it opens the node directory, works out
the app hash of the bundle this run came with, and runs the message's train step through
:class:`node.training.gated.LocalGate` (approved app, policy, differencing guard,
disclosure rules, audit). What it replies is the step's result: model weights and
metrics, never rows. Flower is imported with this
module, so the process must have Flower's environment set first (the SuperNode passes on
the one fedpsy starts it with).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from flwr.app import Context, Message
from flwr.clientapp import ClientApp

from node.config import load_config, node_dictionary
from node.layout import NodeDir
from node.site import NodeSite
from node.store.engine import open_engine
from node.training.gated import LocalGate
from schemas.errors import FedpsyError
from schemas.training.bundle import app_hash
from schemas.training.protocol import handle, refusal_reply

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


def _open(root: Path) -> NodeSite:
    """The node directory without running store migrations (``fedpsy node serve`` did;
    each message runs in a fresh process, so this is on every message's path)."""
    node_dir = NodeDir(root).require()
    config = load_config(node_dir)
    return NodeSite(node_dir, config, node_dictionary(node_dir, config),
                    open_engine(config.store_url(node_dir)))  # fmt: skip


def respond(message: Message, node_dir: object, installed_app: str | None) -> Message:
    """The reply of the site in ``node_dir`` to ``message``, run through its gate;
    ``installed_app`` is the app hash of the bundle this run came with."""
    if not isinstance(node_dir, str) or not node_dir:
        error = FedpsyError(f"the SuperNode needs --node-config '{NODE_DIR_KEY}=\"DIR\"'",
                            code="config_invalid")  # fmt: skip
        return refusal_reply(message, "?", error)
    with _open(Path(node_dir)) as node:
        if installed_app is None:
            error = FedpsyError("no installed app bundle found for this run",
                                code="app_not_approved")  # fmt: skip
            return refusal_reply(message, node.config.site, error)
        gate = LocalGate(node, installed_app=installed_app)
        return handle(message, gate.site, gate.run)


def _serve(message: Message, context: Context) -> Message:
    bundle = installed_bundle()
    return respond(message, context.node_config.get(NODE_DIR_KEY),
                   None if bundle is None else app_hash(bundle))  # fmt: skip


@app.train()
def train(message: Message, context: Context) -> Message:
    """A ``fit`` step: local training from the global weights."""
    return _serve(message, context)


@app.evaluate()
def evaluate(message: Message, context: Context) -> Message:
    """A ``validate``, ``test`` or ``local`` step: scores of the global or a local model."""
    return _serve(message, context)


__all__ = ["NODE_DIR_KEY", "app", "installed_bundle", "respond"]
