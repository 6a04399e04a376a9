"""Valid requests for every step of the wire protocol, and cohorts of chosen sizes.

:data:`STEP_REQUESTS` maps each step name to ``(analysis, step)`` pairs: the analysis the
coordinator would name in the task and a step body without a cohort. They are chosen to
touch the planted canaries of :mod:`tests.support.canary`: the canaries' age and years of
education, their MRS value, and the open categorical ``mrs_scanner`` whose canary label
two persons hold (as a group, a batch, a table margin and a formula term). A step
registered in ``schemas.steps.registry`` without an entry here is a test failure, so a
new step is covered when it is added.
"""

from __future__ import annotations

from typing import Any

Step = dict[str, Any]

_FORMULA = "madrs_total ~ age + education_years"
_COLUMNS = ["Intercept", "age", "education_years"]
_BASIS = {
    "formula": _FORMULA,
    "columns": _COLUMNS,
    "center": [0.0, 40.0, 13.0],
    "scale": [1.0, 15.0, 3.0],
}
_SURVIVAL = {"time": "time_to_relapse", "resolution": 30.0}
_COMBAT = {
    "variables": ["dacc_glu", "dacc_glx"],
    "batch": "site",
    "levels": ["amsterdam"],
    "covariates": ["age"],
}
_COMBAT_COEF = [[10.0, 14.0], [0.01, 0.02]]
_CLUSTER = {"variables": ["age", "education_years"]}
_CENTERS = [[30.0, 12.0], [60.0, 14.0]]

