"""Nonces already used by signed requests, kept in the store so restarts cannot replay.

A signed request is accepted only while its timestamp is within ``±window`` seconds of
the node's clock, so a nonce has to be remembered only until no request carrying it can
pass the time check again. A nonce first seen at ``seen_at`` belongs to a request with
timestamp ``t >= seen_at - window``, which stops passing the time check after
``t + window <= seen_at + 2·window``; entries older than twice the window are therefore
pruned without opening a replay gap.
"""

from __future__ import annotations

import logging
import math

from sqlalchemy import Connection, Engine, delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from node.store.tables import nonce as nonce_table

logger = logging.getLogger(__name__)

DEFAULT_WINDOW = 300.0


class NonceStore:
    """Used nonces in the ``nonce`` table; shared by every process on the same store."""

    def __init__(self, engine: Engine, window: float = DEFAULT_WINDOW) -> None:
        if window <= 0:
            raise ValueError("the nonce window must be positive")
        self._engine = engine
        self.window = window
        self._pruned_at = -math.inf

    def seen(self, nonce: str) -> bool:
        """Whether ``nonce`` has been recorded (and not yet pruned)."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(nonce_table.c.nonce).where(nonce_table.c.nonce == nonce)
            ).first()
        return row is not None

    def record(self, nonce: str, now: float) -> bool:
        """Record ``nonce`` as used at ``now``; False when it was already recorded.

        Check and record are one INSERT against the primary key, so two requests racing
        with the same nonce cannot both succeed. Expired entries are pruned in the same
        transaction, at most once per tenth of the window (not a commit per request).
        """
        prune = now - self._pruned_at >= self.window / 10
        try:
            with self._engine.begin() as conn:
                if prune:
                    self._prune(conn, now)
                conn.execute(insert(nonce_table).values(nonce=nonce, seen_at=now))
        except IntegrityError:
            logger.info("nonce %s was already used", nonce)
            return False
        if prune:
            self._pruned_at = now
        return True

    def prune(self, now: float) -> int:
        """Forget nonces seen more than ``2·window`` before ``now``; how many went."""
        with self._engine.begin() as conn:
            return self._prune(conn, now)

    def _prune(self, conn: Connection, now: float) -> int:
        result = conn.execute(
            delete(nonce_table).where(nonce_table.c.seen_at < now - 2 * self.window)
        )
        return int(result.rowcount)

    def __len__(self) -> int:
        with self._engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(nonce_table)).scalar_one())
