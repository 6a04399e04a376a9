"""Attack class 1: the rows a step uses differ from the rows the gate checked.

The differencing guard compared cohorts, while a step drops rows on its own (missing values,
transforms that are not finite). Two answers on the same cohort can then be sums over row
sets that differ by one person, and their difference is that person's value.
"""

from __future__ import annotations

import pytest

from tests.attacks.support import (
    TARGET,
    Consortium,
    assert_details_clean,
    close_to,
    coefficient,
    ok,
    site_n,
    summary_of,
    total_of,
)

pytestmark = pytest.mark.xdist_group("attacks")

MARGIN = 2.0  # MADRS points: an estimate this close is a disclosure of the score


def test_missing_covariate_drops_one_person_from_a_sum(fresh: Consortium) -> None:
    """Class 1, rows used ≠ rows checked (missing values). ``summary [madrs_total]`` on
    everyone, then ``ols madrs_total ~ 1 + hamd17_total`` (HAM-D missing for the target
    only) and ``summary [hamd17_total]``: ``Σ madrs − n·(b0 + b1·mean(hamd))`` is the
    target's MADRS. Stopped by: rows dropped for missing values are a cell (1..4 dropped
    rows → ``cell_too_small``) and the guard checks the rows actually used."""
    everyone = fresh.run({"analysis": "summary", "variables": ["madrs_total"]})
    model = fresh.run({"analysis": "ols", "formula": "madrs_total ~ 1 + hamd17_total"})
    hamd = fresh.run({"analysis": "summary", "variables": ["hamd17_total"]})

    estimate = None
    total = total_of(everyone, "madrs_total")
    if total is not None and ok(model) and ok(hamd):
        used = model["result"]["n"] * (
            coefficient(model, "Intercept")
            + coefficient(model, "hamd17_total") * summary_of(hamd, "hamd17_total")["mean"]
        )
        estimate = total - used

    assert not close_to(estimate, TARGET.madrs_total, MARGIN), (
        f"the target's MADRS recovered as {estimate} (true {TARGET.madrs_total})"
    )
    assert_details_clean(fresh.log)


def test_infinite_transform_drops_a_chosen_person_and_names_their_site(
    fresh: Consortium,
) -> None:
    """Class 1, rows used ≠ rows checked (non-finite transform). The outcome
    ``I(madrs_total - 1e-300*log((age-41)**2))`` equals MADRS for everyone but is infinite
    for the one person aged 41, whose row is dropped: ``Σ madrs − n·b0`` is the target's
    MADRS, and the per-site ``n`` that fell by one names the target's site. Stopped by:
    rows dropped for non-finite values are a cell (``cell_too_small``)."""
    everyone = fresh.run({"analysis": "summary", "variables": ["madrs_total"]})
    dropped = fresh.run(
        {"analysis": "ols", "formula": "I(madrs_total - 1e-300*log((age-41)**2)) ~ 1"}
    )

    estimate = None
    total = total_of(everyone, "madrs_total")
    if total is not None and ok(dropped):
        estimate = total - dropped["result"]["n"] * coefficient(dropped, "Intercept")
    located = []
    if ok(everyone) and ok(dropped):
        before, after = site_n(everyone), site_n(dropped)
        located = [s for s in before if 0 < before[s] - after.get(s, 0) < 5]

    assert not close_to(estimate, TARGET.madrs_total, MARGIN), (
        f"the target's MADRS recovered as {estimate} (true {TARGET.madrs_total})"
    )
    assert located == [], f"per-site n located the dropped person at {located}"
    assert_details_clean(fresh.log)
