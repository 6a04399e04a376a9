"""Federated GLM (Newton from the intercept-only start) against statsmodels on pooled rows.

statsmodels' IRLS reports standard errors from the weights of its second-to-last
iteration; the references below take them from the inverse Hessian at statsmodels' own
converged estimate (``model.hessian``), which is the exact value.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from sklearn.datasets import load_breast_cancer

from node.data.frame_memory import DataFrameSource
from node.data.source import FrameSource
from schemas.analyses.glm import GlmResult
from schemas.analyses.ols import OlsResult
from schemas.errors import FedpsyError
from schemas.steps.glm import GlmScoreResult
from tests.support.datasets import fair
from tests.support.federation import InProcessFederation, pooled, run_request, split_sites

FAMILIES = {
    "binomial": sm.families.Binomial(),
    "poisson": sm.families.Poisson(),
    "gaussian": sm.families.Gaussian(),
}


def run_glm(
    sources: Mapping[str, FrameSource], formula: str, family: str
) -> tuple[GlmResult, InProcessFederation]:
    result, _, federation = run_request(
        sources, {"analysis": "glm", "formula": formula, "family": family}
    )
    assert isinstance(result, GlmResult)
    return result, federation


def check_against_statsmodels(
    result: GlmResult, data: pd.DataFrame, formula: str, family: str, tol: float
) -> None:
    ref = smf.glm(formula, data, family=FAMILIES[family]).fit(tol=1e-14)
    terms = [c.term for c in result.coefficients]
    est = np.array([c.estimate for c in result.coefficients])
    se = np.array([c.std_error for c in result.coefficients], dtype=float)
    z = np.array([c.statistic for c in result.coefficients], dtype=float)
    p = np.array([c.p_value for c in result.coefficients], dtype=float)
    ref_est = ref.params[terms].to_numpy()
    order = [list(ref.params.index).index(t) for t in terms]
    hessian = ref.model.hessian(ref.params.to_numpy())
    ref_se = np.sqrt(np.diag(np.linalg.inv(-hessian)))[order]  # includes the scale
    np.testing.assert_allclose(est, ref_est, rtol=tol, atol=0)
    np.testing.assert_allclose(se, ref_se, rtol=tol, atol=0)
    np.testing.assert_allclose(z, ref_est / ref_se, rtol=tol, atol=0)
    np.testing.assert_allclose(p, ref.pvalues[terms].to_numpy(), rtol=1e-6, atol=1e-300)
    assert result.deviance == pytest.approx(ref.deviance, rel=1e-12)
    assert result.null_deviance == pytest.approx(ref.null_deviance, rel=1e-12)
    assert result.n == int(ref.nobs)
    assert result.df_residual == int(ref.df_resid)
    assert result.dispersion == pytest.approx(ref.scale, rel=1e-10)
    assert result.converged


def spector() -> pd.DataFrame:
    df: pd.DataFrame = sm.datasets.spector.load_pandas().data.copy()
    df.columns = [c.lower() for c in df.columns]
    return df


def test_binomial_on_spector() -> None:
    df = spector()
    sources = split_sites(df, [5, 3, 8], seed=3, sort_by="gpa")
    formula = "grade ~ gpa + tuce + psi"
    result, _ = run_glm(sources, formula, "binomial")
    check_against_statsmodels(result, df, formula, "binomial", 1e-10)
    assert result.link == "logit"
    assert result.iterations <= 8


def test_binomial_on_breast_cancer() -> None:
    bc = load_breast_cancer(as_frame=True).frame
    df = bc[["target", "mean radius", "mean texture", "mean smoothness"]].copy()
    df.columns = ["target", "radius", "texture", "smoothness"]
    sources = split_sites(df, [2, 5, 3], seed=8, sort_by="radius")
    formula = "target ~ radius + texture + smoothness"
    result, _ = run_glm(sources, formula, "binomial")
    check_against_statsmodels(result, df, formula, "binomial", 1e-10)
    assert result.iterations <= 8


def randhie() -> pd.DataFrame:
    df: pd.DataFrame = sm.datasets.randhie.load_pandas().data.copy()
    return df


def test_poisson_on_randhie_in_few_rounds() -> None:
    df = randhie()
    sources = split_sites(df, [5, 3, 8], seed=3, sort_by="lpi")
    formula = "mdvis ~ lncoins + idp + lpi + fmde + physlm + disea + hlthg + hlthf + hlthp"
    result, federation = run_glm(sources, formula, "poisson")
    check_against_statsmodels(result, df, formula, "poisson", 1e-10)
    assert result.link == "log"
    assert result.iterations <= 8
    score_rounds = [e for e in federation.log if e.step.step == "glm_score"]
    assert all(e.mode == "sum" for e in federation.log)
    # start, one round per iteration, and the round at the final estimate
    assert len(score_rounds) == result.iterations + 2
    assert isinstance(score_rounds[0].total, GlmScoreResult)
    assert score_rounds[0].total.deviance == pytest.approx(result.null_deviance, rel=1e-15)


def test_gaussian_glm_equals_ols() -> None:
    df = randhie()
    sources = split_sites(df, [5, 3, 8], seed=3, sort_by="lpi")
    formula = "mdvis ~ lncoins + idp + lpi"
    result, _ = run_glm(sources, formula, "gaussian")
    check_against_statsmodels(result, df, formula, "gaussian", 1e-10)
    ols, _, _ = run_request(sources, {"analysis": "ols", "formula": formula})
    assert isinstance(ols, OlsResult)
    np.testing.assert_allclose(
        [c.estimate for c in result.coefficients],
        [c.estimate for c in ols.coefficients],
        rtol=1e-12,
    )
    assert result.iterations <= 3


def test_categorical_level_absent_at_one_site() -> None:
    df = fair().sample(frac=0.35, random_state=2).reset_index(drop=True)
    df["person_id"] = [f"p{i}" for i in range(len(df))]
    categories = {"occupation": ["1", "2", "3", "4", "5", "6"]}
    cut = [0, len(df) // 4, len(df) // 2, len(df)]
    parts = {f"site{i + 1}": df.iloc[cut[i] : cut[i + 1]] for i in range(3)}
    parts["site2"] = parts["site2"][parts["site2"]["occupation"] != "6"]  # lacks a level
    sources = {s: DataFrameSource(s, rows, categories) for s, rows in parts.items()}
    formula = "had_affair ~ age + yrs_married + religious + occupation"
    result, _ = run_glm(sources, formula, "binomial")
    data = pooled(sources, ["had_affair", "age", "yrs_married", "religious", "occupation"])
    check_against_statsmodels(result, data, formula, "binomial", 1e-9)
    assert "occupation[T.6]" in [c.term for c in result.coefficients]
    assert result.iterations <= 8


def test_outcome_outside_the_family_is_refused() -> None:
    df = randhie()
    df = df[df.index % 10 == 0].assign(lincome=lambda d: d["lpi"] - 3.0)
    sources = split_sites(df, [1, 1], seed=0)
    with pytest.raises(FedpsyError) as caught:
        run_glm(sources, "lincome ~ idp", "poisson")
    assert "non-negative" in str(caught.value)
