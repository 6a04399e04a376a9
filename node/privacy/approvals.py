"""The training apps a site has approved, by app hash, kept in ``DIR/approved_apps``.

One lower-case SHA-256 hex digest per line; ``#`` starts a comment. An app hash is the
content hash of a training app bundle (:func:`schemas.training.bundle.app_hash`); the site
approves it after reviewing the bundle (``fedpsy`` prints it with the run). A run from any
other app is refused with ``app_not_approved``; with no file nothing is approved. The
node's API refuses training steps of other apps (:func:`check_step_app`), and in Flower
deployment the site's ClientApp also refuses every request of a run whose installed bundle
the site did not approve (:mod:`node.training.client_app`).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from schemas.errors import ErrorCode, FedpsyError, Refused
from schemas.steps.base import StepBase
from schemas.steps.train import TrainWork

logger = logging.getLogger(__name__)

FILE = "approved_apps"
HASH = re.compile(r"^[0-9a-f]{64}$")


def approvals_path(node_dir: Path) -> Path:
    return node_dir / FILE


def approved_apps(node_dir: Path) -> set[str]:
    """The approved app hashes (empty when the file does not exist)."""
    path = approvals_path(node_dir)
    if not path.is_file():
        return set()
    found: set[str] = set()
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if not HASH.fullmatch(line):
            raise FedpsyError(
                f"{path}:{number}: not an app hash (64 lower-case hex digits)",
                code=ErrorCode.CONFIG_INVALID,
            )
        found.add(line)
    return found


def approve_app(node_dir: Path, app_hash: str, note: str = "") -> None:
    """Add ``app_hash`` to the approved apps (idempotent)."""
    if not HASH.fullmatch(app_hash):
        raise FedpsyError("an app hash is 64 lower-case hex digits", code=ErrorCode.BAD_INPUT)
    if app_hash in approved_apps(node_dir):
        return
    path = approvals_path(node_dir)
    comment = f"  # {note}" if note else ""
    with path.open("a", encoding="utf-8") as fh:
        fh.write(f"{app_hash}{comment}\n")
    logger.info("approved training app %s", app_hash[:12])


def check_app(node_dir: Path, app_hash: str) -> None:
    """Refuse (``app_not_approved``) unless the site approved ``app_hash``."""
    if app_hash not in approved_apps(node_dir):
        raise Refused(
            f"training app {app_hash[:12]}… is not approved at this site; after reviewing "
            f"it the site approves it with `fedpsy node approve-app NODE_DIR {app_hash}` "
            f"(which adds the hash to NODE_DIR/{FILE}; without the hash, the app of the "
            "node's installed fedpsy)",
            code=ErrorCode.APP_NOT_APPROVED,
        )


def check_step_app(node_dir: Path, step: StepBase) -> None:
    """Refuse a training step (``train``, ``train_sum``) of an app the site has not
    approved; other steps pass."""
    if isinstance(step, TrainWork):
        check_app(node_dir, step.app_hash)


__all__ = ["approvals_path", "approve_app", "approved_apps", "check_app", "check_step_app"]
