"""Summary, correlation and t-test over unequal sites equal the pooled references."""

from __future__ import annotations

import asyncio

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from coordinator.analyses.registry import run_analysis
from schemas.analyses import parse_request
from schemas.analyses.correlation import CorrelationResult
from schemas.analyses.summary import SummaryResult, VariableSummary
from schemas.analyses.ttest import TTestResult
from schemas.errors import ErrorCode, FedpsyError
from schemas.steps.moments import MomentsResult
from tests.support.datasets import diabetes, fair, wine
from tests.support.federation import InProcessFederation, run_request, split_sites

RTOL = 1e-10
SEX = {"sex": ["F", "M"]}
CULTIVAR = {"cultivar": ["c0", "c1", "c2"]}


def test_summary_equals_pooled_with_missing_values() -> None:
    df = diabetes(missing=0.1, seed=3)
    sites = split_sites(df, [1, 2, 5], seed=1, sort_by="age", categories=SEX)
    result, rows, _ = run_request(
        sites, {"analysis": "summary", "variables": ["bmi", "bp", "target", "s5"]}
    )
    assert isinstance(result, SummaryResult)
    assert sum(rows.values()) == len(df)
    for code in ("bmi", "bp", "target", "s5"):
        x = df[code].dropna()
        got = result.variables[code]
        assert got.n == len(x)
        assert got.missing == int(df[code].isna().sum())
        assert got.mean == pytest.approx(x.mean(), rel=RTOL, abs=1e-17)
        assert got.var == pytest.approx(np.var(x, ddof=1), rel=RTOL)
        assert got.sd == pytest.approx(np.std(x, ddof=1), rel=RTOL)
    assert result.variables["bmi"].missing > 0


def test_summary_stays_exact_when_the_mean_dwarfs_the_spread() -> None:
    """1e9 + column: one round of raw Σx² loses the variance; two rounds keep it."""
    df = diabetes()
    df["shifted_target"] = df["target"] + 1e9
    df["shifted_bmi"] = df["bmi"] + 1e9
    sites = split_sites(df, [3, 1, 2], seed=5, sort_by="target", categories=SEX)
    columns = ["shifted_target", "shifted_bmi"]
    result, _, _ = run_request(sites, {"analysis": "summary", "variables": columns})
    assert isinstance(result, SummaryResult)
    for code in columns:
        x = df[code].to_numpy()
        got = result.variables[code]
        assert got.mean == pytest.approx(np.mean(x), rel=1e-15)
        assert got.var == pytest.approx(np.var(x, ddof=1), rel=RTOL)
        assert got.sd == pytest.approx(np.std(x, ddof=1), rel=RTOL)
        # the one-round formula on the same numbers misses by far more than the bar
        naive = (np.sum(x * x) - np.sum(x) ** 2 / len(x)) / (len(x) - 1)
        assert abs(naive - np.var(x, ddof=1)) / np.var(x, ddof=1) > 1e-5


def test_summary_per_variable_counts_and_cohort() -> None:
    df = diabetes(missing=0.2, seed=9)
    sites = split_sites(df, [2, 2, 3], seed=2, sort_by="bmi", categories=SEX)
    cohort = {
        "all": [{"var": "sex", "op": "==", "value": "F"}, {"var": "age", "op": ">", "value": 0}]
    }
    result, rows, _ = run_request(
        sites, {"analysis": "summary", "variables": ["bmi", "bp"], "cohort": cohort}
    )
    assert isinstance(result, SummaryResult)
    sub = df[(df["sex"] == "F") & (df["age"] > 0)]
    for code in ("bmi", "bp"):
        assert result.variables[code].n == sub[code].notna().sum()
        assert result.variables[code].missing == sub[code].isna().sum()
        assert result.variables[code].mean == pytest.approx(sub[code].mean(), rel=RTOL)
        assert result.variables[code].sd == pytest.approx(sub[code].std(ddof=1), rel=RTOL)
    assert sum(rows.values()) == len(sub[["bmi", "bp"]].dropna(how="all"))


def test_correlation_matrix_on_complete_cases() -> None:
    df = diabetes(missing=0.1, seed=4)
    df["shifted"] = df["s1"] * 1000 + 1e9
    variables = ["bmi", "bp", "shifted", "target"]
    sites = split_sites(df, [1, 3, 2], seed=7, sort_by="target", categories=SEX)
    result, rows, _ = run_request(sites, {"analysis": "correlation", "variables": variables})
    assert isinstance(result, CorrelationResult)
    complete = df[variables].dropna()
    assert result.n == len(complete) == sum(rows.values())
    assert result.missing == len(df) - len(complete)
    expected = np.corrcoef(complete.to_numpy().T)
    np.testing.assert_allclose(np.array(result.matrix, dtype=float), expected, rtol=RTOL)
    r, _ = stats.pearsonr(complete["bmi"], complete["shifted"])
    assert result.matrix[0][2] == pytest.approx(r, rel=RTOL)


