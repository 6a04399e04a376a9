"""The site's long-running ClientApp worker: one warm process instead of one per message.

It keeps the site's node open between messages, so a secure aggregation session set up
by one message is there to mask the next (:class:`node.training.client_app.CarriedNode`).
By default a Flower SuperNode starts a fresh ``flwr-clientapp`` process for every message
(Flower 1.42's SuperExec), which imports Flower, numpy, pandas and fedpsy each time —
seconds per message. fedpsy starts the SuperNode with ``--isolation process`` instead and
runs this worker next to it: it asks the SuperNode's Runtime API for ClientApp tasks
(``AcquireTask``, as the SuperExec does) and runs each in this process, exactly as
``flwr-clientapp`` would (pull the task's message, context and app bundle, answer through
:func:`node.training.client_app.respond` — the node's API, gate and audit — push the reply and
the task's status). The app hash is taken from the bundle the task came with.

It uses the Runtime API client of the installed Flower (pinned to 1.42). Start it with
``python -m node.training.worker --runtime-api-address 127.0.0.1:PORT --node-dir DIR`` in
Flower's environment of the node (:func:`node.training.supernode.supernode_env`).
"""

from __future__ import annotations

import argparse
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from flwr.app import Message
from flwr.app.error import Error
from flwr.common.constant import ErrorCode, SubStatus
from flwr.proto.runtime_pb2 import AcquireTaskRequest
from flwr.supercore.constant import TaskType
from flwr.supercore.heartbeat import HeartbeatSender, make_task_heartbeat_fn_http
from flwr.supercore.interceptors import RuntimeTokenHttpInterceptor, RuntimeVersionHttpInterceptor
from flwr.supercore.retry import make_simple_http_retry_invoker
from flwr.supercore.runtime import RuntimeHttpClient
from flwr.supernode.runtime.run_clientapp import pull_task_input, push_message, push_task_output

from node.training.client_app import respond
from schemas.training.bundle import fab_files, hash_files
from schemas.training.env import quick_object_pulls

logger = logging.getLogger(__name__)
POLL_ENV = "FEDPSY_WORKER_POLL"


def _client(address: str, *interceptors: Any) -> RuntimeHttpClient:
    return RuntimeHttpClient.from_server_address(
        server_address=address,
        insecure=True,
        root_certificates=None,
        interceptors=list(interceptors),
        retry_invoker=make_simple_http_retry_invoker(),
    )


def run_task(address: str, token: str, node_dir: Path) -> None:
    """Run one acquired ClientApp task in this process."""
    client = _client(
        address,
        RuntimeVersionHttpInterceptor(component_name="flwr-clientapp"),
        RuntimeTokenHttpInterceptor(token),
    )
    heartbeat = HeartbeatSender(make_task_heartbeat_fn_http(client))
    heartbeat.start()
    message: Message | None = None
    context = None
    status, details = SubStatus.FAILED, "ClientApp task failed"
    try:
        message, context, _, fab = pull_task_input(client)
        installed = hash_files(fab_files(fab.content))
        reply = respond(message, str(node_dir), installed)
        push_message(client, reply, context)
        status, details = SubStatus.COMPLETED, ""
    except Exception as exc:  # the SuperLink must learn that this site's task failed
        logger.exception("ClientApp task failed")
        details = f"{type(exc).__name__}: {exc}"[:300]
        if message is not None and context is not None:
            error = Error(code=ErrorCode.CLIENT_APP_RAISED_EXCEPTION, reason=details)
            try:
                push_message(client, Message(error, reply_to=message), context)
            except Exception:
                logger.exception("could not push the error reply")
    finally:
        push_task_output(client, context, status, details)
        if heartbeat.is_running:
            heartbeat.stop()
        client.close()


def serve(
    address: str, node_dir: Path, poll: float = 0.05, stop: threading.Event | None = None
) -> None:
    """Acquire and run ClientApp tasks until ``stop`` is set (forever without one)."""
    acquirer = _client(address, RuntimeVersionHttpInterceptor(component_name="SuperExec"))
    request = AcquireTaskRequest(
        supported_task_types=[TaskType.CLIENT_APP.value], agentapp_fab_hashes=[]
    )
    logger.info("ClientApp worker for %s polling %s", node_dir, address)
    try:
        while stop is None or not stop.is_set():
            try:
                acquired = acquirer.AcquireTask(request)
            except Exception as exc:  # the SuperNode may still be starting
                logger.debug("no task (%s)", type(exc).__name__)
                time.sleep(max(poll, 0.2))
                continue
            if acquired.HasField("task") and acquired.token:
                run_task(address, acquired.token, node_dir)
            else:
                time.sleep(poll)
    finally:
        acquirer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="fedpsy's long-running ClientApp worker")
    parser.add_argument("--runtime-api-address", required=True)
    parser.add_argument("--node-dir", required=True, type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    quick_object_pulls()
    serve(args.runtime_api_address, args.node_dir, float(os.environ.get(POLL_ENV, "0.05")))


if __name__ == "__main__":
    main()


__all__ = ["run_task", "serve"]
