"""Step requests that must fail at the node with a 4xx problem body, never a 5xx.

:data:`ERRORS` are wrong requests the node refuses today (unknown or categorical variables
where numbers are needed, a term the formula lacks, ...). :data:`MALFORMED` are well-typed
requests the node cannot compute — ragged matrices, coefficients that overflow — each
marked with the defect that still turns it into a 500 (strict ``xfail``: remove the mark
when the defect is fixed).
"""

from __future__ import annotations

from typing import Any

import pytest

ERRORS: list[tuple[str, dict[str, Any]]] = [
    ("summary", {"step": "moments", "variables": ["mrs_scanner"]}),
    ("crosstab", {"step": "crosstab", "row": "age", "column": "sex"}),
    (
        "count",
        {"step": "count", "cohort": {"all": [{"var": "mrs_scanner", "op": ">", "value": 3}]}},
    ),
    ("count", {"step": "count", "cohort": {"all": [{"var": "age", "op": "==", "value": "old"}]}}),
    ("summary", {"step": "moments", "variables": ["age"], "group": "education_years"}),
    ("summary", {"step": "moments", "variables": ["no_such_variable"]}),
    ("summary", {"step": "moments", "variables": ["age"], "center": [[1.0, 2.0]]}),
    ("ols", {"step": "column_moments", "formula": "age ~ no_such_variable + sex"}),
    ("meta", {"step": "site_fit", "formula": "madrs_total ~ age", "term": "education_years"}),
    ("kmeans", {"step": "kmeans_sums", "variables": ["age", "sex"], "centers": [[1.0, 2.0]]}),
]


def _known(reason: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(strict=True, reason=reason)


_RAGGED = (
    "a ragged matrix reaches np.asarray in the step handler (ValueError → 500); the "
    "wire model does not check that its rows have equal lengths"
)
_NON_FINITE = (
    "the step's result overflows to inf/nan and the audit log refuses to store it "
    "(ValueError → 500) instead of the node refusing the step"
)
_NOT_CONVERGED = (
    "the node answers not_converged, which the error catalog serves as HTTP 500: the "
    "request's coefficients, not the server, are at fault"
)
MALFORMED = [
    pytest.param(
        "summary",
        {
            "step": "moments",
            "variables": ["age", "education_years"],
            "group": "sex",
            "center": [[1.0], [2.0, 3.0]],
        },
        marks=_known(_RAGGED),
        id="moments-ragged-center",
    ),
    pytest.param(
        "pca",
        {
            "step": "pca_scores",
            "variables": ["age"],
            "center": [40.0],
            "scale": [15.0],
            "components": [[1.0], []],
            "derive": {
                "run_id": "leaktest-ragged",
                "variables": [
                    {
                        "code": "leak_pc",
                        "label": "PC",
                        "type": "numeric",
                        "source": "derived",
                        "derived": "PC (leak test)",
                    }
                ],
            },
        },
        marks=_known(_RAGGED),
        id="pca-ragged-components",
    ),
    pytest.param(
        "kmeans",
        {
            "step": "kmeans_sums",
            "variables": ["age", "education_years"],
            "centers": [[30.0, 12.0], [60.0]],
        },
        marks=_known(_RAGGED),
        id="kmeans-ragged-centers",
    ),
    pytest.param(
        "kmeans",
        {
            "step": "gmm_stats",
            "variables": ["age"],
            "weights": [1.0],
            "means": [[40.0]],
            "covariances": [[[100.0], []]],
        },
        marks=_known(_RAGGED),
        id="gmm-ragged-covariances",
    ),
    pytest.param(
        "combat",
        {
            "step": "combat_residuals",
            "variables": ["dacc_glu", "dacc_glx"],
            "batch": "site",
            "levels": ["amsterdam"],
            "covariates": ["age"],
            "coefficients": [[10.0, 14.0], [0.01]],
        },
        marks=_known(_RAGGED),
        id="combat-ragged-coefficients",
    ),
    pytest.param(
        "glm",
        {
            "step": "glm_score",
            "formula": "trs ~ age",
            "family": "poisson",
            "columns": ["Intercept", "age"],
            "center": [0.0, 0.0],
            "scale": [1e-300, 1e-300],
            "beta": [1e300, 1e300],
        },
        marks=_known(_NON_FINITE),
        id="glm-score-overflow",
    ),
    pytest.param(
        "ols",
        {
            "step": "crossprod",
            "formula": "madrs_total ~ age",
            "columns": ["Intercept", "age"],
            "center": [0.0, 1e308],
            "scale": [1e-308, 1e-308],
        },
        marks=_known(_NON_FINITE),
        id="crossprod-overflow",
    ),
    pytest.param(
        "cox",
        {
            "step": "cox_sums",
            "time": "time_to_relapse",
            "event": "relapse",
            "formula": "age",
            "columns": ["age"],
            "center": [0.0],
            "scale": [1e-300],
            "beta": [1e300],
            "points": [1],
        },
        marks=_known(_NOT_CONVERGED),
        id="cox-sums-overflow",
    ),
]

KNOWN_5XX: dict[str, str] = {
    "inhomogeneous shape": _RAGGED,
    "Out of range float values are not JSON compliant": _NON_FINITE,
    '"code":"not_converged"': _NOT_CONVERGED,
}
"""Signatures (in the node's response or its logged exception) of the defects pinned by
:data:`MALFORMED`; a 5xx carrying one is known, any other 5xx is a new failure."""


def known_5xx(response: str, recent_logs: list[str]) -> str | None:
    """The known defect a 5xx answer shows (by its body or the last logged errors)."""
    text = response + "\n".join(recent_logs)
    return next((why for mark, why in KNOWN_5XX.items() if mark in text), None)
