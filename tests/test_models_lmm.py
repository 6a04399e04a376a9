"""Random-intercept LMM by REML from per-site statistics, against statsmodels MixedLM.

Both sides are optimizers. With its defaults statsmodels stops early (τ² off by ~1e-4
relative on Grunfeld); with ``method="bfgs", gtol=1e-12`` it agrees with the federated fit
to ~1e-11, so the tolerances below are 1e-8. Fixed-effect standard errors are the
conventional ``(XᵀV̂⁻¹X)⁻¹`` (as lme4, nlme, SAS); statsmodels' ``bse_fe`` also includes
the observed fixed/variance cross terms, so they are checked against ``(XᵀV̂⁻¹X)⁻¹`` computed
on the pooled rows at statsmodels' variance estimates.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from statsmodels.regression.mixed_linear_model import MixedLMResults

from node.data.frame_memory import DataFrameSource
from node.data.source import FrameSource
from schemas.analyses.lmm import LmmResult
from schemas.analyses.ols import OlsResult
from schemas.errors import FedpsyError
from tests.support.datasets import diabetes
from tests.support.federation import pooled, run_request, split_sites


def run_lmm(sources: Mapping[str, FrameSource], formula: str) -> LmmResult:
    result, _, federation = run_request(sources, {"analysis": "lmm", "formula": formula})
    assert isinstance(result, LmmResult)
    assert [e.mode for e in federation.log] == ["sum", "gather"]
    return result


def reference(formula: str, data: pd.DataFrame) -> MixedLMResults:
    model = smf.mixedlm(formula, data, groups="site")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels' own convergence chatter
        return model.fit(reml=True, method=["bfgs"], gtol=1e-12)


def model_based_se(ref: MixedLMResults, data: pd.DataFrame) -> npt.NDArray[np.float64]:
    """sqrt(diag((XᵀV⁻¹X)⁻¹)) on the pooled rows at statsmodels' τ² and σ²."""
    x = ref.model.exog
    tau2, sigma2 = float(ref.cov_re.iloc[0, 0]), float(ref.scale)
    groups = data["site"].to_numpy()
    info = np.zeros((x.shape[1], x.shape[1]))
    for g in np.unique(groups):
        xs = x[groups == g]
        v = sigma2 * np.eye(len(xs)) + tau2 * np.ones((len(xs), len(xs)))
        info += xs.T @ np.linalg.solve(v, xs)
    return np.sqrt(np.diag(np.linalg.inv(info)))


def check(result: LmmResult, formula: str, data: pd.DataFrame, tol: float = 1e-8) -> None:
    ref = reference(formula, data)
    terms = [c.term for c in result.coefficients]
    order = [list(ref.fe_params.index).index(t) for t in terms]
    est = np.array([c.estimate for c in result.coefficients])
    se = np.array([c.std_error for c in result.coefficients], dtype=float)
    np.testing.assert_allclose(est, ref.fe_params.to_numpy()[order], rtol=tol)
    np.testing.assert_allclose(se, model_based_se(ref, data)[order], rtol=tol)
    vc = result.variance_components
    assert vc.site == pytest.approx(float(ref.cov_re.iloc[0, 0]), rel=tol)
    assert vc.residual == pytest.approx(float(ref.scale), rel=tol)
    assert result.log_likelihood == pytest.approx(ref.llf, rel=1e-10)
    assert result.n == int(ref.nobs)
    assert result.converged


def test_grunfeld_with_each_firm_a_site() -> None:
    data = sm.datasets.grunfeld.load_pandas().data
    sources = {
        firm: DataFrameSource(
            firm,
            rows.drop(columns=["firm"]).assign(person_id=[f"p{i}" for i in range(len(rows))]),
            {},
        )
        for firm, rows in data.groupby("firm")
    }
    formula = "invest ~ value + capital"
    result = run_lmm(sources, formula)
    assert result.groups == 11
    check(result, formula, pooled(sources, ["invest", "value", "capital"]))


@pytest.mark.parametrize("sort_by", ["s5", "target"])
def test_three_unequal_sites_with_a_site_effect(sort_by: str) -> None:
    df = diabetes(missing=0.05, seed=1)
    sources = split_sites(df, [5, 3, 8], seed=2, sort_by=sort_by, categories={"sex": ["F", "M"]})
    formula = "target ~ age + bmi + bp + sex"
    result = run_lmm(sources, formula)
    data = pooled(sources, ["target", "age", "bmi", "bp", "sex"]).dropna()
    check(result, formula, data)
    assert result.missing == len(df) - len(data)
    assert result.variance_components.site > 0.0


def test_no_site_variance_gives_the_least_squares_fit() -> None:
    # sites drawn at random from one population: REML puts τ² on the boundary here
    df = diabetes()
    sources = split_sites(df, [5, 3, 8], seed=0, categories={"sex": ["F", "M"]})
    formula = "target ~ bmi + bp + s5"
    result = run_lmm(sources, formula)
    ols, _, _ = run_request(sources, {"analysis": "ols", "formula": formula})
    assert isinstance(ols, OlsResult)
    assert result.variance_components.site == 0.0
    np.testing.assert_allclose(
        [c.estimate for c in result.coefficients],
        [c.estimate for c in ols.coefficients],
        rtol=1e-12,
    )
    # σ² is the REML (= OLS) residual variance
    assert math.sqrt(result.variance_components.residual) == pytest.approx(ols.sigma, rel=1e-12)


def test_a_formula_without_intercept_is_refused() -> None:
    sources = split_sites(diabetes(), [1, 1, 1], seed=0, categories={"sex": ["F", "M"]})
    with pytest.raises(FedpsyError) as caught:
        run_lmm(sources, "target ~ 0 + bmi")
    assert caught.value.code == "request_invalid"
