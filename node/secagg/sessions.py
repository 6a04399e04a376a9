"""The node's side of secure aggregation: sessions, masking and unmasking.

Session state (pair keys, the next round's self-mask seed and this node's own share of
it) lives in memory only: a restarted node has forgotten its sessions and counts as a
dropout, and session ids are recorded in the store so none is ever accepted twice (pair
keys are derived from the session id, so a replayed session would repeat masks). Rounds
are strictly sequential. For each round and each site the node reveals at most one of
the two secrets it holds shares of — the site's self-mask seed (the site answered) or
its pair seeds (the site dropped) — which is what keeps a site's input hidden even from
a coordinator that lies about who dropped (Bonawitz et al., CCS 2017, §4).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, insert
from sqlalchemy.exc import IntegrityError

from node.layout import NodeDir
from node.secagg.keys import check_and_pin, load_or_create_key
from node.store.tables import secagg_session
from schemas.errors import ErrorCode, FedpsyError
from schemas.keys import fingerprint
from schemas.secagg import fixedpoint, keys, protocol, shamir
from schemas.secagg.prg import SEED_BYTES, pair_seed
from schemas.secagg.wire import (
    KeyBundle,
    SecureTask,
    SetupAnswer,
    SetupRequest,
    UnmaskAnswer,
    UnmaskRequest,
)

logger = logging.getLogger(__name__)
MAX_SESSIONS = 512
SESSION_TTL = 24 * 3600.0


def _fail(detail: str) -> FedpsyError:
    return FedpsyError(detail, code=ErrorCode.SECURE_AGGREGATION_FAILED)


@dataclass
class _Round:
    participants: tuple[str, ...]
    own_share: list[int]
    revealed: dict[str, str] = field(default_factory=dict)  # site → "self" | "pairs"


@dataclass
class _Session:
    session: str
    me: str
    participants: tuple[str, ...]
    threshold: int
    pair_keys: dict[str, bytes]
    next_round: int = 1
    next_seed: bytes = b""
    next_share: list[int] = field(default_factory=list)
    rounds: dict[int, _Round] = field(default_factory=dict)
    created: float = field(default_factory=time.monotonic)


class SecaggNode:
    """Secure aggregation sessions of one node."""

    def __init__(self, node_dir: NodeDir, engine: Engine, identity: Ed25519PrivateKey) -> None:
        self._dir = node_dir
        self._engine = engine
        self._identity = identity
        self._fingerprint = fingerprint(identity.public_key())
        self._sessions: dict[str, _Session] = {}
        self._lock = threading.Lock()

    def bundle(self) -> KeyBundle:
        """This node's signed public key (``GET /v1/secagg/key``)."""
        return keys.make_bundle(self._identity, load_or_create_key(self._dir))

    # -- setup ------------------------------------------------------------------------
    def setup(self, request: SetupRequest) -> SetupAnswer:
        """Verify every relayed key, derive the pair keys and share round 1's secrets."""
        sites = [p.site for p in request.participants]
        if len(set(sites)) != len(sites):
            raise FedpsyError(
                "a site is listed twice in the session", code=ErrorCode.REQUEST_INVALID
            )
        participants = tuple(sorted(sites))
        if not protocol.threshold_ok(request.threshold, len(participants)):
            raise _fail(
                f"threshold {request.threshold} is unsafe for {len(participants)} "
                "sites: it must exceed half of them"
            )
        mine = load_or_create_key(self._dir)
        own = keys.make_bundle(self._identity, mine)
        me = [
            p.site
            for p in request.participants
            if p.bundle.key == own.key and keys.bundle_fingerprint(p.bundle) == self._fingerprint
        ]
        if len(me) != 1:
            raise _fail("this node's own key is not among the session's participants")
        peers = {p.site: p.bundle for p in request.participants if p.site != me[0]}
        verified = {s: keys.verify_bundle(b, s) for s, b in peers.items()}  # then pin
        check_and_pin(self._dir, {s: keys.bundle_fingerprint(b) for s, b in peers.items()})
        pair_keys = {
            s: keys.pair_key(mine, key, request.session, (me[0], s)) for s, key in verified.items()
        }
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    insert(secagg_session).values(
                        session_id=request.session, created_at=time.time()
                    )
                )
        except IntegrityError:
            raise _fail(
                f"session {request.session} was set up before; a session id is accepted once"
            ) from None
        state = _Session(request.session, me[0], participants, request.threshold, pair_keys)
        with self._lock:
            self._expire()
            self._sessions[request.session] = state
            shares = self._prepare(state)
        return SetupAnswer(site=me[0], shares=shares)

    def _expire(self) -> None:
        now = time.monotonic()
        for sid in [s for s, v in self._sessions.items() if now - v.created > SESSION_TTL]:
            del self._sessions[sid]
        while len(self._sessions) >= MAX_SESSIONS:
            del self._sessions[min(self._sessions, key=lambda s: self._sessions[s].created)]

    def _secret(self, state: _Session, round_: int, self_seed: bytes) -> list[int]:
        pairs = [
            pair_seed(state.pair_keys[v], state.session, round_, state.me, v)
            for v in protocol.others(state.participants, state.me)
        ]
        return [protocol.seed_int(self_seed)] + [protocol.seed_int(s) for s in pairs]

    def _prepare(self, state: _Session) -> dict[str, str]:
        """Draw the next round's self-mask seed; share the round's secrets, sealed."""
        round_ = state.next_round
        seed = secrets.token_bytes(SEED_BYTES)
        holders = {protocol.holder(state.participants, s): s for s in state.participants}
        shares = shamir.split(self._secret(state, round_, seed), list(holders), state.threshold)
        state.next_seed = seed
        state.next_share = shares[protocol.holder(state.participants, state.me)]
        return {
            site: keys.seal(
                state.pair_keys[site], state.session, round_, state.me, site, shamir.pack(shares[x])
            )
            for x, site in holders.items()
            if site != state.me
        }

    # -- masking ----------------------------------------------------------------------
    def _state(self, session: str) -> _Session:
        state = self._sessions.get(session)
        if state is None:
            raise _fail(
                f"this node has no session {session} (it may have restarted); the "
                "coordinator counts it as dropped"
            )
        return state

    def check(self, task: SecureTask) -> None:
        """Refuse a secure task that cannot be masked, before anything is computed."""
        with self._lock:
            self._check(task)

    def _check(self, task: SecureTask) -> _Session:
        state = self._state(task.session)
        if task.round != state.next_round:
            raise _fail(
                f"round {task.round} of session {task.session} is not the next "
                f"round ({state.next_round}); rounds are used once, in order"
            )
        wanted = set(task.participants)
        if (
            task.participants != sorted(wanted)
            or not wanted <= set(state.participants)
            or state.me not in wanted
        ):
            raise _fail(
                "the round's participants must be sorted, belong to the session "
                "and include this site"
            )
        if len(wanted) < state.threshold:
            raise _fail(
                f"{len(wanted)} participants are fewer than the threshold {state.threshold}"
            )
        return state

    def mask(
        self, task: SecureTask, vector: npt.NDArray[np.float64], where: str
    ) -> tuple[str, dict[str, str]]:
        """The masked vector (base64) and the next round's sealed shares."""
        with self._lock:
            state = self._check(task)
            encoded = fixedpoint.encode(vector, len(task.participants), where)
            pairs = {
                v: pair_seed(state.pair_keys[v], state.session, task.round, state.me, v)
                for v in task.participants
                if v != state.me
            }
            masked = fixedpoint.to_bytes(protocol.mask(encoded, state.next_seed, pairs, state.me))
            state.rounds[task.round] = _Round(tuple(task.participants), state.next_share)
            state.next_round += 1
            shares = self._prepare(state)
        return keys.b64(masked), shares

    # -- unmasking --------------------------------------------------------------------
    def unmask(self, request: UnmaskRequest) -> UnmaskAnswer:
        """This node's shares of the survivors' self seeds and the dropped sites' pair seeds."""
        with self._lock:
            state = self._state(request.session)
            done = state.rounds.get(request.round)
            if done is None:
                raise _fail(f"this node did not mask round {request.round}")
            survivors, dropped = set(request.survivors), set(request.dropped)
            if (
                survivors & dropped
                or survivors | dropped != set(done.participants)
                or state.me not in survivors
            ):
                raise _fail(
                    "survivors and dropped sites must split the round's participants, "
                    "with this site among the survivors"
                )
            if len(survivors) < state.threshold:
                raise _fail(
                    f"only {len(survivors)} sites answered; the masks can be removed "
                    f"with at least {state.threshold}"
                )
            wanted = {s: "self" for s in survivors} | {s: "pairs" for s in dropped}
            clash = [s for s, kind in wanted.items() if done.revealed.get(s, kind) != kind]
            if clash:
                raise _fail(
                    f"asked to reveal both secrets of {', '.join(sorted(clash))} in "
                    f"round {request.round}; refused"
                )
            done.revealed.update(wanted)
            held = {state.me: done.own_share}
            for sender in done.participants:
                if sender == state.me:
                    continue
                sealed = request.shares.get(sender)
                if sealed is None:
                    raise _fail(f"the shares from {sender} for round {request.round} are missing")
                held[sender] = shamir.unpack(
                    keys.unseal(
                        state.pair_keys[sender],
                        state.session,
                        request.round,
                        sender,
                        state.me,
                        sealed,
                    )
                )
            self_masks = {s: f"{held[s][0]:x}" for s in sorted(survivors)}
            pair_seeds = {}
            for gone in sorted(dropped):
                order = protocol.others(state.participants, gone)
                pair_seeds[gone] = {
                    s: f"{held[gone][1 + order.index(s)]:x}" for s in sorted(survivors)
                }
        return UnmaskAnswer(site=state.me, self_masks=self_masks, pair_seeds=pair_seeds)
