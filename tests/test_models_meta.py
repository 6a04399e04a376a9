"""Two-stage meta-analysis: site fits vs statsmodels, pooling vs hand formulas and
statsmodels' combine_effects (DerSimonian–Laird, Paule–Mandel), REML vs a direct
maximization of the REML likelihood."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from scipy import optimize, stats
from statsmodels.stats.meta_analysis import _fit_tau_iterative, combine_effects

from coordinator.federation.failures import SitesFailed
from node.data.frame_memory import DataFrameSource
from node.data.source import FrameSource
from schemas.analyses.meta import MetaResult
from tests.support.datasets import diabetes
from tests.support.federation import run_request, split_sites

Vector = npt.NDArray[np.float64]
FORMULA = "target ~ age + bmi + bp + sex"
VARIABLES = ["target", "age", "bmi", "bp", "sex"]


def sources_four() -> dict[str, DataFrameSource]:
    return split_sites(
        diabetes(missing=0.05, seed=4),
        [5, 3, 8, 4],
        seed=2,
        sort_by="s5",
        categories={"sex": ["F", "M"]},
    )


def run_meta(sources: Mapping[str, FrameSource], **fields: Any) -> MetaResult:
    result, _, federation = run_request(sources, {"analysis": "meta", **fields})
    assert isinstance(result, MetaResult)
    assert [e.mode for e in federation.log] == ["gather"]
    return result


def site_arrays(result: MetaResult) -> tuple[Vector, Vector]:
    y = np.array([s.estimate for s in result.per_site])
    v = np.array([s.std_error for s in result.per_site]) ** 2
    return y, v


def test_site_estimates_are_each_sites_own_fit() -> None:
    sources = sources_four()
    result = run_meta(sources, formula=FORMULA, term="bmi", method="dl")
    assert [s.site for s in result.per_site] == list(sources)
    for row, (site, source) in zip(result.per_site, sources.items(), strict=True):
        data = source.frame(VARIABLES, "baseline", None)
        ref = smf.ols(FORMULA, data).fit()
        assert row.site == site
        assert row.estimate == pytest.approx(ref.params["bmi"], rel=1e-11)
        assert row.std_error == pytest.approx(ref.bse["bmi"], rel=1e-11)
        assert row.n == int(ref.nobs)
        z = stats.norm.ppf(0.975)
        assert row.ci_low == pytest.approx(ref.params["bmi"] - z * ref.bse["bmi"], rel=1e-11)
    assert sum(s.weight for s in result.per_site) == pytest.approx(1.0, rel=1e-14)
    assert result.n == sum(s.n for s in result.per_site)


def test_dersimonian_laird_matches_the_formula_and_statsmodels() -> None:
    result = run_meta(sources_four(), formula=FORMULA, term="bmi", method="dl", level=0.9)
    y, v = site_arrays(result)
    w = 1.0 / v
    mu_f = (w @ y) / w.sum()
    q = float(w @ (y - mu_f) ** 2)
    df = len(y) - 1
    tau2 = max(0.0, (q - df) / (w.sum() - (w @ w) / w.sum()))
    ws = 1.0 / (v + tau2)
    mu = (ws @ y) / ws.sum()
    se = 1.0 / np.sqrt(ws.sum())
    assert tau2 > 0.0  # the sites differ here: a real random-effects case
    assert result.tau2 == pytest.approx(tau2, rel=1e-13)
    assert result.q.statistic == pytest.approx(q, rel=1e-13)
    assert result.q.p_value == pytest.approx(stats.chi2.sf(q, df), rel=1e-12)
    assert result.i_squared == pytest.approx((q - df) / q, rel=1e-12)
    assert result.random.estimate == pytest.approx(mu, rel=1e-13)
    assert result.random.std_error == pytest.approx(se, rel=1e-13)
    z90 = stats.norm.ppf(0.95)
    assert result.random.ci_high == pytest.approx(mu + z90 * se, rel=1e-13)
    assert result.random.p_value == pytest.approx(2 * stats.norm.sf(abs(mu / se)), rel=1e-10)
    ref = combine_effects(y, v, method_re="dl")
    assert result.tau2 == pytest.approx(ref.tau2, rel=1e-12)
    assert result.random.estimate == pytest.approx(ref.mean_effect_re, rel=1e-12)
    assert result.random.std_error == pytest.approx(ref.sd_eff_w_re, rel=1e-12)
    assert result.fixed.estimate == pytest.approx(ref.mean_effect_fe, rel=1e-12)
    assert result.fixed.std_error == pytest.approx(ref.sd_eff_w_fe, rel=1e-12)
    assert result.i_squared == pytest.approx(ref.i2, rel=1e-12)


def test_paule_mandel_matches_statsmodels_iterated() -> None:
    result = run_meta(sources_four(), formula=FORMULA, term="bmi", method="pm")
    y, v = site_arrays(result)
    # statsmodels stops when successive tau² differ by atol; 1e-14 is below what its
    # iteration reaches on some CPUs (it then gives up and reports tau² = 0)
    tau2, converged = _fit_tau_iterative(y, v, atol=1e-10, maxiter=1000)
    assert converged
    ref = combine_effects(y, v, method_re="iterated", atol=1e-10, maxiter=1000)
    assert result.tau2 == pytest.approx(tau2, rel=1e-9) and ref.tau2 == tau2
    assert result.random.estimate == pytest.approx(ref.mean_effect_re, rel=1e-11)
    assert result.random.std_error == pytest.approx(ref.sd_eff_w_re, rel=1e-10)
    # the defining equation: generalized Q equals its expectation
    ws = 1.0 / (v + result.tau2)
    mu = (ws @ y) / ws.sum()
    assert float(ws @ (y - mu) ** 2) == pytest.approx(len(y) - 1, rel=1e-12)


def reml_loglik(tau2: float, y: Vector, v: Vector) -> float:
    w = 1.0 / (v + tau2)
    mu = (w @ y) / w.sum()
    return float(-0.5 * (np.sum(np.log(v + tau2)) + np.log(w.sum()) + w @ (y - mu) ** 2))


def test_reml_maximizes_the_restricted_likelihood() -> None:
    result = run_meta(sources_four(), formula=FORMULA, term="bmi", method="reml")
    y, v = site_arrays(result)
    found = optimize.minimize_scalar(
        lambda t: -reml_loglik(t, y, v),
        bounds=(0.0, 10 * float(np.var(y)) + 10 * v.max()),
        method="bounded",
        options={"xatol": 1e-10},
    )
    assert result.tau2 > 0.0
    assert result.tau2 == pytest.approx(float(found.x), rel=1e-6)
    assert reml_loglik(result.tau2, y, v) >= float(-found.fun) - 1e-12
    h = 1e-4 * result.tau2  # the score is zero at the estimate
    slope = (reml_loglik(result.tau2 + h, y, v) - reml_loglik(result.tau2 - h, y, v)) / (2 * h)
    assert abs(slope) * result.tau2 < 1e-6


def test_homogeneous_sites_give_zero_between_site_variance() -> None:
    sources = split_sites(diabetes(), [5, 3, 8], seed=0, categories={"sex": ["F", "M"]})
    for method in ("dl", "reml", "pm"):
        result = run_meta(sources, formula=FORMULA, term="bmi", method=method)
        y, v = site_arrays(result)
        assert cochran(y, v) < len(y) - 1  # premise: Q below its expectation
        assert result.tau2 == 0.0
        assert result.i_squared == 0.0
        assert result.random.estimate == pytest.approx(result.fixed.estimate, rel=1e-15)


def cochran(y: Vector, v: Vector) -> float:
    w = 1.0 / v
    return float(w @ (y - (w @ y) / w.sum()) ** 2)


def test_logistic_site_fits_and_a_covariate_level_absent_at_one_site() -> None:
    df: pd.DataFrame = sm.datasets.fair.load_pandas().data.sample(frac=0.4, random_state=1)
    df = df.reset_index(drop=True).assign(
        had_affair=lambda d: (d["affairs"] > 0).astype(float),
        occupation=lambda d: d["occupation"].astype(int).astype(str),
        person_id=lambda d: [f"p{i}" for i in range(len(d))],
    )
    categories = {"occupation": ["1", "2", "3", "4", "5", "6"]}
    cut = [0, len(df) // 5, len(df) // 2, len(df)]
    parts = {f"site{i + 1}": df.iloc[cut[i] : cut[i + 1]] for i in range(3)}
    parts["site1"] = parts["site1"][parts["site1"]["occupation"] != "6"]
    sources = {s: DataFrameSource(s, rows, categories) for s, rows in parts.items()}
    formula = "had_affair ~ age + yrs_married + religious + occupation"
    result = run_meta(sources, formula=formula, term="religious", family="binomial")
    for row, rows in zip(result.per_site, parts.values(), strict=True):
        data = rows.assign(occupation=pd.Categorical(rows["occupation"]))
        ref = smf.glm(formula, data, family=sm.families.Binomial()).fit(tol=1e-14)
        k = list(ref.params.index).index("religious")
        # the exact SE: inverse Hessian at the estimate (IRLS reports the previous weights')
        se = np.sqrt(np.linalg.inv(-ref.model.hessian(ref.params.to_numpy()))[k, k])
        assert row.estimate == pytest.approx(ref.params["religious"], rel=1e-9)
        assert row.std_error == pytest.approx(se, rel=1e-9)
    assert result.per_site[0].n == len(parts["site1"])


def test_a_term_that_is_zero_at_a_site_cannot_be_estimated_there() -> None:
    sources = sources_four()
    with pytest.raises(SitesFailed) as caught:
        run_meta(sources, formula="target ~ bmi + site", term="site[T.site2]")
    assert caught.value.failures["site1"].code == "not_estimable"
