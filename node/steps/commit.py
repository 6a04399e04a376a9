"""Handler of ``commit_derived``: keep a staged run's values as variables of the node."""

from __future__ import annotations

import logging

from node.data.source import FrameSource
from node.data.staging import DerivedSink
from node.steps.base import USED, Computed
from node.steps.disclosure import row_ids
from schemas.errors import ErrorCode, FedpsyError
from schemas.steps.base import Disclosure
from schemas.steps.derived import CommitDerivedResult, CommitDerivedStep

logger = logging.getLogger(__name__)


def commit_derived(step: CommitDerivedStep, source: FrameSource) -> Computed:
    """Commit run ``step.run_id``; discloses only how many rows received a value."""
    if not isinstance(source, DerivedSink):
        raise FedpsyError(
            "this node cannot keep derived values; run the analysis without storing them",
            code=ErrorCode.DERIVED_UNSUPPORTED,
        )
    derived = source.commit_derived(step.run_id)
    valued = derived.values.notna().any(axis=1).to_numpy()
    rows = int(valued.sum())
    logger.info("committed run %s at %s: %d rows", step.run_id, source.site, rows)
    result = CommitDerivedResult(rows=rows, variables=derived.codes)
    return Computed(
        result, Disclosure(rows=rows), used=((USED, row_ids(derived.values.index[valued])),)
    )


__all__ = ["commit_derived"]
