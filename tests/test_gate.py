"""The gate's threshold rules: each refusal path, in order, never naming the protected value."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.privacy.gate import check_categories, check_disclosure
from node.privacy.policy import Policy
from schemas.errors import FedpsyError, Refused
from schemas.steps.base import Disclosure

POLICY = Policy()  # min_cell 5, min_cohort 5, min_model_rows 10, fraction 0.33


def refusal(disclosure: Disclosure, policy: Policy = POLICY, analysis: str = "crosstab") -> Refused:
    with pytest.raises(Refused) as caught:
        check_disclosure(policy, analysis, "tabulate", disclosure)
    return caught.value


def numbers_in(error: FedpsyError) -> set[str]:
    text = f"{error} {error.problem()}"
    return set(re.findall(r"\d+(?:\.\d+)?", text))


def test_allowed_disclosures_pass() -> None:
    check_disclosure(POLICY, "count", "count", Disclosure(rows=5))
    check_disclosure(POLICY, "crosstab", "tabulate", Disclosure(rows=12, cells=(5, 7, 0, 0)))
    check_disclosure(POLICY, "glm", "glm_newton", Disclosure(rows=40, parameters=4))
    check_disclosure(POLICY, "glm", "glm_newton", Disclosure(rows=10, parameters=1))


def test_analysis_not_allowed_comes_first() -> None:
    policy = Policy(allowed_analyses=("count",))
    error = refusal(Disclosure(rows=1, cells=(1,)), policy, analysis="crosstab")
    assert error.code == "analysis_not_allowed"
    assert "crosstab" in error.detail
    assert error.exit_code == 3 and error.http_status == 403


@pytest.mark.parametrize("rows", [0, 1, 2, 3, 4])
def test_small_cohorts_are_refused_without_their_size(rows: int) -> None:
    error = refusal(Disclosure(rows=rows), analysis="count")
    assert error.code == "cohort_too_small"
    assert numbers_in(error) <= {"5", "403"}


@pytest.mark.parametrize("small", [1, 2, 3, 4])
def test_small_cells_are_refused_without_their_value_or_position(small: int) -> None:
    error = refusal(Disclosure(rows=26, cells=(9, small, 13 - small, 0)))
    assert error.code == "cell_too_small"
    assert numbers_in(error) <= {"5", "403"}  # not the cell, its index, nor the rows


def test_zero_cells_are_allowed() -> None:
    check_disclosure(POLICY, "crosstab", "tabulate", Disclosure(rows=10, cells=(10, 0, 0, 0)))


@pytest.mark.parametrize("rows", [5, 7, 9])
def test_models_need_min_model_rows(rows: int) -> None:
    error = refusal(Disclosure(rows=rows, parameters=1), analysis="glm")
    assert error.code == "model_too_small"
    assert numbers_in(error) <= {"10", "403"}


def test_without_parameters_the_model_rules_do_not_apply() -> None:
    check_disclosure(POLICY, "summary", "moments", Disclosure(rows=6))


@pytest.mark.parametrize(("rows", "parameters"), [(39, 13), (10, 4), (99, 33)])
def test_too_many_parameters(rows: int, parameters: int) -> None:
    error = refusal(Disclosure(rows=rows, parameters=parameters), analysis="ols")
    assert error.code == "too_many_parameters"
    assert numbers_in(error) <= {str(parameters), "0.33", "403"}


def test_negative_counts_are_a_bug_not_a_refusal() -> None:
    with pytest.raises(FedpsyError) as caught:
        check_disclosure(POLICY, "count", "count", Disclosure(rows=10, cells=(-1, 11)))
    assert caught.value.code == "internal"


def test_categories() -> None:
    check_categories(POLICY, "diagnosis", 40)
    with pytest.raises(Refused) as caught:
        check_categories(POLICY, "diagnosis", 41)
    assert caught.value.code == "too_many_categories"
    assert "diagnosis" in caught.value.detail
    assert numbers_in(caught.value) <= {"40", "403"}


@given(
    rows=st.integers(0, 60),
    cells=st.lists(st.integers(0, 30), max_size=6),
    parameters=st.none() | st.integers(1, 8),
    min_cell=st.integers(1, 12),
    min_cohort=st.integers(1, 12),
)
def test_the_gate_refuses_exactly_what_the_rules_say(
    rows: int, cells: list[int], parameters: int | None, min_cell: int, min_cohort: int
) -> None:
    policy = Policy(min_cell=min_cell, min_cohort=min_cohort)
    disclosure = Disclosure(rows=rows, cells=tuple(cells), parameters=parameters)
    expected = None
    if rows < min_cohort:
        expected = "cohort_too_small"
    elif any(0 < c < min_cell for c in cells):
        expected = "cell_too_small"
    elif parameters is not None and rows < 10:
        expected = "model_too_small"
    elif parameters is not None and parameters > 0.33 * rows:
        expected = "too_many_parameters"
    if expected is None:
        check_disclosure(policy, "glm", "step", disclosure)
        return
    error = refusal(disclosure, policy, analysis="glm")
    assert error.code == expected
    public = {str(min_cell), str(min_cohort), "10", "0.33", "403", str(parameters)}
    assert numbers_in(error) <= public


@pytest.mark.parametrize(
    ("disclosure", "code"),
    [
        (Disclosure(rows=50, dropped=(3,)), "cell_too_small"),
        (Disclosure(rows=50, split=(4, 2, 2)), "split_too_small"),
        (Disclosure(rows=50, split=(20, 4, 16)), "split_too_small"),
        (Disclosure(rows=50, dominance=(0.02,)), "dominance"),
        (Disclosure(rows=50, parameters=2, support=(1, 40)), "column_too_thin"),
        (Disclosure(rows=50, parameters=2, leverage=0.93), "leverage_too_high"),
    ],
)
def test_each_new_rule_refuses_with_its_code_and_a_fix(disclosure: Disclosure, code: str) -> None:
    error = refusal(disclosure, analysis="glm")
    assert error.code == code
    assert numbers_in(error) <= {"5", "10", "0.5", "403"}  # thresholds only, never the value
    assert any(word in error.detail for word in ("add", "use", "clip", "drop"))


def test_new_rules_pass_what_they_allow() -> None:
    fine = Disclosure(
        rows=50,
        dropped=(0, 5),
        split=(10, 5, 5),
        dominance=(0.1, float("inf")),
        parameters=2,
        support=(5, 45),
        leverage=0.5,
    )
    check_disclosure(POLICY, "glm", "glm_score", fine)


def test_dominance_can_be_turned_off() -> None:
    check_disclosure(
        Policy(dominance_percent=0), "summary", "moments", Disclosure(rows=50, dominance=(0.0,))
    )
