"""Attack class 7: Kaplan–Meier ``at_risk`` counts persons leaving follow-up.

Only events per interval were cells. ``at_risk`` at consecutive reported times differs by
the events *and the censored persons* of the interval, so a drop of 1 or 2 between two
grid points in an interval without events tells that one or two persons were censored
then — the target is the only person whose follow-up ends between days 1100 and 1400.
"""

from __future__ import annotations

import pytest

from tests.attacks.support import (
    MIN_CELL,
    TARGET,
    Consortium,
    assert_details_clean,
    close_to,
    cohort_all,
    cond,
    ok,
)

pytestmark = pytest.mark.xdist_group("attacks")

MARGIN = 50.0  # days


def test_at_risk_does_not_reveal_a_censoring_time(fresh: Consortium) -> None:
    """Class 7, survival exits. ``kaplan_meier time_to_relapse, relapse`` on site ``a``
    alone (a ``site`` cohort condition, so ``at_risk`` is one site's), grid every 100 days:
    the interval where ``at_risk`` drops by exactly one with no event, between days 1100
    and 1400, dates the target's end of follow-up (1234). Stopped by: exits (events +
    censored) per reported interval are cells (0 or ≥ min_cell) and the coordinator merges
    intervals until they are."""
    envelope = fresh.run(
        {
            "analysis": "kaplan_meier",
            "time": "time_to_relapse",
            "event": "relapse",
            "grid": list(range(100, 2001, 100)),
            "cohort": cohort_all(cond("site", "==", TARGET.site)),
        }
    )

    estimate = None
    small_exits: list[tuple[float, float, int]] = []
    if ok(envelope):
        curve = envelope["result"]["groups"]["all"]
        times = [0.0, *curve["time"]]
        at_risk = [envelope["result"]["n"], *curve["at_risk"]]
        for j in range(1, len(times)):
            exits = at_risk[j - 1] - at_risk[j]
            if 0 < exits < MIN_CELL:
                small_exits.append((times[j - 1], times[j], exits))
            inside = times[j - 1] >= 1100 and times[j] <= 1400
            if inside and exits == 1 and curve["events"][j - 1] == 0:
                estimate = (times[j - 1] + times[j]) / 2

    assert not close_to(estimate, TARGET.followup_days, MARGIN), (
        f"the target's end of follow-up dated to {estimate} (true {TARGET.followup_days})"
    )
    assert small_exits == [], f"intervals with 1..{MIN_CELL - 1} exits: {small_exits}"
    assert_details_clean(fresh.log)
