"""Differencing defence: refuse a cohort that is a small edit of one answered before.

Two answers about cohorts ``A`` and ``B`` that differ by a few persons reveal those
persons: ``count(A) - count(B)``, ``sum(A) - sum(B)`` and so on are statistics of the
symmetric difference ``A Δ B``. The node therefore remembers every row set it answered
from (as a bitset over ``person.row_id`` in ``answered_cohort``), with the variable whose
values the answer summed over those rows ("" for counts: the rows read and the rows
used), and refuses a new set ``C`` of a variable when ``1 <= |C Δ A| < min_cohort`` for
some remembered ``A`` of the same variable and dictionary hash. Asking the same set again
(``|C Δ A| = 0``) is allowed: it reveals nothing new — except that the rows an answer
*read* (its cohort at its visit) may not be the same persons as an earlier answer's under
another cohort definition (cohort and visit), because otherwise the refusal itself would
answer a question: with a cohort ``K ∪ {persons with P}`` next to an answered ``K``,
"answered" would mean nobody has ``P`` and "refused" that one to ``min_cohort − 1``
persons do, and a binary search on ``P`` (``madrs ≥ v``) would find a person's value
without any number being released. Every cohort shapes the rows read, so this is where
such padding shows; the rows a variable is summed over also depend on which variables are
missing, and two cohorts may well give a variable measured in a subgroup the same rows.
Keeping variables apart lets a researcher summarize ``age`` over everyone and
``madrs_total`` over those who have it: sums of different variables over nearby sets
isolate nobody's value, while any two sums of one variable, and any two counts, stay 0 or
at least ``min_cohort`` persons apart.

**Guarantee.** If every answer goes through :meth:`DifferencingGuard.admit` (or
:meth:`~DifferencingGuard.check` then :meth:`~DifferencingGuard.remember` with no other
answer in between), then for every pair of remembered cohorts ``A``, ``B`` under one
dictionary hash, ``|A Δ B| = 0`` or ``|A Δ B| >= min_cohort``. That is all it promises.
Only ``size`` is compared in SQL first (``|A Δ B| >= ||A| - |B||``), so a check reads only
the remembered cohorts whose size is within ``min_cohort - 1``; all the sets of one answer
are checked with one such read, and the differences to every remembered cohort read
are counted in one vectorized pass.

**What it does not cover** (the site's policy and review must):

* *Three or more answers.* Linear combinations of several answers can isolate a person
  even when every pair differs by at least ``min_cohort``: with disjoint ``P``, ``Q`` of
  5 persons and one person ``t``, the cohorts ``P ∪ {t}``, ``P ∪ Q`` and ``Q`` differ
  pairwise by 6, 11 and 5 persons, yet ``sum(P∪{t}) - sum(P∪Q) + sum(Q)`` is ``t``'s
  value. Closing this needs auditing the whole history of answers (Chin and Özsoyoglu,
  IEEE Trans. Softw. Eng. 8(6), 1982), which is intractable for some mixes of statistics
  (Kleinberg, Papadimitriou and Raghavan, PODS 2000), or noise (differential privacy).
* *Different visits.* Two answers on the same persons at different visits count as the
  same cohort. Callers must pass the rows an answer actually uses (after complete cases
  and transforms), per variable: the step handlers state them
  (:attr:`node.steps.base.Computed.used`).
* *Complements across the minimum and outside knowledge.* Only answers this node gave
  are remembered. A total the attacker knows from elsewhere (a publication, a registry,
  another site's description) is not: answering "everyone but X" with ``|X| < min_cohort``
  is refused only if "everyone" was answered here before.
* *Non-count statistics.* A maximum, a quantile or a model fitted on a cohort can reveal
  a single value even when no two cohorts are close; those are the gate's and the
  steps' concern.
* *Dictionary changes, other nodes, forgotten state.* Cohorts are compared only within
  one dictionary hash, so a new dictionary starts with an empty memory; each node
  remembers only its own answers; deleting the table (or a fresh store) forgets all.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, Engine, and_, func, insert, or_, select

from node.steps.base import READ, Bits, to_bits
from node.store.locking import locked
from node.store.tables import answered_cohort
from schemas.errors import ErrorCode, Refused

logger = logging.getLogger(__name__)


def difference_size(a: Bits, b: Bits) -> int:
    """``|A Δ B|`` for two packed bitsets of any lengths."""
    return int(difference_sizes(a, [b])[0])


def difference_sizes(a: Bits, others: Sequence[Bits]) -> npt.NDArray[np.int64]:
    """``|A Δ B|`` for every ``B`` of ``others`` (packed bitsets of any lengths), in one
    vectorized pass: 64 rows per word, one population count per word."""
    width = -(-max([a.size, *(b.size for b in others)]) // 8) * 8  # whole 64-bit words
    stacked = np.zeros((len(others), width), dtype=np.uint8)
    for i, b in enumerate(others):
        stacked[i, : b.size] = b
    padded = np.zeros(width, dtype=np.uint8)
    padded[: a.size] = a
    xor = np.bitwise_xor(stacked.view(np.uint64), padded.view(np.uint64))
    counts: npt.NDArray[np.int64] = np.bitwise_count(xor).sum(axis=1, dtype=np.int64)
    return counts


@dataclass(frozen=True)
class _Set:
    """One set of an answer: the variable its values are summed for, and its rows."""

    variable: str
    bits: Bits
    size: int

    @classmethod
    def of(cls, variable: str, rows: Iterable[int]) -> _Set:
        bits = to_bits(rows)
        return cls(variable, bits, int(np.bitwise_count(bits).sum(dtype=np.int64)))


@dataclass(frozen=True)
class _Stored:
    variable: str
    definition: str
    size: int
    bits: bytes


class DifferencingGuard:
    """Remembered answered cohorts and the rule that keeps new ones far from them.

    Every set of an answer is checked and remembered with one read of the remembered
    cohorts near any of them (by variable and size) and one write of the new ones."""

    def __init__(self, engine: Engine, min_cohort: int) -> None:
        if min_cohort < 1:
            raise ValueError("min_cohort must be at least 1")
        self._engine = engine
        self.min_cohort = min_cohort

    def check(
        self, row_ids: Iterable[int], dictionary_hash: str, variable: str = "", definition: str = ""
    ) -> None:
        """Refuse (code ``differencing``) a cohort too close to a remembered one (of the same
        ``variable``: "" for counts, else the variable an answer summed over the rows)."""
        self.check_all([(variable, row_ids)], dictionary_hash, definition)

    def check_all(
        self, sets: Iterable[tuple[str, Iterable[int]]], dictionary_hash: str, definition: str
    ) -> None:
        """:meth:`check` for every ``(variable, rows)`` of one answer."""
        packed = [_Set.of(variable, rows) for variable, rows in sets]
        with self._engine.connect() as conn:
            self._refuse_close(packed, self._near(conn, packed, dictionary_hash), definition)

    def remember(
        self, row_ids: Iterable[int], dictionary_hash: str, variable: str = "", definition: str = ""
    ) -> None:
        """Record an answered cohort (an identical one already remembered is not repeated)."""
        packed = [_Set.of(variable, row_ids)]
        with locked(self._engine, answered_cohort) as conn:
            near = self._near(conn, packed, dictionary_hash)
            self._remember(conn, packed, near, dictionary_hash, definition)

    def admit(
        self, row_ids: Iterable[int], dictionary_hash: str, variable: str = "", definition: str = ""
    ) -> None:
        """Check and remember in one locked transaction: the race-free way to answer.

        Remembering a cohort whose answer is later refused by another rule only makes
        future checks stricter, never weaker.
        """
        self.admit_all([(variable, row_ids)], dictionary_hash, definition)

    def admit_all(
        self,
        sets: Iterable[tuple[str, Iterable[int]]],
        dictionary_hash: str,
        definition: str,
        conn: Connection | None = None,
    ) -> None:
        """:meth:`admit` for every ``(variable, rows)`` of one answer in one locked
        transaction (``conn``'s, which must hold the lock on ``answered_cohort``, else its
        own): each is checked against what earlier answers left, not against the others
        of the same answer (its rows read and rows used differ by its ``missing``, a count
        it releases anyway)."""
        packed = [_Set.of(variable, rows) for variable, rows in sets]
        if conn is None:
            with locked(self._engine, answered_cohort) as own:
                self._admit(own, packed, dictionary_hash, definition)
        else:
            self._admit(conn, packed, dictionary_hash, definition)

    def _admit(
        self, conn: Connection, packed: list[_Set], dictionary_hash: str, definition: str
    ) -> None:
        near = self._near(conn, packed, dictionary_hash)
        self._refuse_close(packed, near, definition)
        self._remember(conn, packed, near, dictionary_hash, definition)

    def count(self, dictionary_hash: str | None = None) -> int:
        """How many cohorts are remembered (for one dictionary hash, or in all)."""
        query = select(func.count()).select_from(answered_cohort)
        if dictionary_hash is not None:
            query = query.where(answered_cohort.c.dictionary_hash == dictionary_hash)
        with self._engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def _near(self, conn: Connection, packed: list[_Set], dictionary_hash: str) -> list[_Stored]:
        """The remembered cohorts of the sets' variables whose size is within
        ``min_cohort - 1`` of some set of that variable (``|A Δ B| >= ||A| - |B||``)."""
        if not packed:
            return []
        reach = self.min_cohort - 1
        spans: dict[str, tuple[int, int]] = {}
        for one in packed:
            low, high = spans.get(one.variable, (one.size, one.size))
            spans[one.variable] = (min(low, one.size), max(high, one.size))
        c = answered_cohort.c
        found = conn.execute(
            select(c.variable, c.definition, c.size, c.bits).where(
                c.dictionary_hash == dictionary_hash,
                or_(
                    *(
                        and_(c.variable == v, c.size.between(low - reach, high + reach))
                        for v, (low, high) in spans.items()
                    )
                ),
            )
        )
        return [_Stored(v, d, int(n), bytes(b)) for v, d, n, b in found]

    def _refuse_close(self, packed: list[_Set], near: list[_Stored], definition: str) -> None:
        reach = self.min_cohort - 1
        for one in packed:
            stored = [
                s for s in near if s.variable == one.variable and abs(s.size - one.size) <= reach
            ]
            if not stored:
                continue
            apart = difference_sizes(
                one.bits, [np.frombuffer(s.bits, dtype=np.uint8) for s in stored]
            )
            close = (apart > 0) & (apart <= reach)
            if one.variable == READ:
                redefined = np.array([s.definition != definition for s in stored])
                close |= (apart == 0) & redefined
            if bool(close.any()):
                # one refusal for both: telling them apart would answer the question
                logger.info("refused rows close to an answered cohort's")
                raise Refused(
                    "the persons it would use are fewer than "
                    f"{self.min_cohort} apart from those of an answer this site gave "
                    "before (or the same persons under another cohort); ask with that "
                    "cohort, or widen or narrow it by at least that many",
                    code=ErrorCode.DIFFERENCING,
                )

    def _remember(
        self,
        conn: Connection,
        packed: list[_Set],
        near: list[_Stored],
        dictionary_hash: str,
        definition: str,
    ) -> None:
        """Insert the sets not remembered yet under ``definition`` (``near`` holds every
        remembered cohort of their variables and sizes)."""
        known = {(s.variable, s.bits) for s in near if s.definition == definition}
        fresh = []
        for one in packed:
            blob = one.bits.tobytes()
            if (one.variable, blob) in known:
                continue
            known.add((one.variable, blob))
            fresh.append(
                {
                    "dictionary_hash": dictionary_hash,
                    "variable": one.variable,
                    "definition": definition,
                    "size": one.size,
                    "bits": blob,
                }
            )
        if fresh:
            conn.execute(insert(answered_cohort), fresh)
