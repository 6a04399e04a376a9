"""Attack class 9: refusal details that locate or describe rare persons.

Decision taken: a refusing site stays named in ``reason`` (a ``site`` cohort condition
finds it anyway). What a refusal must never carry is the protected value or a person id.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.attacks.support import (
    TARGET,
    Consortium,
    assert_details_clean,
    cohort_all,
    cond,
    details,
)

pytestmark = pytest.mark.xdist_group("attacks")

PERSON_ID = re.compile(r"\b[AB]-\d{5}\b")

TARGETED: list[dict[str, Any]] = [
    {"analysis": "count", "cohort": cohort_all(cond("age", "==", 41))},
    {
        "analysis": "summary",
        "variables": ["madrs_total", "dacc_glu", "followup_days"],
        "cohort": cohort_all(cond("age", "==", 41)),
    },
    {"analysis": "histogram", "variable": "dacc_glu", "edges": [0, 100, 1e7]},
    {"analysis": "quantiles", "variable": "dacc_glu", "probabilities": [0.5, 1.0]},
    {"analysis": "crosstab", "row": "esketamine", "column": "sex"},
    {"analysis": "ttest", "variable": "madrs_total", "group": "esketamine", "levels": ["1", "0"]},
    {"analysis": "ols", "formula": "madrs_total ~ I(2*exp(-((age-41)*100)**2))"},
    {"analysis": "ols", "formula": "madrs_total ~ I(sqrt(40 - madrs_total))"},
    {"analysis": "glm", "family": "binomial", "formula": "esketamine ~ sex"},
    {
        "analysis": "kaplan_meier",
        "time": "time_to_relapse",
        "event": "relapse",
        "grid": [1200, 1300],
        "cohort": cohort_all(cond("age", ">=", 40), cond("age", "<=", 42)),
    },
    {
        "analysis": "cox",
        "time": "time_to_relapse",
        "event": "relapse",
        "formula": "madrs_total",
        "cohort": cohort_all(cond("age", "==", 41)),
    },
]


def test_refusal_details_carry_no_value_or_person(fresh: Consortium) -> None:
    """Class 9, refusal details (lower severity). Requests aimed at the target (its
    one-person cohort, its dominant value, its thin cells and columns) are refused or fail;
    no detail the researcher sees contains the target's secret values, its person id, or
    any person id. Stopped by: refusals name the rule and the public threshold only."""
    for request in TARGETED:
        fresh.run(request)
    seen = details(fresh.log)
    assert seen, "none of the targeted requests was refused"
    assert_details_clean(fresh.log)
    leaked = [text for text in seen if PERSON_ID.search(text)]
    assert leaked == [], f"person ids in refusal details: {leaked}"
    assert all(TARGET.person_id not in str(e["result"]) for e in fresh.log)
