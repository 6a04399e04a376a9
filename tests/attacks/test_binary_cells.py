"""Attack class 8: the mean of a 0/1 variable is a two-cell table.

``n · mean`` of a binary variable is the count of its 1s (and ``n`` minus it the count of
0s). Only three persons used esketamine — the target and two other women of site ``a`` —
so a summary tells that exactly three did, a count far below the minimum cell.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.attacks.support import (
    MIN_CELL,
    TARGET,
    Consortium,
    assert_details_clean,
    cohort_all,
    cond,
    ok,
    summary_of,
)

pytestmark = pytest.mark.xdist_group("attacks")


@pytest.mark.parametrize(
    "cohort",
    [
        pytest.param(None, id="everyone"),
        pytest.param(cohort_all(cond("site", "==", TARGET.site)), id="target-site"),
        pytest.param(cohort_all(cond("sex", "==", TARGET.sex)), id="women"),
    ],
)
def test_binary_mean_does_not_release_a_small_count(
    fresh: Consortium, cohort: dict[str, Any] | None
) -> None:
    """Class 8, binary means are 2-cell tables. ``summary [esketamine]``: ``n · mean`` is the
    number of users (3) and ``n`` minus it the non-users. Stopped by: the counts of 1s and
    0s of a 0/1 variable are cells (``cell_too_small``)."""
    request: dict[str, Any] = {"analysis": "summary", "variables": ["esketamine"]}
    if cohort is not None:
        request["cohort"] = cohort
    envelope = fresh.run(request)

    small: list[int] = []
    if ok(envelope):
        s = summary_of(envelope, "esketamine")
        ones = round(s["n"] * s["mean"])
        small = [c for c in (ones, s["n"] - ones) if 0 < c < MIN_CELL]
    assert small == [], f"a summary released {small} persons with one value of a 0/1 variable"
    if not ok(envelope):
        reason = envelope["reason"] or {}
        assert "cell_too_small" in (reason.get("sites") or {}).values(), reason
    assert_details_clean(fresh.log)
