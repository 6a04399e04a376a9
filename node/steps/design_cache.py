"""A job's designs, built once and reused by the job's later rounds.

An iterative analysis asks a node for the same design round after round: a GLM's Newton
rounds send one ``glm_score`` step each, differing only in ``β``. The design (``X``,
``y``, the rows read and used) and what the gate learns from it alone — the disclosure
(cells, support, leverage, dominance), the row sets the differencing guard checks and the
weighted sums the query memory remembers — do not depend on ``β``, so a node builds them
once per job and reuses them in the job's later rounds (:func:`node.steps.design.prepared`).

**What a design is kept under.** The job as the signed task names it (its id, project and
researcher, and the key that signed it: :class:`JobScope`), every field of the step the
design depends on (formula, categories, columns, visit, cohort) and the data version of
the frame source it was read from (the store's version and the dictionary hash:
:class:`node.data.source.Versioned`). A round of another job — the same formula and
cohort included — builds its own design, and so does a round of the same job asking
another cohort. A design is kept only when the version read before its rows equals the
version read after (no change of the store under the build), and the first round that
sees another version drops every design of the old one: a round after an ingest or a
committed derivation answers from the new data, exactly as it would without this cache
(a GLM's coordinator then stops the job if its row count changed). Refusing such a round
instead would make an answer depend on whether its design happened to be still kept.

**What is not skipped.** Only the computation is reused: every round still passes the
whole gate — the read rules of the sources the step reads through (a project's variables,
a cohort testing a variable the step reads: :func:`node.steps.design.readable`), the
disclosure rules, the differencing guard and the query memory against
everything answered since, differential privacy and secure aggregation, the audit log
and the ledger. A reused design's row counts are noted again (:mod:`node.data.watch`), so
a round failing on a small cohort is refused as the first would have been. Its arrays
are read-only: a handler cannot change what a later round reads.

**Bounded.** At most :data:`KEPT_BYTES` of arrays in at most :data:`KEPT_DESIGNS`
designs; the least recently used go first, and a design larger than the whole budget is
not kept.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from node.data.watch import Watched, note_rows, watching

logger = logging.getLogger(__name__)

KEPT_BYTES = 256 * 2**20
"""Bytes of arrays the node keeps in designs across rounds."""
KEPT_DESIGNS = 32
"""Designs the node keeps across rounds."""


@dataclass(frozen=True)
class JobScope:
    """Whose rounds may share a design: one job of one project's researcher, signed by
    one coordinator key."""

    signer: str
    job_id: str
    project: str | None
    researcher: str | None


class Measured(Protocol):
    """What the cache keeps: the bytes of its arrays are known."""

    @property
    def nbytes(self) -> int: ...


T = TypeVar("T", bound=Measured)


@dataclass(frozen=True)
class _Kept(Generic[T]):
    value: T
    noted: tuple[int, ...]  # the row counts noted while it was built


class DesignCache(Generic[T]):
    """Designs by (job, step fields, data version), least recently used dropped first.

    ``built`` and ``reused`` count the designs built under a job and the rounds that
    reused one."""

    def __init__(self, max_bytes: int = KEPT_BYTES, max_designs: int = KEPT_DESIGNS) -> None:
        self.max_bytes = max_bytes
        self.max_designs = max_designs
        self.built = 0
        self.reused = 0
        self._kept: OrderedDict[Hashable, _Kept[T]] = OrderedDict()
        self._version: str | None = None
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._kept)

    @property
    def nbytes(self) -> int:
        """Bytes of arrays held now."""
        return self._bytes

    def get_or_build(
        self,
        key: Hashable,
        version: Callable[[], str | None],
        build: Callable[[], T],
        kept_as: Callable[[T], Hashable] | None = None,
    ) -> T:
        """The value kept under ``(key, version())``, else ``build()``, kept (when the
        version did not change while it ran) under ``kept_as(value)`` or ``key``."""
        before = version()
        if before is None:
            return build()
        found = self._get((key, before))
        if found is not None:
            for count in found.noted:
                note_rows(count)
            logger.debug("design reused")
            return found.value
        seen = Watched()
        try:
            with watching() as seen:
                value = build()
        finally:
            for count in seen.counts:  # the running step's watcher sees them too
                note_rows(count)
        kept = (key if kept_as is None else kept_as(value), before)
        self._put(kept, version() == before, _Kept(value, tuple(seen.counts)))
        return value

    def _get(self, key: tuple[Hashable, str]) -> _Kept[T] | None:
        with self._lock:
            self._see(key[1])
            found = self._kept.get(key)
            if found is not None:
                self._kept.move_to_end(key)
                self.reused += 1
            return found

    def _put(self, key: tuple[Hashable, str], unchanged: bool, kept: _Kept[T]) -> None:
        """Keep ``kept`` unless the store changed while it was built or another version
        has been seen since."""
        size = kept.value.nbytes
        with self._lock:
            self.built += 1
            if not unchanged or key[1] != self._version or size > self.max_bytes:
                return
            old = self._kept.pop(key, None)
            self._bytes += size - (old.value.nbytes if old is not None else 0)
            self._kept[key] = kept
            while self._bytes > self.max_bytes or len(self._kept) > self.max_designs:
                _, dropped = self._kept.popitem(last=False)
                self._bytes -= dropped.value.nbytes

    def _see(self, version: str) -> None:
        """Drop every design of another data version when ``version`` is new."""
        if version != self._version:
            if self._kept:
                logger.info("designs of an older data version dropped")
            self._kept.clear()
            self._bytes = 0
            self._version = version


_current: ContextVar[tuple[DesignCache[Any], JobScope] | None] = ContextVar(
    "fedpsy_job_designs", default=None
)


@contextmanager
def job_designs(cache: DesignCache[Any], scope: JobScope) -> Iterator[None]:
    """Let the design steps run in this block keep and reuse designs of ``scope``."""
    token = _current.set((cache, scope))
    try:
        yield
    finally:
        _current.reset(token)


def current_job() -> tuple[DesignCache[Any], JobScope] | None:
    """The cache and job of the running step (None outside :func:`job_designs`)."""
    return _current.get()


__all__ = [
    "KEPT_BYTES",
    "KEPT_DESIGNS",
    "DesignCache",
    "JobScope",
    "Measured",
    "current_job",
    "job_designs",
]
