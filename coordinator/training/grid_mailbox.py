"""The job's sites over a Flower grid: the HTTP federation's requests carried as messages.

In deployment the ServerApp reaches the sites only through the SuperLink. A
:class:`GridMailbox` takes the place of the pull nodes' mailbox
(:class:`coordinator.federation.mailbox.Mailbox`): the federation signs each request exactly as it
would send it over HTTP, and the mailbox carries it to the site's SuperNode and brings
back the node's signed answer (:mod:`schemas.training.carriage`). So a training run in
deployment is the same sequence of signed tasks, secure sums (Bonawitz et al., CCS 2017)
and refusals as over HTTP, and the ServerApp only learns sums of the sites' updates.

Which SuperNode is which site: :meth:`GridMailbox.discover` says hello to every connected
SuperNode and keeps those whose answer is signed by the identity the coordinator pinned
for a site of the job (``add-node``). Only they get requests; a SuperNode of another site
or consortium, or one claiming a site with another key, gets nothing more.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from flwr.app import Message
from flwr.serverapp import Grid

from coordinator.federation.failures import SiteFailure, SitesFailed
from schemas.errors import ErrorCode, FedpsyError
from schemas.keys import fingerprint
from schemas.training.carriage import answer_of, hello_message, hello_of, request_message

logger = logging.getLogger(__name__)


def pull_replies(
    pull: Callable[[set[str]], Iterable[Message]],
    ids: set[str],
    deadline: float,
    pause: float = 0.02,
) -> list[Message]:
    """The replies to the messages ``ids``, asked for with ``pull`` until all came or
    ``deadline`` passed. Flower's grid waits 3 s between pulls; this waits ``pause``,
    doubling up to 0.2 s, so a phase costs its computation rather than the polling."""
    replies: list[Message] = []
    while ids and time.monotonic() < deadline:
        pulled = list(pull(ids))
        replies += pulled
        ids = ids - {m.metadata.reply_to_message_id for m in pulled}
        if ids:
            time.sleep(pause)
            pause = min(pause * 2, 0.2)
    return replies


class GridMailbox:
    """Signed node requests to the job's sites over ``grid`` (thread-safe)."""

    def __init__(self, grid: Grid, identities: Mapping[str, str], poll: float = 0.02) -> None:
        self.grid = grid
        self.identities = dict(identities)  # site → pinned identity fingerprint
        self.poll = poll
        self.nodes: dict[str, int] = {}  # site → SuperNode id
        self.keys: dict[str, Ed25519PublicKey] = {}
        self._lock = threading.Lock()

    def _pull(self, ids: set[str], deadline: float) -> list[Message]:
        def locked(waiting: set[str]) -> list[Message]:
            with self._lock:
                return list(self.grid.pull_messages(waiting))

        return pull_replies(locked, ids, deadline, self.poll)

    def _push(self, messages: list[Message]) -> set[str]:
        with self._lock:
            return set(self.grid.push_messages(messages))

    def discover(self, timeout: float = 60.0, pause: float = 0.5) -> None:
        """Find the SuperNode of every site of the job; ``SitesFailed`` names those not
        connected (``site_unreachable``) or answering with another key (``peer_key_mismatch``)."""
        deadline = time.monotonic() + timeout
        asked: set[int] = set()
        mismatched: set[str] = set()
        while True:
            new = [n for n in self.grid.get_node_ids() if n not in asked]
            asked.update(new)
            hellos = [hello_message(n) for n in new]
            sent = self._push([m for m, _ in hellos])
            nonces = {m.metadata.message_id: (m.metadata.dst_node_id, n) for m, n in hellos}
            for reply in self._pull(sent, min(deadline, time.monotonic() + 10)):
                node, nonce = nonces[reply.metadata.reply_to_message_id]
                hello = hello_of(reply, nonce)
                if hello is None or hello.site not in self.identities:
                    continue
                if fingerprint(hello.identity) != self.identities[hello.site]:
                    logger.warning("SuperNode %s claims %s with another key", node, hello.site)
                    mismatched.add(hello.site)
                    continue
                self.nodes[hello.site], self.keys[hello.site] = node, hello.identity
            missing = sorted(set(self.identities) - set(self.nodes))
            if not missing:
                logger.info("sites on the grid: %s", self.nodes)
                return
            if time.monotonic() > deadline:
                raise SitesFailed(
                    {
                        s: SiteFailure(
                            ErrorCode.PEER_KEY_MISMATCH,
                            "its SuperNode answered with another "
                            "identity than the one pinned at add-node",
                        )
                        if s in mismatched
                        else SiteFailure(
                            ErrorCode.SITE_UNREACHABLE,
                            "no SuperNode of this site is connected to the SuperLink",
                        )
                        for s in missing
                    }
                )
            time.sleep(pause)

    def _roundtrip(
        self,
        site: str,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes,
        timeout: float,
    ) -> tuple[int, bytes]:
        message, nonce = request_message(self.nodes[site], method, path, headers, body)
        replies = self._pull(self._push([message]), time.monotonic() + timeout)
        if not replies:
            raise SiteFailure(
                ErrorCode.SITE_TIMEOUT, f"no answer through the SuperLink in {timeout:g} s"
            )
        try:
            return answer_of(replies[0], nonce, self.keys[site])
        except FedpsyError as exc:
            raise SiteFailure(exc.code, exc.message) from None

    async def exchange(
        self,
        site: str,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes,
        timeout: float,
    ) -> tuple[int, bytes]:
        """Carry one signed request to ``site``; its status and body."""
        if site not in self.nodes:
            raise SiteFailure(ErrorCode.SITE_UNREACHABLE, "this site's SuperNode was not found")
        return await asyncio.to_thread(self._roundtrip, site, method, path, headers, body, timeout)


__all__ = ["GridMailbox", "pull_replies"]
