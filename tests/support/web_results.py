"""Small result envelopes of every analysis the dashboard plots, in the shapes of the
result models (checked against ``schemas.analyses.RESULTS`` by the tests where the model
exists), for testing the plot and table builders without running the analyses."""

from __future__ import annotations

from typing import Any

COEFFICIENTS = [
    {"term": "Intercept", "estimate": -1.2, "std_error": 0.4, "statistic": -3.0, "p_value": 0.0027},
    {"term": "age", "estimate": 0.03, "std_error": 0.01, "statistic": 3.0, "p_value": 0.0027},
    {"term": "sex[T.M]", "estimate": -0.4, "std_error": 0.25, "statistic": -1.6, "p_value": 0.11},
]
VARS = ["glu_dacc", "glx_dacc", "naa_dacc"]


def _pooled(estimate: float) -> dict[str, float]:
    return {
        "estimate": estimate,
        "std_error": 0.05,
        "ci_low": estimate - 0.098,
        "ci_high": estimate + 0.098,
        "statistic": estimate / 0.05,
        "p_value": 0.01,
    }


SAMPLES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "summary": (
        {"variables": ["age", "madrs_total", "ketamine"]},
        {
            "variables": {
                "age": {"n": 145, "mean": 48.2, "sd": 16.9, "var": 285.6, "missing": 0},
                "madrs_total": {"n": 139, "mean": 31.0, "sd": 7.1, "var": 50.4, "missing": 6},
                "ketamine": {"n": 145, "mean": 0.39, "sd": 0.488, "var": 0.238, "missing": 0},
            }
        },
    ),
    "histogram": (
        {"variable": "age", "edges": [18, 38, 58, 80]},
        {
            "variable": "age",
            "edges": [18.0, 38.0, 58.0, 80.0],
            "counts": [50, 46, 49],
            "below": 0,
            "above": 0,
            "n": 145,
            "missing": 0,
            "coarsened": 0,
            "merged": False,
        },
    ),
    "quantiles": (
        {"variable": "age", "probabilities": [0.05, 0.25, 0.5, 0.75, 0.95]},
        {
            "variable": "age",
            "probabilities": [0.05, 0.25, 0.5, 0.75, 0.95],
            "values": [21.0, 33.5, 48.0, 63.2, 76.0],
            "error_bound": 0.12,
            "lower": -80.0,
            "upper": 180.0,
            "bins": 1000,
            "n": 145,
            "missing": 0,
        },
    ),
    "crosstab": (
        {"row": "sex", "column": "rtms_protocol"},
        {
            "rows": ["F", "M"],
            "columns": ["none", "hf_rtms", "itbs"],
            "counts": [[20, 18, 22], [30, 25, 30]],
            "chi2": {"statistic": 0.21, "df": 2.0, "p_value": 0.9},
            "n": 145,
            "missing": 0,
        },
    ),
    "correlation": (
        {"variables": VARS},
        {
            "variables": VARS,
            "matrix": [[1.0, 0.8, 0.1], [0.8, 1.0, -0.2], [0.1, -0.2, 1.0]],
            "n": 140,
            "missing": 5,
        },
    ),
    "ttest": (
        {"variable": "madrs_total", "group": "sex"},
        {
            "variable": "madrs_total",
            "group": "sex",
            "groups": {
                "F": {"n": 60, "mean": 30.1, "sd": 6.5},
                "M": {"n": 79, "mean": 31.7, "sd": 7.4},
            },
            "welch": {"statistic": -1.35, "df": 133.2, "p_value": 0.18},
            "pooled": {"statistic": -1.33, "df": 137.0, "p_value": 0.19},
            "n": 139,
            "missing": 6,
        },
    ),
    "ols": (
        {"formula": "madrs_total ~ age + sex"},
        {
            "formula": "madrs_total ~ age + sex",
            "coefficients": COEFFICIENTS,
            "n": 139,
            "missing": 6,
            "r_squared": 0.12,
            "adj_r_squared": 0.11,
            "sigma": 6.8,
            "df_residual": 136,
            "dropped": [],
        },
    ),
    "glm": (
        {"formula": "ketamine ~ age + sex", "family": "binomial"},
        {
            "formula": "ketamine ~ age + sex",
            "family": "binomial",
            "link": "logit",
            "coefficients": COEFFICIENTS,
            "n": 145,
            "missing": 0,
            "deviance": 180.2,
            "null_deviance": 190.0,
            "dispersion": 1.0,
            "df_residual": 142,
            "iterations": 4,
            "converged": True,
            "dropped": [],
        },
    ),
    "meta": (
        {"formula": "madrs_total ~ ketamine", "term": "ketamine"},
        {
            "formula": "madrs_total ~ ketamine",
            "term": "ketamine",
            "method": "reml",
            "level": 0.95,
            "per_site": [
                {
                    "site": "amsterdam",
                    "n": 70,
                    "estimate": -2.1,
                    "std_error": 1.2,
                    "ci_low": -4.45,
                    "ci_high": 0.25,
                    "weight": 0.45,
                },
                {
                    "site": "berlin",
                    "n": 45,
                    "estimate": -1.0,
                    "std_error": 1.5,
                    "ci_low": -3.94,
                    "ci_high": 1.94,
                    "weight": 0.33,
                },
                {
                    "site": "copenhagen",
                    "n": 30,
                    "estimate": -3.2,
                    "std_error": 2.0,
                    "ci_low": -7.12,
                    "ci_high": 0.72,
                    "weight": 0.22,
                },
            ],
            "fixed": _pooled(-1.9),
            "random": _pooled(-1.95),
            "tau2": 0.0,
            "q": {"statistic": 0.9, "df": 2.0, "p_value": 0.64},
            "i_squared": 0.0,
            "n": 145,
            "missing": 0,
        },
    ),
    "kaplan_meier": (
        {"time": "time_to_relapse", "event": "relapse", "group": "sex", "grid": [100, 200, 300]},
        {
            "time": "time_to_relapse",
            "event": "relapse",
            "group": "sex",
            "groups": {
                "F": {
                    "time": [100.0, 200.0, 300.0],
                    "survival": [0.85, 0.66, 0.5],
                    "std_error": [0.03, 0.04, None],
                    "at_risk": [120, 90, 60],
                    "events": [20, 25, 18],
                },
                "M": {
                    "time": [100.0, 200.0, 300.0],
                    "survival": [0.8, 0.6, 0.41],
                    "std_error": [0.03, 0.04, 0.05],
                    "at_risk": [110, 80, 50],
                    "events": [25, 26, 21],
                },
            },
            "n": 370,
            "missing": 0,
            "coarsened": 0,
            "merged": False,
        },
    ),
    "cox": (
        {"time": "time_to_relapse", "event": "relapse", "formula": "~ age + sex"},
        {"coefficients": COEFFICIENTS[1:], "n": 370, "events": 270, "iterations": 5},
    ),
    "combat": (
        {"variables": VARS, "batch": "site"},
        {
            "variables": VARS,
            "new_variables": [f"{v}_combat" for v in VARS],
            "run_id": None,
            "batch": "site",
            "ref_batch": None,
            "eb": True,
            "batches": {
                site: {
                    "n": n,
                    "gamma": dict(zip(VARS, g, strict=True)),
                    "delta": dict(zip(VARS, d, strict=True)),
                }
                for site, n, g, d in (
                    ("amsterdam", 70, [0.3, -0.1, 0.2], [1.2, 0.9, 1.1]),
                    ("berlin", 45, [-0.2, 0.15, -0.1], [0.8, 1.1, 0.95]),
                    ("copenhagen", 30, [-0.1, 0.0, -0.1], [1.0, 1.0, 0.9]),
                )
            },
            "grand_mean": {"glu_dacc": 8.1, "glx_dacc": 12.3, "naa_dacc": 9.9},
            "var_pooled": {"glu_dacc": 1.1, "glx_dacc": 2.0, "naa_dacc": 0.7},
            "coefficients": {"age": {"glu_dacc": -0.01, "glx_dacc": -0.02, "naa_dacc": -0.01}},
            "n": 145,
            "missing": 0,
        },
    ),
    "pca": (
        {"variables": VARS},
        {
            "variables": VARS,
            "scale": True,
            "n": 140,
            "missing": 5,
            "mean": [8.1, 12.3, 9.9],
            "sd": [1.0, 1.4, 0.8],
            "components": [[0.7, 0.69, 0.1], [-0.1, 0.05, 0.99], [0.7, -0.72, 0.03]],
            "explained_variance": [1.8, 0.98, 0.22],
            "explained_variance_ratio": [0.6, 0.327, 0.073],
            "new_variables": [],
            "run_id": None,
        },
    ),
    "kmeans": (
        {"variables": VARS, "k": 3},
        {
            "variables": VARS,
            "k": 3,
            "centers": [[7.5, 11.0, 9.5], [8.8, 13.5, 10.2], None],
            "sizes": [60, 75, None],
            "inertia": 210.5,
            "iterations": 7,
            "converged": True,
            "restarts": 4,
            "n": 140,
            "missing": 5,
            "new_variables": [],
            "run_id": None,
        },
    ),
    "train": (
        {"formula": "ketamine ~ age + sex", "model": "logistic", "validation_fraction": 0.2},
        {
            "formula": "ketamine ~ age + sex",
            "model_kind": "logistic",
            "strategy": "fedavg",
            "metrics": {
                "n": 226,
                "auc": 0.54,
                "auc_error_bound": 0.26,
                "auc_bins": 9,
                "auc_lower": 0.28,
                "auc_upper": 0.8,
                "accuracy": 0.62,
                "brier": 0.239,
                "log_loss": 0.672,
                "per_site": {
                    "amsterdam": {"n": 96, "auc": 0.51, "accuracy": 0.73, "brier": 0.227},
                    "berlin": {"n": 130, "auc": 0.53, "accuracy": 0.55, "brier": 0.247},
                },
            },
            "history": [
                {
                    "round": r,
                    "train_loss": 0.7 - 0.05 * r,
                    "val_loss": 0.72 - 0.04 * r,
                    "seconds": 0.3,
                }
                for r in range(1, 6)
            ],
            "best_round": 5,
            "stopped_early": False,
            "coefficients": [
                {**c, "std_error": None, "statistic": None, "p_value": None} for c in COEFFICIENTS
            ],
            "model_id": "77084bb670254300bdcbaf772a11d161",
            "app_hash": "3d8da03f" * 8,
            "n": 566,
            "missing": 4,
            "local_only": {
                "amsterdam": {"n": 96, "auc": 0.5, "accuracy": 0.73, "brier": 0.24},
                "berlin": {"n": 130, "auc": 0.55, "accuracy": 0.55, "brier": 0.248},
            },
            "model": {
                "spec": {"kind": "logistic", "hidden": 8},
                "formula": "ketamine ~ age + sex",
                "columns": ["Intercept", "age", "sex[T.M]"],
                "categories": {"sex": ["F", "M"]},
                "center": [0.0, 49.6, 0.52],
                "scale": [1.0, 17.9, 0.5],
                "weights": [-0.2, -0.004, -0.06],
            },
        },
    ),
    "data_quality": (
        {"variables": ["age", "sex"], "visits": ["baseline"]},
        {
            "sites": ["amsterdam", "berlin"],
            "visits": ["baseline"],
            "variables": ["age", "sex"],
            "persons": {"baseline": {"amsterdam": 70, "berlin": 45}},
            "withheld": {},
            "report": {
                "age": {
                    "baseline": {
                        "amsterdam": {
                            "n": 70,
                            "completeness": 1.0,
                            "mean": 44.2,
                            "sd": 12.5,
                            "smd": 0.62,
                            "implausible": 0,
                        },
                        "berlin": {
                            "n": 40,
                            "completeness": 0.8888888888888888,
                            "mean": 36.9,
                            "sd": 10.8,
                            "smd": -0.62,
                            "implausible": 6,
                        },
                    }
                },
                "sex": {
                    "baseline": {
                        "amsterdam": {
                            "n": 70,
                            "completeness": 1.0,
                            "shares": {"F": 0.4, "M": 0.6},
                        },
                        "berlin": {"n": None, "completeness": None, "suppressed": ["n"]},
                    }
                },
            },
            "temporal": {
                "amsterdam": {
                    "visit_order": 0,
                    "event_before_index": 0,
                    "exposure_end_before_start": 0,
                },
                "berlin": {
                    "visit_order": 0,
                    "event_before_index": None,
                    "exposure_end_before_start": 0,
                },
            },
            "flags": [
                {
                    "site": "amsterdam",
                    "variable": "age",
                    "visit": "baseline",
                    "rule": "site_effect",
                    "value": 0.62,
                    "threshold": 0.5,
                    "suggestion": {
                        "analysis": "combat",
                        "variables": ["age"],
                        "batch": "site",
                        "eb": False,
                        "visit": "baseline",
                    },
                },
                {
                    "site": "berlin",
                    "variable": "event",
                    "visit": None,
                    "rule": "event_before_index",
                    "value": None,
                    "threshold": 0,
                },
            ],
            "completeness_threshold": 0.5,
            "smd_threshold": 0.5,
        },
    ),
}
"""name → (request fields, ``result``)."""


def envelope(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(request, envelope)`` of the sample named ``name``."""
    request, result = SAMPLES[name]
    return (
        {"analysis": name, **request},
        {
            "status": "ok",
            "analysis": name,
            "result": result,
            "sites": {"amsterdam": {"n": 70}, "berlin": {"n": 45}},
            "reason": None,
            "request_id": f"sample-{name}",
            "privacy": {"secure_aggregation": False, "dp": None},
        },
    )
