"""A cohort may not select rows by the variable the answer releases, end to end (real nodes
over HTTP). Otherwise one request isolates the target: ``madrs_total in [v1, v2] or age ==
41`` pads the target (the only person aged 41) with persons whose ``madrs_total`` the cohort
fixes to two values, and the released n, mean and SD are two equations in how many padding
persons hold each value and the target's score; a level table of a variable the cohort
selects levels of gives a category the same way. And under a cohort, a zero count is
suppressed like a small one: a zero holds for every subset, so zero against suppressed
would tell whether one added person has the problem."""

from __future__ import annotations

import pandas as pd
import pytest

from node.data.checks import Suppression
from node.data.frame_memory import DataFrameSource
from node.privacy.separation import SeparatedSource
from schemas.cohort import All
from schemas.dictionary import load_dictionary
from schemas.errors import FedpsyError
from tests.attacks.support import TARGET, Consortium, assert_details_clean, cond

pytestmark = pytest.mark.xdist_group("attacks")


def _padded(var: str, op: str, value: object) -> dict[str, object]:
    """``site == a`` and (``var op value`` or the target's quasi-identifier)."""
    return {
        "all": [
            cond("site", "==", TARGET.site),
            {"any": [cond(var, op, value), cond("age", "==", TARGET.age)]},
        ]
    }


def test_a_summary_padded_by_its_own_variable_is_refused(fresh: Consortium) -> None:
    """The one-request attack on the target's MADRS: refused at the target's site, naming
    the rule; nothing about ``madrs_total`` leaves."""
    answer = fresh.run(
        {
            "analysis": "summary",
            "variables": ["madrs_total"],
            "cohort": _padded("madrs_total", "in", [18, 34]),
        }
    )
    assert answer["status"] == "refused", answer
    assert answer["reason"]["sites"] == {TARGET.site: "cohort_on_released"}
    assert "madrs_total" in answer["reason"]["detail"]
    assert_details_clean(fresh.log)


def test_a_level_table_padded_by_its_own_levels_leaves_nothing(fresh: Consortium) -> None:
    """``primary_diagnosis == F20 or age == 41``: the shares would be all F20 or not. The
    data-quality report withholds the variable at the target's site; a crosstab is
    refused."""
    cohort = _padded("primary_diagnosis", "==", "F20")
    report = fresh.run(
        {
            "analysis": "data_quality",
            "variables": ["primary_diagnosis"],
            "visits": ["baseline"],
            "cohort": cohort,
        }
    )
    if report["status"] == "ok":
        cell = report["result"]["report"]["primary_diagnosis"]["baseline"][TARGET.site]
        assert cell["shares"] is None and cell["n"] is None, cell
        assert cell["suppressed"] == ["cohort_on_released"], cell
    else:
        assert report["reason"]["sites"][TARGET.site] == "cohort_on_released", report
    table = fresh.run(
        {"analysis": "crosstab", "row": "primary_diagnosis", "column": "sex", "cohort": cohort}
    )
    assert table["reason"]["sites"][TARGET.site] == "cohort_on_released", table
    assert_details_clean(fresh.log)


def test_selecting_by_other_variables_is_still_answered(fresh: Consortium) -> None:
    """The rule does not stop ordinary subgroup questions: other variables, or levels of a
    categorical variable every row meets."""
    answer = fresh.run(
        {"analysis": "summary", "variables": ["madrs_total"], "cohort": _padded("sex", "==", "M")}
    )
    assert answer["status"] == "ok", answer["reason"]
    levels = fresh.run(
        {
            "analysis": "ttest",
            "variable": "madrs_total",
            "group": "primary_diagnosis",
            "cohort": {"all": [cond("primary_diagnosis", "in", ["F20", "F32"])]},
        }
    )
    assert levels["status"] == "ok", levels["reason"]


def test_a_list_of_values_of_a_numeric_released_variable_is_refused(fresh: Consortium) -> None:
    """``madrs_total in [18, 34, 37]`` in every row makes n, mean and SD three equations in
    how many hold each score: a frequency table whose cells no rule checked. A range is
    allowed (``age >= 18`` in a model of age)."""
    listed = fresh.run(
        {
            "analysis": "summary",
            "variables": ["madrs_total"],
            "cohort": {"all": [cond("madrs_total", "in", [18, 34, 37])]},
        }
    )
    assert listed["status"] == "refused", listed
    assert set(listed["reason"]["sites"].values()) == {"cohort_on_released"}
    ranged = fresh.run(
        {
            "analysis": "summary",
            "variables": ["age"],
            "cohort": {"all": [cond("age", ">=", 18)]},
        }
    )
    assert ranged["status"] == "ok", ranged["reason"]


def test_a_harmonized_copy_counts_as_its_variable() -> None:
    """``<code>_combat`` is an affine map of ``<code>`` per site: selecting by one and
    reading the other is the same attack."""
    frame = pd.DataFrame(
        {"person_id": ["p1", "p2"], "madrs_total": [20.0, 30.0], "madrs_total_combat": [0.1, 0.2]}
    )
    source = SeparatedSource(DataFrameSource("a", frame, {}), load_dictionary())
    cohort = All.model_validate({"all": [cond("madrs_total_combat", "in", [0.1])]})
    with pytest.raises(FedpsyError) as refused:
        source.frame(["madrs_total"], "baseline", cohort)
    assert refused.value.code == "cohort_on_released"
    assert len(source.frame(["madrs_total"], "baseline", None)) == 2
    present = All.model_validate({"all": [cond("madrs_total", "not_null")]})
    assert len(source.frame(["madrs_total"], "baseline", present)) == 2


def test_zero_counts_are_suppressed_under_a_cohort_only() -> None:
    """Whole-site zeros leave (they say nothing about one person); under a cohort a zero is
    suppressed like 1 .. min_cell − 1."""
    rule = Suppression(min_cell=5, dominance_percent=0.0)
    assert not rule.small(0) and rule.small(1) and not rule.small(5)
    narrowed = rule.within(All.model_validate({"all": [cond("age", ">", 60)]}))
    assert narrowed.small(0) and narrowed.small(4) and not narrowed.small(5)
    site_only = rule.within(All.model_validate({"all": [cond("site", "==", "a")]}))
    assert not site_only.small(0)
