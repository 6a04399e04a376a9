"""Attack class 2: a design column that is non-zero for one row only.

``I(2*exp(-((age-41)*100)**2))`` is 2 for the one person aged 41 and exactly 0 for
everyone else (the exponent underflows), and it is not a 0/1 column, so its sum is not
checked as a count. A model with that column fits the target's row exactly:
``Intercept + 2·slope`` is the target's outcome.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.attacks.support import (
    TARGET,
    Consortium,
    assert_details_clean,
    close_to,
    ok,
)

pytestmark = pytest.mark.xdist_group("attacks")

SPIKE = "I(2*exp(-((age-41)*100)**2))"
MARGIN = 2.0  # MADRS points


def spike_estimate(envelope: dict[str, Any]) -> float | None:
    """``Intercept + 2·slope`` of the spike column, when the model was answered."""
    if not ok(envelope):
        return None
    result = envelope["result"]
    rows = result.get("coefficients") or result.get("fixed_effects") or []
    terms = {row["term"]: float(row["estimate"]) for row in rows}
    slopes = [v for k, v in terms.items() if k != "Intercept"]
    if "Intercept" not in terms or len(slopes) != 1:
        return None
    return terms["Intercept"] + 2.0 * slopes[0]


@pytest.mark.parametrize(
    "request_",
    [
        pytest.param({"analysis": "ols"}, id="ols"),
        pytest.param({"analysis": "glm", "family": "gaussian"}, id="glm-gaussian"),
        pytest.param({"analysis": "lmm"}, id="lmm"),
    ],
)
def test_spike_column_gives_the_target_outcome(fresh: Consortium, request_: dict[str, Any]) -> None:
    """Class 2, design columns that isolate a person (linear models). ``madrs_total ~
    SPIKE`` by ols, gaussian glm and lmm: ``Intercept + 2·slope`` is the target's MADRS.
    Stopped by: ``column_too_thin`` (a non-constant design column with fewer than
    min_cell rows off its most common value) and ``leverage_too_high``."""
    envelope = fresh.run({**request_, "formula": f"madrs_total ~ {SPIKE}"})
    estimate = spike_estimate(envelope)
    assert not close_to(estimate, TARGET.madrs_total, MARGIN), (
        f"{request_['analysis']}: the target's MADRS recovered as {estimate} "
        f"(true {TARGET.madrs_total})"
    )
    assert_details_clean(fresh.log)


def test_spike_column_gives_the_target_binary_outcome(fresh: Consortium) -> None:
    """Class 2, design columns that isolate a person (logistic model). ``ketamine ~
    SPIKE`` (binomial glm): the spike's coefficient runs off towards the side of the
    target's own outcome, so the sign of ``Intercept + 2·slope`` (beyond ±3, a probability
    past 0.95) is the target's ketamine use. Stopped by: ``column_too_thin``."""
    envelope = fresh.run(
        {"analysis": "glm", "family": "binomial", "formula": f"ketamine ~ {SPIKE}"}
    )
    logit = spike_estimate(envelope)
    estimate = None if logit is None or abs(logit) < 3 else float(logit > 0)
    assert estimate != TARGET.ketamine, (
        f"the target's ketamine use recovered from the logit {logit} (true {TARGET.ketamine})"
    )
    assert_details_clean(fresh.log)


def test_spike_column_in_a_cox_model(fresh: Consortium) -> None:
    """Class 2, design columns that isolate a person (Cox model). ``cox time_to_relapse,
    relapse ~ SPIKE``: the spike's log hazard ratio runs off to −∞ when the target stayed
    relapse-free while others relapsed (+∞ had they relapsed first), so its sign beyond ±3
    is the target's relapse status. Today the run does not even finish: the coordinator
    raises ``OverflowError`` computing ``exp(estimate + 1.96·std_error)`` for the huge
    standard error (an unhandled exception, not an envelope). Stopped by:
    ``column_too_thin``; every request must end in an envelope."""
    try:
        envelope = fresh.run(
            {
                "analysis": "cox",
                "time": "time_to_relapse",
                "event": "relapse",
                "formula": SPIKE,
            }
        )
    except Exception as exc:  # the coordinator must answer with an envelope
        pytest.fail(f"the coordinator raised {type(exc).__name__}: {exc}")
    estimate = None
    if ok(envelope):
        rows = envelope["result"]["coefficients"]
        (slope,) = (float(r["estimate"]) for r in rows if r["term"] != "Intercept")
        estimate = None if abs(slope) < 3 else float(slope > 0)
    assert estimate != TARGET.relapse, f"the target's relapse status recovered ({estimate})"
    assert_details_clean(fresh.log)


@pytest.mark.parametrize(
    "formula",
    [
        # a degree-1 B-spline with knots around 41: the hat on (40, 42) is the target's alone
        "madrs_total ~ bs(age, knots=[40, 41, 42], lower_bound=12, upper_bound=110, degree=1)",
        # a linear spline whose middle segment holds only the target
        "madrs_total ~ lspline(age, [40, 42])",
    ],
    ids=["bs-hat", "lspline-segment"],
)
def test_spline_knots_aimed_at_the_target(fresh: Consortium, formula: str) -> None:
    """Class 2 through public knots. Knots are the researcher's to choose, so they can
    be placed around the one person aged 41: a B-spline basis function that is non-zero
    for the target alone is a spike column, and a linear-spline segment that only the
    target falls into carries the target's row. Stopped by: the rules for any other
    design column (``cell_too_small`` for a 0/1 hat, ``column_too_thin``,
    ``leverage_too_high``)."""
    envelope = fresh.run({"analysis": "ols", "formula": formula})
    if ok(envelope):  # whatever answered must not give the target's MADRS away
        predicted = _predict_target(envelope["result"]["coefficients"])
        assert not close_to(predicted, TARGET.madrs_total, MARGIN), predicted
    else:
        codes = set((envelope.get("reason") or {}).get("sites", {}).values())
        assert codes <= {"cell_too_small", "column_too_thin", "leverage_too_high"}, envelope
    assert_details_clean(fresh.log)


def _predict_target(rows: list[dict[str, Any]]) -> float | None:
    """The fitted value at the target's age (41), from the spline coefficients."""
    terms = {row["term"]: float(row["estimate"]) for row in rows}
    at_41 = {"[1]": 40.0, "[2]": 1.0, "[3]": 0.0}  # lspline(age, [40, 42]) at 41
    if any(t.startswith("bs(") for t in terms):
        at_41 = {"[1]": 0.0, "[2]": 1.0, "[3]": 0.0, "[4]": 0.0}  # the hat's peak
    total = terms.get("Intercept", 0.0)
    for term, value in terms.items():
        for suffix, x in at_41.items():
            if term.endswith(suffix):
                total += value * x
    return total
