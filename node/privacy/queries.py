"""Memory of released sums: no two answers on one variable may combine into one person.

A model's statistics are weighted sums of a variable: ``Xᵀy`` sums the outcome with the
design columns as weights, ``XᵀX`` sums each predictor weighted by the others, a group
mean sums a variable over a group. One answer is checked on its own by the leverage rule
(:mod:`node.steps.disclosure`). Two answers on the same variable can still isolate a person:
``y ~ W₁`` and ``y ~ W₂`` with windows ``W₁ = [30 ≤ age ≤ 41.05]`` and ``W₂ = [30 ≤ age
≤ 40.95]`` (steep sigmoids, not 0/1) release ``Σ W₁y`` and ``Σ W₂y``, whose difference is
the one person aged 41's ``y``. In general, released sums ``Σ wᵢ yᵢ`` reveal ``y_t`` when
some combination of their weight vectors is the unit vector of ``t`` — when ``t``'s hat
value in the span of those vectors is 1 (Chin and Özsoyoglu, IEEE TSE 8(6), 1982, audit
sums this way). So the node remembers the weight vectors of every answer, per variable
(across visits: a person-level variable has one value at every visit, and rows are
persons), and refuses a new answer (``differencing``) when, together with any one
remembered answer on the same variable, some row's hat value exceeds ``max_leverage``.
Pairs only, as the differencing guard: combinations of three or more answers are the
residual the threat model names. An answer identical to a remembered one is not checked
again (its pairs were checked when either was first admitted).
"""

from __future__ import annotations

import logging
import zlib

import numpy as np
import numpy.typing as npt
from sqlalchemy import Engine, insert, select

from node.steps.base import Query, to_bits
from node.steps.disclosure import max_leverage
from node.store.locking import locked
from node.store.tables import released_query
from schemas.errors import ErrorCode, Refused

logger = logging.getLogger(__name__)


def combined_leverage(a: Query, b: Query) -> float:
    """The largest hat value of the two answers' weight vectors together, over the union
    of their rows (a vector is 0 on the rows outside its own)."""
    union = np.union1d(a.rows, b.rows)
    width = a.weights.shape[1] + b.weights.shape[1]
    matrix: npt.NDArray[np.float64] = np.zeros((len(union), width))
    matrix[np.searchsorted(union, a.rows), : a.weights.shape[1]] = a.weights
    matrix[np.searchsorted(union, b.rows), a.weights.shape[1] :] = b.weights
    found = max_leverage(matrix)
    return 0.0 if found is None else found


class QueryMemory:
    """Remembered answers per (dictionary, variable) and the pairwise rule."""

    def __init__(self, engine: Engine, max_leverage: float) -> None:
        self._engine = engine
        self.max_leverage = max_leverage

    def admit(self, queries: tuple[Query, ...], dictionary_hash: str) -> None:
        """Refuse when a new answer and a remembered one on the same variable isolate a
        row; else remember the new answers (in one locked transaction)."""
        c = released_query.c
        asked = [(q, q.digest) for q in queries if q.rows.size and q.weights.shape[1]]
        if not asked:
            return
        with locked(self._engine, released_query) as conn:
            found = conn.execute(
                select(c.variable, c.digest).where(
                    c.dictionary_hash == dictionary_hash,
                    c.digest.in_([digest for _, digest in asked]),
                )
            )
            known = {(str(variable), str(digest)) for variable, digest in found}
            fresh = []
            for query, digest in asked:
                if (query.variable, digest) in known:
                    continue
                key = (c.dictionary_hash == dictionary_hash, c.variable == query.variable)
                for bits, columns, weights in conn.execute(
                    select(c.bits, c.columns, c.weights).where(*key)
                ):
                    if (
                        combined_leverage(query, _stored(bits, columns, weights))
                        > self.max_leverage
                    ):
                        logger.info("refused an answer that combines with an earlier one")
                        raise Refused(
                            "together with an earlier answer on the same variable, a row "
                            "would have a hat value (leverage) above the site's maximum of "
                            f"{self.max_leverage:g}: the two answers would reveal one "
                            "person's value; use the earlier terms or cohort",
                            code=ErrorCode.DIFFERENCING,
                        )
                fresh.append((query, digest))
            for query, digest in fresh:
                conn.execute(
                    insert(released_query).values(
                        dictionary_hash=dictionary_hash,
                        variable=query.variable,
                        digest=digest,
                        bits=to_bits(query.rows).tobytes(),
                        columns=int(query.weights.shape[1]),
                        weights=zlib.compress(query.packed_weights()),
                    )
                )


def _stored(bits: bytes, columns: int, weights: bytes) -> Query:
    rows = np.flatnonzero(np.unpackbits(np.frombuffer(bits, dtype=np.uint8))).astype(np.int64)
    values = np.frombuffer(zlib.decompress(weights), dtype=np.float32).astype(np.float64)
    return Query("", rows, values.reshape(len(rows), columns))


__all__ = ["QueryMemory", "combined_leverage"]
