"""The data-quality report under the gate's rules, end to end (real nodes over HTTP): a
report whose rows of a variable differ by the target from an earlier answer's withholds that
variable at the target's site (the differencing verdict, never a number), and the report
still answers for the other variables and sites."""

from __future__ import annotations

import pytest

from tests.attacks.support import TARGET, Consortium, assert_details_clean, ok

pytestmark = pytest.mark.xdist_group("attacks")


def test_a_report_differing_by_one_person_withholds_that_variable(fresh: Consortium) -> None:
    """``ols age ~ hamd17_total`` sums ``age`` over everyone but the target (HAM-D missing
    for the target alone); a report over everyone would sum ``age`` over the target too, so
    its mean and an earlier mean would give the target's age. The target's site withholds
    ``age`` (``differencing``) and answers for ``madrs_total``."""
    model = fresh.run({"analysis": "ols", "formula": "age ~ hamd17_total"})
    assert ok(model), model["reason"]
    report = fresh.run(
        {"analysis": "data_quality", "variables": ["age", "madrs_total"], "visits": ["baseline"]}
    )
    assert ok(report), report["reason"]
    age = report["result"]["report"]["age"]["baseline"][TARGET.site]
    assert age == {
        "n": None,
        "completeness": None,
        "mean": None,
        "sd": None,
        "smd": None,
        "shares": None,
        "implausible": None,
        "suppressed": ["differencing"],
    }
    madrs = report["result"]["report"]["madrs_total"]["baseline"][TARGET.site]
    assert madrs["n"] is not None and madrs["mean"] is not None
    assert report["result"]["report"]["age"]["baseline"]["b"]["mean"] is not None
    assert_details_clean(fresh.log)