def test_correlation_on_wine() -> None:
    df = wine()
    variables = ["alcohol", "malic_acid", "magnesium", "proline", "hue"]
    sites = split_sites(
        df, [5, 2, 3], seed=11, sort_by="proline", categories={"cultivar": ["c0", "c1", "c2"]}
    )
    result, _, _ = run_request(sites, {"analysis": "correlation", "variables": variables})
    assert isinstance(result, CorrelationResult)
    np.testing.assert_allclose(
        np.array(result.matrix, dtype=float), df[variables].corr().to_numpy(), rtol=RTOL
    )


def _check_ttest(result: TTestResult, a: pd.Series, b: pd.Series) -> None:
    welch = stats.ttest_ind(a, b, equal_var=False)
    pooled = stats.ttest_ind(a, b, equal_var=True)
    assert result.welch.statistic == pytest.approx(welch.statistic, rel=RTOL)
    assert result.welch.df == pytest.approx(welch.df, rel=RTOL)
    assert result.welch.p_value == pytest.approx(welch.pvalue, rel=1e-8)
    assert result.pooled.statistic == pytest.approx(pooled.statistic, rel=RTOL)
    assert result.pooled.df == pytest.approx(pooled.df, rel=RTOL)
    assert result.pooled.p_value == pytest.approx(pooled.pvalue, rel=1e-8)


def test_ttest_categorical_group_equals_scipy() -> None:
    df = diabetes(missing=0.15, seed=6)
    sites = split_sites(df, [1, 4, 2], seed=3, sort_by="sex", categories=SEX)
    result, rows, _ = run_request(sites, {"analysis": "ttest", "variable": "bmi", "group": "sex"})
    assert isinstance(result, TTestResult)
    used = df[["bmi", "sex"]].dropna()
    a, b = used.loc[used["sex"] == "F", "bmi"], used.loc[used["sex"] == "M", "bmi"]
    assert list(result.groups) == ["F", "M"]
    assert result.groups["F"].n == len(a) and result.groups["M"].n == len(b)
    assert result.groups["F"].mean == pytest.approx(a.mean(), rel=RTOL)
    assert result.groups["M"].sd == pytest.approx(b.std(ddof=1), rel=RTOL)
    assert result.missing == len(df) - len(used) and sum(rows.values()) == len(used)
    _check_ttest(result, a, b)


def test_ttest_binary_group_with_large_offset() -> None:
    df = fair()
    df["shifted"] = df["yrs_married"] + 1e9
    sites = split_sites(df, [2, 7, 3], seed=8, sort_by="age")
    result, _, _ = run_request(
        sites, {"analysis": "ttest", "variable": "shifted", "group": "had_affair"}
    )
    assert isinstance(result, TTestResult)
    assert list(result.groups) == ["0", "1"]
    a = df.loc[df["had_affair"] == 0, "shifted"]
    b = df.loc[df["had_affair"] == 1, "shifted"]
    _check_ttest(result, a, b)


def test_ttest_by_site_and_chosen_levels() -> None:
    df = wine()
    sites = split_sites(
        df, [2, 3, 4], seed=1, sort_by="alcohol", categories={"cultivar": ["c0", "c1", "c2"]}
    )
    frames = {s: src.frame(["alcohol", "cultivar"], "baseline", None) for s, src in sites.items()}
    result, _, _ = run_request(
        sites,
        {"analysis": "ttest", "variable": "alcohol", "group": "cultivar", "levels": ["c2", "c0"]},
    )
    assert isinstance(result, TTestResult)
    _check_ttest(
        result, df.loc[df.cultivar == "c2", "alcohol"], df.loc[df.cultivar == "c0", "alcohol"]
    )
    cohort = {"all": [{"var": "site", "op": "in", "value": ["site1", "site3"]}]}
    result, rows, _ = run_request(
        sites, {"analysis": "ttest", "variable": "alcohol", "group": "site", "cohort": cohort}
    )
    assert isinstance(result, TTestResult)
    assert set(rows) == {"site1", "site3"} and list(result.groups) == ["site1", "site3"]
    _check_ttest(result, frames["site1"]["alcohol"], frames["site3"]["alcohol"])


