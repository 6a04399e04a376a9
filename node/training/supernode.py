"""The site's Flower SuperNode: how fedpsy starts it next to the node.

The SuperNode connects to the consortium's SuperLink and runs the site's ClientApp
(:mod:`node.training.client_app`) for every message, with the node directory in its
node config. It runs with Flower's environment of the node (telemetry off, ``FLWR_HOME``
in ``DIR/flwr``) and the venv's scripts on PATH (it starts ``flower-superexec``).

Over TLS (``--root-certificates``, the consortium CA) the SuperNode also signs its requests
with the site's SuperNode key (``--auth-supernode-private-key``,
:mod:`node.training.supernode_keys`): the coordinator's SuperLink accepts only SuperNodes
whose public key its operator registered, and refuses the others when they connect (the
SuperNode then exits, its log saying ``Failed to activate SuperNode``, and ``fedpsy node
serve`` starts it again later: :mod:`fedpsy.keeper`).

Per-message cost. By default Flower runs every message in a fresh ``flwr-clientapp``
process, found by a SuperExec that polls every second (``FLWR_SUPEREXEC_TASK_POLL_INTERVAL``),
and an idle SuperNode asks the SuperLink for messages every 3 s (fixed in Flower). fedpsy
starts the SuperNode through :func:`main`, which polls every ``FEDPSY_SUPERNODE_POLL``
seconds (default 0.2) instead and waits 20 ms instead of 0.5 s for its ClientApp's
reply, and retries its pulls of message objects sooner (:func:`quick_object_pulls`);
:func:`fedpsy.flower.site_supernode` runs it with ``--isolation process`` next to the site's
long-running worker (:mod:`node.training.worker`), so a message costs its computation,
not a process start and the imports of Flower, numpy, pandas and fedpsy.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from schemas.training.env import child_env, quick_object_pulls

POLL_ENV = "FEDPSY_SUPERNODE_POLL"


def supernode_command(
    node_dir: Path,
    superlink: str,
    port: int,
    *,
    insecure: bool = False,
    root_certificates: Path | None = None,
    auth_key: Path | None = None,
    warm: bool = False,
) -> list[str]:
    """The command line of the site's SuperNode (TLS unless ``insecure``; ``auth_key``: the
    site's SuperNode private key); ``warm``: no process per message, a worker runs the
    ClientApp (``--isolation process``)."""
    config = f'node-dir="{node_dir.resolve()}"'
    command = [
        sys.executable,
        "-m",
        "node.training.supernode",
        "--superlink",
        superlink,
        "--port",
        str(port),
        "--node-config",
        config,
    ]
    if warm:
        command += ["--isolation", "process"]
    if insecure:
        command.append("--insecure")
    if root_certificates is not None:
        command += ["--root-certificates", str(root_certificates)]
    if auth_key is not None:
        command += ["--auth-supernode-private-key", str(auth_key)]
    return command


def supernode_env(node_dir: Path, poll: float = 0.2) -> dict[str, str]:
    env = child_env(node_dir / "flwr", Path(sys.executable).parent)
    env.setdefault("FLWR_SUPEREXEC_TASK_POLL_INTERVAL", "0.1")
    env[POLL_ENV] = str(poll)
    return env


def start_supernode(
    node_dir: Path, superlink: str, port: int, log: Path, **options: Any
) -> subprocess.Popen[bytes]:
    """Start the SuperNode process (its output goes to ``log``)."""
    (node_dir / "flwr").mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(
            supernode_command(node_dir, superlink, port, **options),
            env=supernode_env(node_dir),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def start_worker(node_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    """Start the site's long-running ClientApp worker for the SuperNode on ``port``."""
    command = [
        sys.executable,
        "-m",
        "node.training.worker",
        "--runtime-api-address",
        f"127.0.0.1:{port}",
        "--node-dir",
        str(node_dir.resolve()),
    ]
    with log.open("ab") as out:
        return subprocess.Popen(
            command, env=supernode_env(node_dir), stdout=out, stderr=subprocess.STDOUT
        )


class _Clock:
    """``time`` for Flower's SuperNode loop, with its waits shortened: the idle wait for
    messages (3 s in Flower) to ``idle``, the waits for the local ClientApp's reply (0.5 s)
    to ``busy``."""

    def __init__(self, idle: float, busy: float = 0.02) -> None:
        self.idle = idle
        self.busy = busy

    def sleep(self, seconds: float) -> None:
        time.sleep(min(seconds, self.idle if seconds >= 1 else self.busy))

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def main() -> None:
    """``flower-supernode`` with a shorter idle poll (see the module docstring)."""
    from flwr.supernode import start_client_internal
    from flwr.supernode.cli import flower_supernode

    start_client_internal.time = _Clock(float(os.environ.get(POLL_ENV, "0.2")))  # type: ignore[assignment,attr-defined]
    quick_object_pulls()
    sys.argv[0] = "flower-supernode"
    flower_supernode()


if __name__ == "__main__":
    main()
