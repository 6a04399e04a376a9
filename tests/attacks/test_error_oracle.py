"""Attack class 3: errors and refusals whose kind depends on the data.

On a cohort of one person (below the minimum, so never answered) the gate still ran the
step first: ``sqrt(T - madrs_total)`` is NaN when the target's MADRS exceeds ``T`` and the
step then failed with ``request_invalid``, while for ``T`` at or above the score it was
refused ``cohort_too_small``. Comparing the two across ``T`` is a binary search of the
score.
"""

from __future__ import annotations

import pytest

from tests.attacks.support import (
    TARGET,
    Consortium,
    Signature,
    assert_details_clean,
    bisect_oracle,
    cohort_all,
    cond,
    pinned,
    signature,
)

pytestmark = pytest.mark.xdist_group("attacks")


def test_failure_kind_on_a_one_person_cohort_is_no_oracle(fresh: Consortium) -> None:
    """Class 3, errors/refusals that depend on data. Cohort ``40.5 <= age <= 41.5`` (the
    target alone), ``ols madrs_total ~ I(sqrt(T - madrs_total))`` for a binary search over
    ``T`` in 0..60, telling ``T >= x`` from ``T < x`` by status and code. Stopped by: every
    failure on a cohort below the minimum looks exactly like the size refusal
    (``cohort_too_small``), and a transform that is not finite somewhere in its variables'
    declared ranges (``sqrt(T - madrs_total)`` for ``T`` below MADRS's maximum, 60) is a fault
    of the request, found on the dictionary before any row is read: the answer depends on
    ``T`` and the public range, never on the target's value."""
    alone = cohort_all(cond("age", ">=", 40.5), cond("age", "<=", 41.5))

    def probe(t: int) -> Signature:
        return signature(
            fresh.run(
                {
                    "analysis": "ols",
                    "formula": f"madrs_total ~ I(sqrt({t} - madrs_total))",
                    "cohort": alone,
                }
            )
        )

    bracket = bisect_oracle(probe, -1, 61)
    estimate = pinned(bracket)
    assert estimate != TARGET.madrs_total, f"the target's MADRS recovered as {estimate}"
    # around the target's value and below the declared maximum: one answer, the request's fault
    below = {probe(t) for t in (0, 20, 36, 37, 38, 59)}
    assert len(below) == 1, f"the answers depend on the data: {sorted(below)}"
    ((status, code, sites),) = below
    assert status == "error" and code == "request_invalid" and "cohort_too_small" not in sites
    # finite everywhere in the range: the size refusal, whatever T
    above = {probe(t) for t in (60, 61, 100)}
    assert len(above) == 1
    ((_, code, sites),) = above
    assert code == "refused" and "cohort_too_small" in sites
    assert_details_clean(fresh.log)
