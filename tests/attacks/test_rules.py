"""The gate's new rules, each shown refusing its attack end to end (real nodes over HTTP).

Each test runs the attack, checks the attacker's estimate does not recover the target's
value, and checks which rule refused: the code site ``a`` (the target's) answered with.
"""

from __future__ import annotations

import math

import pytest

from tests.attacks.support import (
    TARGET,
    Consortium,
    Envelope,
    assert_details_clean,
    close_to,
    coefficient,
    cohort_all,
    cond,
    ok,
)

pytestmark = pytest.mark.xdist_group("attacks")


def site_codes(envelope: Envelope) -> dict[str, str]:
    reason = envelope.get("reason") or {}
    return {str(s): str(c) for s, c in (reason.get("sites") or {}).items()}


def assert_refused(envelope: Envelope, code: str) -> None:
    assert envelope["status"] == "refused", f"answered: {envelope['result']}"
    assert site_codes(envelope).get(TARGET.site) == code, envelope["reason"]


def only_slope(envelope: Envelope) -> float:
    rows = [r for r in envelope["result"]["coefficients"] if r["term"] != "Intercept"]
    assert len(rows) == 1
    return float(rows[0]["estimate"])


def test_rows_dropped_for_missing_values_cannot_be_differenced(fresh: Consortium) -> None:
    """Rule: the guard compares the rows each variable was summed over (class 1).
    ``ols age ~ hamd17_total`` (HAM-D missing for the target alone) sums ``age`` over
    everyone but the target (its ``missing`` of 1 leaves: a count of persons lacking a
    value), so with ``summary [age]`` the two sums of ``age`` differ by the target's age.
    Whichever comes second is refused ``differencing``; an outcome mixing variables
    (``I(age + 0*hamd17_total)``, to pick the rows without a design column) is refused as
    a request."""
    model = fresh.run({"analysis": "ols", "formula": "age ~ hamd17_total"})
    everyone = fresh.run({"analysis": "summary", "variables": ["age"]})
    assert ok(model), model["reason"]
    assert model["result"]["missing"] == 1  # a count of missing values leaves
    assert_refused(everyone, "differencing")
    mixed = fresh.run({"analysis": "ols", "formula": "I(age + 0*hamd17_total) ~ 1"})
    assert mixed["status"] == "error" and mixed["reason"]["code"] == "request_invalid"
    assert_details_clean(fresh.log)


def test_differencing_guard_checks_the_rows_used(fresh: Consortium) -> None:
    """Rule: the differencing guard compares the rows a step used (after complete cases),
    not its cohort. ``cgi_s`` is missing for five persons and ``bprs_total`` for the same
    five and the target: both drops are cells of at least 5, both cohorts are "everyone",
    yet the rows used differ by the target alone, so ``ols age ~ cgi_s`` and
    ``ols age ~ bprs_total`` sum ``age`` over sets one person apart. The second is refused
    ``differencing``."""
    first = fresh.run({"analysis": "ols", "formula": "age ~ cgi_s"})
    second = fresh.run({"analysis": "ols", "formula": "age ~ bprs_total"})
    assert ok(first), first["reason"]
    assert_refused(second, "differencing")
    assert_details_clean(fresh.log)


def test_high_leverage_row_is_refused(fresh: Consortium) -> None:
    """Rule ``leverage_too_high`` (class 2 without a thin or dominated column).
    ``madrs_total ~ education_years + I(education_years + 0.5*exp(-((age-41)*100)**2))``:
    each column takes many values (no "most common value" rule sees it) and no single
    value dominates either column's spread, but their difference is non-zero for the
    target alone, so the target's hat value is 1 and the fit passes through their MADRS
    (``b0 + b1·13 + b2·13.5``). Refused ``leverage_too_high``."""
    formula = "madrs_total ~ education_years + I(education_years + 0.5*exp(-((age-41)*100)**2))"
    model = fresh.run({"analysis": "ols", "formula": formula})
    estimate = None
    if ok(model):
        rows = [float(c["estimate"]) for c in model["result"]["coefficients"]]
        education = TARGET.education_years
        estimate = rows[0] + rows[1] * education + rows[2] * (education + 0.5)
    assert not close_to(estimate, TARGET.madrs_total, 2.0), f"MADRS recovered: {estimate}"
    assert_refused(model, "leverage_too_high")
    assert_details_clean(fresh.log)


def test_spread_spike_column_is_refused(fresh: Consortium) -> None:
    """Rule ``leverage_too_high`` (or ``dominance`` or the two-valued cells, which see the
    same row first): the
    column ``I(1/(1+((age-41)*10)**2) + 1e-9*education_years)`` takes a different value on
    nearly every row but is about 1 for the target and below 0.01 for everyone else; the
    fit passes through the target's MADRS (``b0 + b1·x_target``)."""
    term = "I(1/(1+((age-41)*10)**2) + 1e-9*education_years)"
    model = fresh.run({"analysis": "ols", "formula": f"madrs_total ~ {term}"})
    estimate = None
    if ok(model):
        x = 1 / (1 + ((TARGET.age - 41) * 10) ** 2) + 1e-9 * TARGET.education_years
        estimate = coefficient(model, "Intercept") + only_slope(model) * x
    assert not close_to(estimate, TARGET.madrs_total, 2.0), f"MADRS recovered: {estimate}"
    assert model["status"] == "refused", model["result"]
    # about 1 for one row and below 0.01 for the rest: nearly two-valued, a cell of one
    assert site_codes(model).get(TARGET.site) in {
        "leverage_too_high",
        "dominance",
        "cell_too_small",
    }
    assert_details_clean(fresh.log)


def test_thin_design_column_is_refused(fresh: Consortium) -> None:
    """Rule ``column_too_thin``. ``I(2*exp(-((age-65.3)*2)**8))`` is non-zero for the three
    persons aged 65.0–65.6 and exactly 0 for everyone else: its coefficient is a statistic
    of three persons. A non-constant design column with fewer than min_cell rows off its
    most common value is refused ``column_too_thin``."""
    model = fresh.run({"analysis": "ols", "formula": "madrs_total ~ I(2*exp(-((age-65.3)*2)**8))"})
    assert_refused(model, "column_too_thin")
    assert_details_clean(fresh.log)


def test_outcome_cells_of_a_binomial_model(fresh: Consortium) -> None:
    """Rule: outcome cells of a binomial model. ``glm esketamine ~ sex`` (binomial): the
    women have 3 users and the men none; the saturated fit gives ``n_F · σ(b0)`` = 3
    exactly (``n_F`` from a count). The outcome's 1s and 0s per level of a factor are cells:
    refused ``cell_too_small``."""
    women = fresh.run({"analysis": "count", "cohort": cohort_all(cond("sex", "==", "F"))})
    model = fresh.run({"analysis": "glm", "family": "binomial", "formula": "esketamine ~ sex"})
    users = None
    if ok(women) and ok(model):
        users = women["result"]["n"] / (1 + math.exp(-coefficient(model, "Intercept")))
    assert users is None or not 0.5 < users < 4.5, f"{users} women users of esketamine"
    assert_refused(model, "cell_too_small")
    assert_details_clean(fresh.log)