STEP_REQUESTS: dict[str, list[tuple[str, Step]]] = {
    "count": [("count", {})],
    "moments": [
        (
            "summary",
            {"variables": ["age", "education_years"], "complete_cases": False, "products": True},
        ),
        ("summary", {"variables": ["age", "dacc_glu"], "complete_cases": True, "products": True}),
        ("ttest", {"variables": ["age"], "group": "sex"}),
        ("ttest", {"variables": ["panss_total"], "group": "mrs_scanner"}),
        (
            "ttest",
            {"variables": ["dacc_glu", "age"], "group": "mrs_scanner", "complete_cases": False},
        ),
    ],
    "histogram": [
        ("histogram", {"variable": "age", "edges": [0.0, 50.0, 90.0, 100.0]}),
        ("histogram", {"variable": "education_years", "edges": [0.0, 10.0, 20.0, 30.0]}),
        ("histogram", {"variable": "dacc_glu", "edges": [0.0, 10.0, 15.0, 20.0]}),
    ],
    "crosstab": [
        ("crosstab", {"row": "sex", "column": "relapse"}),
        ("crosstab", {"row": "sex", "column": "primary_diagnosis"}),
        ("crosstab", {"row": "mrs_scanner", "column": "sex"}),
        ("crosstab", {"row": "mrs_scanner", "column": "trs"}),
    ],
    "column_moments": [
        ("ols", {"formula": _FORMULA}),
        ("ols", {"formula": "dacc_glu ~ age + mrs_scanner"}),
    ],
    "crossprod": [("ols", {**_BASIS, "y_center": 20.0, "y_scale": 8.0})],
    "glm_score": [
        (
            "glm",
            {
                **_BASIS,
                "formula": "trs ~ age + education_years",
                "family": "binomial",
                "beta": [0.0, 0.0, 0.0],
            },
        ),
        ("glm", {**_BASIS, "family": "poisson", "beta": [3.0, 0.0, 0.0]}),
        ("glm", {**_BASIS, "family": "gaussian", "beta": [20.0, 0.1, 0.0]}),
    ],
    "lmm_stats": [("lmm", {**_BASIS})],
    "site_fit": [
        ("meta", {"formula": _FORMULA, "term": "age"}),
        ("meta", {"formula": "trs ~ age + education_years", "term": "age", "family": "binomial"}),
    ],
    "survival_extent": [("kaplan_meier", {**_SURVIVAL})],
    "survival_counts": [
        (
            "kaplan_meier",
            {**_SURVIVAL, "event": "relapse", "horizon": 700, "intervals": [100, 300, 700]},
        ),
        ("logrank", {**_SURVIVAL, "event": "relapse", "horizon": 700, "group": "sex"}),
        ("logrank", {**_SURVIVAL, "event": "relapse", "horizon": 700, "group": "mrs_scanner"}),
    ],
    "cox_events": [
        ("cox", {**_SURVIVAL, "event": "relapse", "formula": "age + sex", "horizon": 700}),
        # a coarse axis: each point (and each slot between points) holds several rows
        (
            "cox",
            {
                **_SURVIVAL,
                "event": "relapse",
                "formula": "age + sex",
                "horizon": 3,
                "resolution": 365.0,
            },
        ),
    ],
    "cox_sums": [
        (
            "cox",
            {
                **_SURVIVAL,
                "event": "relapse",
                "formula": "age + sex",
                "columns": ["age", "sex[T.M]"],
                "center": [40.0, 0.5],
                "scale": [15.0, 0.5],
                "beta": [0.01, 0.1],
                "points": [1, 2, 3, 5, 8, 13],
            },
        )
    ],
    "combat_batches": [
        ("combat", {"variables": ["dacc_glu"], "batch": "mrs_scanner"}),
        ("combat", {"variables": ["dacc_glu", "dacc_glx"], "batch": "site", "covariates": ["age"]}),
    ],
    "combat_fit": [("combat", {**_COMBAT})],
    "combat_residuals": [("combat", {**_COMBAT, "coefficients": _COMBAT_COEF})],
    "combat_adjust": [
        (
            "combat",
            {
                **_COMBAT,
                "coefficients": _COMBAT_COEF,
                "grand_mean": [11.0, 15.0],
                "var_pooled": [2.0, 3.0],
            },
        )
    ],
    "commit_derived": [("combat", {"run_id": "leaktest-0001"})],
    "pca_scores": [
        (
            "pca",
            {
                "variables": ["age", "education_years"],
                "center": [40.0, 13.0],
                "scale": [15.0, 3.0],
                "components": [[0.7, 0.7]],
                "derive": {
                    "run_id": "leaktest-pca01",
                    "variables": [
                        {
                            "code": "leak_pc1",
                            "label": "PC1",
                            "type": "numeric",
                            "source": "derived",
                            "derived": "PC1 (leak test)",
                        }
                    ],
                },
            },
        )
    ],
    "kmeans_sums": [
        ("kmeans", {**_CLUSTER, "centers": _CENTERS}),
        ("kmeans", {**_CLUSTER, "centers": [[97.0, 30.0], [40.0, 12.0]], "previous": _CENTERS}),
    ],
    "kmeans_candidates": [
        ("kmeans", {**_CLUSTER, "clusters": 6, "min_size": 1}),
        ("kmeans", {**_CLUSTER, "clusters": 3, "min_size": 5}),
    ],
    "gmm_stats": [
        (
            "kmeans",
            {
                **_CLUSTER,
                "weights": [0.5, 0.5],
                "means": _CENTERS,
                "covariances": [[[100.0, 0.0], [0.0, 9.0]], [[100.0, 0.0], [0.0, 9.0]]],
            },
        ),
        (
            "kmeans",
            {
                **_CLUSTER,
                "weights": [0.5, 0.5],
                "means": [[97.0, 30.0], [40.0, 12.0]],
                "covariances": [[[1e-4, 0.0], [0.0, 1e-4]], [[100.0, 0.0], [0.0, 9.0]]],
                "hard": True,
            },
        ),
    ],
    "train": [
        (
            "train",
            {
                **_BASIS,
                "formula": "trs ~ age + education_years",
                "phase": "fit",
                "app_hash": "0" * 64,
                "run_id": "leaktest-train",
                "model": {},
                "weights": [0.0, 0.0, 0.0],
            },
        ),
        (
            "train",
            {
                **_BASIS,
                "formula": "trs ~ age + education_years",
                "phase": "local",
                "app_hash": "0" * 64,
                "run_id": "leaktest-train",
                "model": {"kind": "mlp", "hidden": 2},
                "edges": [0.0, 0.5, 1.0],
            },
        ),
    ],
    "train_sum": [
        (
            "train",
            {
                **_BASIS,
                "formula": "trs ~ age + education_years",
                "phase": "test",
                "app_hash": "0" * 64,
                "run_id": "leaktest-train",
                "model": {},
                "weights": [0.0, 0.1, 0.1],
                "edges": [0.0, 0.5, 1.0],
            },
        ),
    ],
    "predict": [
        (
            "predict",
            {
                **_BASIS,
                "formula": "trs ~ age + education_years",
                "model": {},
                "weights": [0.0, 0.1, 0.1],
                "derive": {
                    "run_id": "leaktest-predict",
                    "variables": [{"code": "trs_risk", "label": "TRS risk", "type": "numeric"}],
                },
            },
        ),
    ],
    "availability": [
        ("catalog", {"variables": ["age", "education_years", "dacc_glu", "mrs_scanner"]}),
        ("catalog", {"variables": ["age", "dacc_glu"], "round_to": 5, "suppress_below": 5}),
    ],
    "quality": [
        (
            "data_quality",
            {"variables": ["age", "education_years", "dacc_glu", "sex", "mrs_scanner"]},
        ),
        ("data_quality", {"variables": ["age"], "visit": "week6"}),
    ],
    "temporal": [("data_quality", {})],
}