def test_ttest_with_three_levels_asks_for_two() -> None:
    sites = split_sites(wine(), [1, 1, 1], seed=1, categories=CULTIVAR)
    federation = InProcessFederation(sites)
    request = parse_request({"analysis": "ttest", "variable": "alcohol", "group": "cultivar"})
    with pytest.raises(FedpsyError) as err:
        asyncio.run(run_analysis(request, federation))
    assert len(federation.log) == 1  # refused after the counts, before any second round
    assert err.value.code == ErrorCode.REQUEST_INVALID
    assert "3 levels with rows in the cohort (c0, c1, c2)" in err.value.detail
    assert "'levels'" in err.value.detail and err.value.extra["levels"] == ["c0", "c1", "c2"]


def test_ttest_takes_its_two_levels_from_the_cohort() -> None:
    """``cultivar in [c2, c0]`` of three categories: those two, in the cohort's order."""
    df = wine()
    sites = split_sites(df, [2, 3, 4], seed=5, sort_by="alcohol", categories=CULTIVAR)
    cohort = {"all": [{"var": "cultivar", "op": "in", "value": ["c2", "c0"]}]}
    request = {"analysis": "ttest", "variable": "alcohol", "group": "cultivar", "cohort": cohort}
    result, _, federation = run_request(sites, request)
    assert isinstance(result, TTestResult) and list(result.groups) == ["c2", "c0"]
    assert [e.step.model_dump()["levels"] for e in federation.log] == [["c2", "c0"]] * 2
    a, b = df.loc[df.cultivar == "c2", "alcohol"], df.loc[df.cultivar == "c0", "alcohol"]
    assert result.groups["c2"].n == len(a) and result.n == len(a) + len(b)
    _check_ttest(result, a, b)


def test_ttest_takes_the_two_levels_the_data_leaves() -> None:
    """``cultivar != c1``: the categories with rows, c0 and c2, in dictionary order."""
    df = wine()
    sites = split_sites(df, [3, 1, 2], seed=6, categories=CULTIVAR)
    cohort = {"all": [{"var": "cultivar", "op": "!=", "value": "c1"}]}
    request = {"analysis": "ttest", "variable": "hue", "group": "cultivar", "cohort": cohort}
    result, _, federation = run_request(sites, request, min_rows=5, min_cell=5)
    assert isinstance(result, TTestResult) and list(result.groups) == ["c0", "c2"]
    assert [e.mode for e in federation.log] == ["sum", "sum"]  # the counts came secure-summed
    _check_ttest(result, df.loc[df.cultivar == "c0", "hue"], df.loc[df.cultivar == "c2", "hue"])


def test_ttest_cohort_with_one_level_is_request_invalid() -> None:
    sites = split_sites(wine(), [1, 1], seed=2, categories=CULTIVAR)
    cohort = {"all": [{"var": "cultivar", "op": "==", "value": "c1"}]}
    with pytest.raises(FedpsyError) as err:
        run_request(
            sites, {"analysis": "ttest", "variable": "hue", "group": "cultivar", "cohort": cohort}
        )
    assert err.value.code == ErrorCode.REQUEST_INVALID
    assert "keeps only level 'c1'" in err.value.detail


def test_moments_travel_only_as_sums() -> None:
    """Every exchange of these analyses is a secure-summable step."""
    sites = split_sites(diabetes(), [1, 2, 3], seed=1, categories=SEX)
    _, _, federation = run_request(sites, {"analysis": "summary", "variables": ["bmi"]})
    assert [e.mode for e in federation.log] == ["sum", "sum", "sum"]
    first, second, third = federation.log
    assert first.step.model_dump()["center"] is None
    assert second.step.model_dump()["center"] is not None
    # the third round (skewness, kurtosis): power sums of (x − mean)/sd, nothing per site,
    # over the same rows (every variable of the summary is in the step)
    assert third.step.model_dump()["higher"] == ["bmi"]
    assert third.step.model_dump()["scale"] is not None
    assert {s: d.rows for s, d in third.disclosures.items()} == {
        s: d.rows for s, d in second.disclosures.items()
    }


SHAPE_RTOL = 1e-10  # bar for skewness and kurtosis against scipy (measured: below 2e-14)


def _check_shape(got: float | None, expected: float) -> None:
    assert got is not None
    assert got == pytest.approx(expected, rel=SHAPE_RTOL)


