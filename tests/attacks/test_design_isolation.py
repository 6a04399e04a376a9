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
