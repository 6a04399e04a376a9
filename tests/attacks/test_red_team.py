"""Attacks an outside red team found against the first version of gate v2.

Each ran with documented requests only; each recovered the target's value exactly then.

* **Windows across two answers.** ``ols madrs_total ~ I(W(30, 41.05))`` and the same with
  ``W(30, 40.95)`` — steep sigmoid windows, neither a 0/1 column nor a thin one, each over
  everyone — release ``Σ W₁·madrs`` and ``Σ W₂·madrs``, whose difference is the one person
  aged 41's score. Stopped by the memory of released sums (:mod:`node.privacy.queries`): with an
  earlier answer on the same variable, some row's leverage would exceed ``max_leverage``.
* **The refusal as the answer.** ``count`` of a cohort ``K``, then of ``K ∪ {aged 41 with
  madrs ≥ v}``: "answered, same rows" meant ``madrs < v``, "refused, one person apart"
  meant ``madrs ≥ v``; a bisection on ``v`` found the score with no number released.
  Stopped by refusing the same rows under another cohort definition too.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.attacks.support import (
    TARGET,
    Consortium,
    assert_details_clean,
    close_to,
    cohort_all,
    cond,
    ok,
)

pytestmark = pytest.mark.xdist_group("attacks")


def window(low: float, high: float) -> str:
    """About 1 for ``low ≤ age ≤ high`` and 0 outside: a steep, smooth indicator."""
    return f"I((1/(1+exp(-1000*(age-{low}))))*(1/(1+exp(-1000*({high}-age)))))"


def inside_mean(envelope: dict[str, Any]) -> float | None:
    """``Intercept + slope``: the outcome's mean inside the window."""
    if not ok(envelope):
        return None
    terms = {r["term"]: float(r["estimate"]) for r in envelope["result"]["coefficients"]}
    return sum(terms.values())


def test_windows_of_two_answers_do_not_isolate_the_target(fresh: Consortium) -> None:
    """Two regressions on smooth windows one person apart; the counts inside each window
    come from ``I(W) ~ 1`` (the window's mean times ``n``)."""
    wide, narrow = window(30, 41.05), window(30, 40.95)
    means = [
        fresh.run({"analysis": "ols", "formula": f"madrs_total ~ {w}"}) for w in (wide, narrow)
    ]
    shares = [fresh.run({"analysis": "ols", "formula": f"{w} ~ 1"}) for w in (wide, narrow)]
    estimate = None
    inside = [inside_mean(m) for m in means]
    if all(ok(s) for s in shares) and None not in inside:
        counts = [s["result"]["n"] * s["result"]["coefficients"][0]["estimate"] for s in shares]
        estimate = counts[0] * inside[0] - counts[1] * inside[1]  # type: ignore[operator]
    assert not close_to(estimate, TARGET.madrs_total, 2.0), f"MADRS recovered: {estimate}"
    assert ok(means[0]), means[0]["reason"]
    assert means[1]["reason"]["sites"] == {TARGET.site: "differencing"}, means[1]["reason"]
    assert_details_clean(fresh.log)


def test_a_refusal_is_no_yes_no_answer(fresh: Consortium) -> None:
    """``count`` of ``K`` (site ``a``, aged under 30), then of ``K`` plus the target when
    ``madrs ≥ v``, for ``v`` below and above the target's 37: every second count is refused
    the same way, so the answers do not depend on the target's score."""
    site = cond("site", "==", TARGET.site)
    young = cond("age", "<", 30)
    first = fresh.run({"analysis": "count", "cohort": cohort_all(site, young)})
    assert ok(first), first["reason"]
    answers = set()
    for v in (10, 30, 36, 37, 38, 45, 60):
        target_if = cohort_all(
            cond("age", ">", 40.9), cond("age", "<", 41.1), cond("madrs_total", ">=", v)
        )
        padded = {"all": [site, {"any": [young, target_if]}]}
        envelope = fresh.run({"analysis": "count", "cohort": padded})
        answers.add((envelope["status"], repr(envelope["reason"])))
    assert len(answers) == 1, f"the answer depends on the target's score: {sorted(answers)}"
    ((status, reason),) = answers
    assert status == "refused" and "'a': 'differencing'" in reason
    assert_details_clean(fresh.log)


SPIKE = "10*exp(-((age-41)*10)**2)"  # 10 for the one person aged 41, 0 for everyone else


def test_a_spike_added_to_the_outcome_is_refused(fresh: Consortium) -> None:
    """Second round. ``ols age ~ madrs_total`` then ``ols I(age + spike) ~ madrs_total``:
    ``Xᵀy`` of the two differ by ``10·[1, madrs_t]``, so the coefficients' difference and
    ``XᵀX`` give the target's score. An outcome is a variable or log/log1p/sqrt/exp of one,
    so the second is a fault of the request."""
    first = fresh.run({"analysis": "ols", "formula": "age ~ madrs_total"})
    second = fresh.run({"analysis": "ols", "formula": f"I(age + {SPIKE}) ~ madrs_total"})
    assert ok(first), first["reason"]
    assert second["status"] == "error" and second["reason"]["code"] == "request_invalid"
    assert_details_clean(fresh.log)


def test_a_spike_in_a_predictor_after_swapping_roles_is_refused(fresh: Consortium) -> None:
    """Second round. ``ols age ~ madrs_total`` releases ``Σ age·madrs``; ``ols madrs_total ~
    I(age + spike)`` releases ``Σ (age + spike)·madrs``; the difference is ``10·madrs_t``.
    Both are sums of ``madrs_total``, weighted by ``age`` and by ``age + spike``: together
    they single out the target, so the memory of sums refuses the second."""
    first = fresh.run({"analysis": "ols", "formula": "age ~ madrs_total"})
    second = fresh.run({"analysis": "ols", "formula": f"madrs_total ~ I(age + {SPIKE})"})
    assert ok(first), first["reason"]
    assert second["status"] == "refused"
    assert set(second["reason"]["sites"].values()) == {"differencing"}
    assert_details_clean(fresh.log)


def test_a_binary_variable_in_other_units_is_still_a_two_cell_table(fresh: Consortium) -> None:
    """Second round. The mean of ``2·esketamine + 1`` counts the 3 users at site ``a`` as
    surely as the mean of ``esketamine``: any column with two values is a two-cell table."""
    a_only = cohort_all(cond("site", "==", TARGET.site))
    column = fresh.run(
        {"analysis": "ols", "formula": "age ~ I(2*esketamine + 1)", "cohort": a_only}
    )
    assert column["status"] == "refused"
    assert column["reason"]["sites"] == {TARGET.site: "cell_too_small"}
    assert_details_clean(fresh.log)


def test_a_nearly_binary_column_is_still_a_two_cell_table(fresh: Consortium) -> None:
    """Third round. ``esketamine + 1e-6·age`` is not exactly two-valued, yet its sums count
    the 3 users at site ``a`` (``ΣX²`` from the standard errors). A column whose values all
    lie within 0.1 % of its range from its two ends is a two-cell table."""
    a_only = cohort_all(cond("site", "==", TARGET.site))
    request = {"analysis": "ols", "formula": "age ~ I(esketamine + 1e-6*age)", "cohort": a_only}
    envelope = fresh.run(request)
    assert envelope["status"] == "refused"
    assert envelope["reason"]["sites"] == {TARGET.site: "cell_too_small"}
    assert_details_clean(fresh.log)