def test_summary_skewness_and_kurtosis_equal_scipy() -> None:
    """G1 and G2 (bias-adjusted, Fisher) from three secure-summable rounds equal scipy's
    ``skew(x, bias=False)`` and ``kurtosis(x, bias=False)`` on the pooled rows."""
    df = diabetes(missing=0.1, seed=3)
    columns = ["bmi", "bp", "target", "s5", "s4"]
    sites = split_sites(df, [1, 2, 5], seed=1, sort_by="age", categories=SEX)
    result, _, _ = run_request(sites, {"analysis": "summary", "variables": columns})
    assert isinstance(result, SummaryResult)
    for code in columns:
        x = df[code].dropna().to_numpy()
        _check_shape(result.variables[code].skewness, stats.skew(x, bias=False))
        _check_shape(result.variables[code].kurtosis, stats.kurtosis(x, bias=False))
    wine_df = wine()
    variables = ["proline", "magnesium", "malic_acid", "hue"]
    sites = split_sites(
        wine_df, [5, 2, 3], seed=11, sort_by="proline", categories={"cultivar": ["c0", "c1", "c2"]}
    )
    cohort = {"all": [{"var": "cultivar", "op": "!=", "value": "c1"}]}
    result, _, _ = run_request(
        sites, {"analysis": "summary", "variables": variables, "cohort": cohort}
    )
    assert isinstance(result, SummaryResult)
    chosen = wine_df[wine_df["cultivar"] != "c1"]
    for code in variables:
        x = chosen[code].to_numpy()
        _check_shape(result.variables[code].skewness, stats.skew(x, bias=False))
        _check_shape(result.variables[code].kurtosis, stats.kurtosis(x, bias=False))


def test_skewness_and_kurtosis_stay_exact_when_the_mean_dwarfs_the_spread() -> None:
    """target + 1e9 (exact in float64): the third round is taken about the exact pooled mean
    and scaled by the pooled sd, so the result is the shift-free one. (scipy on the shifted
    column itself misses by ~1e-9: its own one-pass mean is off.)"""
    df = diabetes()
    df["shifted"] = df["target"] + 1e9
    sites = split_sites(df, [3, 1, 2], seed=5, sort_by="target", categories=SEX)
    result, _, federation = run_request(sites, {"analysis": "summary", "variables": ["shifted"]})
    assert isinstance(result, SummaryResult)
    x = df["target"].to_numpy()
    _check_shape(result.variables["shifted"].skewness, stats.skew(x, bias=False))
    _check_shape(result.variables["shifted"].kurtosis, stats.kurtosis(x, bias=False))
    third = federation.log[-1].total
    assert isinstance(third, MomentsResult)
    # standardized sums are of the order of n: far inside secure aggregation's fixed point
    assert abs(third.sums[0][0]) < 1e-6 and third.squares[0][0] == pytest.approx(len(x) - 1)
    assert 0 < third.fourths[0][0] < 10 * len(x)


def test_skewness_and_kurtosis_are_null_when_undefined() -> None:
    """Skewness needs n ≥ 3, kurtosis n ≥ 4, both a positive variance (below that scipy
    falls back to the biased estimate, or NaN for a constant: the summary says null)."""
    values = {
        "three": [1.0, 2.0, 4.0, np.nan, np.nan, np.nan],
        "two": [1.0, 5.0, np.nan, np.nan, np.nan, np.nan],
        "flat": [3.0] * 6,
        "four": [1.0, 2.0, 4.0, 8.0, np.nan, np.nan],
    }
    df = pd.DataFrame(values)
    sites = split_sites(df, [1, 1], seed=2)
    result, rows, federation = run_request(
        sites, {"analysis": "summary", "variables": list(values)}
    )
    assert isinstance(result, SummaryResult)
    # the third round asks only about "three" and "four", over the summary's rows
    assert federation.log[-1].step.model_dump()["higher"] == ["three", "four"]
    assert rows == {s: d.rows for s, d in federation.log[1].disclosures.items()}
    got = result.variables
    three = np.array(values["three"][:3])
    _check_shape(got["three"].skewness, stats.skew(three, bias=False))
    assert got["three"].kurtosis is None
    assert (got["two"].skewness, got["two"].kurtosis) == (None, None)
    assert (got["flat"].skewness, got["flat"].kurtosis) == (None, None)
    assert got["flat"].sd == 0.0
    four = np.array(values["four"][:4])
    _check_shape(got["four"].kurtosis, stats.kurtosis(four, bias=False))
    # older readers: the new fields are optional
    old = {k: v for k, v in got["four"].model_dump().items() if k not in ("skewness", "kurtosis")}
    assert VariableSummary.model_validate(old).skewness is None