EXPECT_ANSWER = frozenset(
    {
        "count",
        "moments",
        "histogram",
        "crosstab",
        "column_moments",
        "crossprod",
        "glm_score",
        "lmm_stats",
        "site_fit",
        "survival_extent",
        "survival_counts",
        "cox_events",
        "cox_sums",
        "combat_batches",
        "combat_fit",
        "combat_residuals",
        "combat_adjust",
        "availability",
        "kmeans_sums",
        "kmeans_candidates",
        "gmm_stats",
        "quality",
        "temporal",
    }
)
"""Steps of which at least one request must be answered on the whole site, so the test
reaches the computation and not only a refusal. Not here: steps that need earlier state
(``commit_derived`` a staged run, ``pca_scores`` a store that keeps derived values,
``train`` and ``train_sum`` an approved training app, ``predict`` a store that keeps
derived values)."""


OPEN_CATEGORICAL = "mrs_scanner"
"""An open categorical variable (no dictionary categories): its labels are the site's data."""


def names_open_levels(step: Step) -> bool:
    """Whether ``step`` takes the levels of :data:`OPEN_CATEGORICAL` from the site's rows
    (as a group, table margin, batch or formula factor, with no levels in the request)."""
    roles = [step.get(k) for k in ("group", "row", "column", "batch")]
    return OPEN_CATEGORICAL in roles or OPEN_CATEGORICAL in str(step.get("formula", ""))


def requests_for(name: str) -> list[tuple[str, Step]]:
    """The ``(analysis, step)`` pairs of step ``name``, each step naming itself."""
    return [(analysis, {"step": name, **step}) for analysis, step in STEP_REQUESTS[name]]


def age_cohorts(ages: list[float], sizes: tuple[int, ...]) -> dict[str, dict[str, Any]]:
    """Cohorts of the ``k`` oldest persons for each ``k`` in ``sizes`` (ties aside).

    Each threshold lies halfway between two ages, so no request carries a person's age.
    """
    ordered = sorted(ages, reverse=True)
    out: dict[str, dict[str, Any]] = {}
    for k in sizes:
        if k < len(ordered):
            cut = round((ordered[k - 1] + ordered[k]) / 2, 3)
            out[f"oldest {k}"] = {"all": [{"var": "age", "op": ">", "value": cut}]}
    return out


def cohorts(ages: list[float]) -> dict[str, dict[str, Any] | None]:
    """Cohorts of various sizes, several of them holding canary persons."""
    out: dict[str, dict[str, Any] | None] = {"everyone": None}
    out.update(age_cohorts(ages, (1, 4, 5, 10, 40)))
    out["women"] = {"all": [{"var": "sex", "op": "==", "value": "F"}]}
    out["younger than 90"] = {"all": [{"var": "age", "op": "<", "value": 90}]}
    out["highly educated or very old"] = {
        "any": [
            {"var": "education_years", "op": ">=", "value": 29},
            {"var": "age", "op": ">=", "value": 95},
        ]
    }
    out["has an MRS scanner"] = {"all": [{"var": "mrs_scanner", "op": "not_null"}]}
    return out
