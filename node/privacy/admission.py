"""Admitting a step's answer: compute it under watch, then the gate's rules on what leaves.

Order for every task (after signature, policy and approval-app checks in
:mod:`node.service`):

1. the step computes on the node's rows while :mod:`node.data.watch` records every row count it
   touches; if it fails and any count was below ``min_cohort``, the failure becomes the
   size refusal, word for word, so a failure never tells more about a small cohort than
   the refusal would;
2. every set of rows the result counts (:attr:`Computed.used`: the rows read, the rows
   used after complete cases, a training phase's rows) must be empty or at least
   ``min_cohort`` rows;
3. the disclosure rules of :mod:`node.privacy.gate` on the rows actually used;
4. the differencing guard (:mod:`node.privacy.differencing`) on each of those sets (per variable,
   and per cohort definition), the memory of released sums (:mod:`node.privacy.queries`: two
   answers on one variable must not combine into one person's value) and, for a
   histogram, the memory of released edges (:mod:`node.privacy.intervals`). The memories
   remember what they admit; with manual approval the guard admits at the site's
   decision instead.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import math
from dataclasses import dataclass

import numpy as np
from sqlalchemy import Connection

from node.data.source import FrameSource
from node.data.watch import watching
from node.privacy.differencing import DifferencingGuard
from node.privacy.gate import check_disclosure, refuse_small_cohort
from node.privacy.intervals import IntervalMemory
from node.privacy.policy import Policy
from node.privacy.queries import QueryMemory
from node.steps.base import READ, USED, Computed, Use, to_bits
from node.steps.registry import run_step
from schemas.cohort import All, Condition
from schemas.errors import ErrorCode, FedpsyError
from schemas.steps.base import StepBase

logger = logging.getLogger(__name__)


def _finite(value: object) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list | tuple):
        return all(_finite(v) for v in value)
    return True


def compute(step: StepBase, source: FrameSource) -> Computed:
    """Run ``step``; parameters the computation cannot use are the request's fault (422),
    and a result that is not finite never leaves."""
    try:
        computed = run_step(step, source)
    except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
        logger.info("step failed", extra={"step": step.step, "error": type(exc).__name__})
        raise FedpsyError(
            f"step {step.step!r} cannot be computed with these parameters ({type(exc).__name__})",
            code=ErrorCode.REQUEST_INVALID,
        ) from None
    if not _finite(computed.result.model_dump()):
        raise FedpsyError(
            f"step {step.step!r} gives a result that is not finite with these parameters",
            code=ErrorCode.REQUEST_INVALID,
        )
    return computed


def definition_of(step: StepBase) -> str:
    """Digest of the cohort definition that selects a step's rows: its cohort (without
    top-level conditions on ``site``, which are constant at a node) and its visit."""
    cohort = step.cohort
    if isinstance(cohort, All):
        kept = [m for m in cohort.all if not (isinstance(m, Condition) and m.var == "site")]
        cohort = All(all=kept) if kept else None
    text = json.dumps(
        {"cohort": None if cohort is None else cohort.model_dump(mode="json"), "visit": step.visit},
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()


def pack(used: tuple[Use, ...]) -> list[list[str]]:
    """A step's usage with base64 bitsets (kept with a pending task until the site
    decides)."""
    return [[key, base64.b64encode(to_bits(rows).tobytes()).decode("ascii")] for key, rows in used]


def unpack(packed: list[list[str]]) -> tuple[Use, ...]:
    """The usage :func:`pack` stored."""
    out = []
    for key, text in packed:
        bits = np.frombuffer(base64.b64decode(text), dtype=np.uint8)
        out.append((key, np.flatnonzero(np.unpackbits(bits)).astype(np.int64)))
    return tuple(out)


@dataclass(frozen=True)
class Admission:
    """The gate for computed steps at one node."""

    policy: Policy
    guard: DifferencingGuard
    intervals: IntervalMemory
    queries: QueryMemory

    def compute(self, step: StepBase, source: FrameSource) -> Computed:
        """Compute ``step``; a failure on a cohort below the minimum is the size refusal."""
        with watching() as watched:
            try:
                return compute(step, source)
            except FedpsyError as exc:
                fewest = watched.fewest
                if fewest is not None and fewest < self.policy.min_cohort:
                    logger.info(
                        "step failed on a cohort below the minimum", extra={"code": exc.code}
                    )
                    refuse_small_cohort(self.policy, step.step)
                raise

    def check(self, analysis: str, step: StepBase, computed: Computed, dictionary: str) -> None:
        """Rules 2–4 of the module doc; the guard only checks here (:meth:`admit`
        remembers), the interval memory checks and remembers."""
        counted = [rows for key, rows in computed.used if key in (READ, USED) and rows.size]
        if any(rows.size < self.policy.min_cohort for rows in counted):
            refuse_small_cohort(self.policy, step.step)
        check_disclosure(self.policy, analysis, step.step, computed.disclosure)
        sets = [(key, rows) for key, rows in computed.used if rows.size]
        self.guard.check_all(sets, dictionary, definition_of(step))
        self.queries.admit(computed.queries, dictionary)
        if computed.intervals is not None:
            variable = computed.intervals.variable
            rows = next(rows for key, rows in computed.used if key == variable)
            self.intervals.admit(computed.intervals, rows, dictionary)

    def admit(
        self,
        step: StepBase,
        used: tuple[Use, ...],
        dictionary: str,
        conn: Connection | None = None,
    ) -> None:
        """Check and remember every set of ``step`` in the guard, in one transaction
        (``conn``'s, holding the guard's lock, else its own)."""
        sets = [(key, rows) for key, rows in used if rows.size]
        self.guard.admit_all(sets, dictionary, definition_of(step), conn)


__all__ = ["Admission", "compute", "pack", "unpack"]
