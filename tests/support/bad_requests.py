"""Step requests that must fail at the node with a 4xx problem body, never a 5xx.

:data:`ERRORS` are wrong requests the node refuses today (unknown or categorical variables
where numbers are needed, a term the formula lacks, ...). :data:`MALFORMED` are well-typed
requests the node cannot compute — ragged matrices, coefficients that overflow — which it
refuses as ``request_invalid`` (or ``not_converged``, also a 4xx: the request is at fault).
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


MALFORMED = [
    pytest.param(
        "summary",
        {
            "step": "moments",
            "variables": ["age", "education_years"],
            "group": "sex",
            "center": [[1.0], [2.0, 3.0]],
        },
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
        id="pca-ragged-components",
    ),
    pytest.param(
        "kmeans",
        {
            "step": "kmeans_sums",
            "variables": ["age", "education_years"],
            "centers": [[30.0, 12.0], [60.0]],
        },
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
        id="cox-sums-overflow",
    ),
]
