"""Kaplan–Meier, log-rank and Cox over unequal sites equal statsmodels on the pooled rows.

Data shipped with statsmodels: the Stanford heart transplant survival (``heart``, days),
the bone marrow transplant data of Klein & Moeschberger (``bmt``: three disease groups,
days) and statsmodels' own Cox test data (1000 rows, times in tenths with heavy ties, ten
covariates); plus a simulated cohort named like the dictionary's derived variables
(``time_to_rehospitalization``, ``rehospitalization``) with missing values and a
categorical covariate. Sites are split unequally and with different case mix, so tied
times fall at different sites.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
import statsmodels
import statsmodels.api as sm
from statsmodels.duration.hazard_regression import PHReg
from statsmodels.duration.survfunc import SurvfuncRight, survdiff

from node.data.frame_memory import DataFrameSource
from schemas.analyses import parse_request
from schemas.analyses.cox import CoxResult
from schemas.analyses.kaplan_meier import KaplanMeierResult
from schemas.analyses.logrank import LogrankResult
from schemas.errors import FedpsyError
from schemas.steps.survival import SurvivalCountsStep, SurvivalExtentResult
from tests.support.federation import run_request, split_sites

RTOL = 1e-8
RESULTS = Path(statsmodels.__file__).parent / "duration" / "tests" / "results"
BMT_GROUPS = ["ALL", "AML-Low Risk", "AML-High Risk"]


def heart() -> pd.DataFrame:
    data: pd.DataFrame = sm.datasets.heart.load_pandas().data
    return data.rename(columns={"survival": "days", "censors": "died"})


def bmt() -> pd.DataFrame:
    data = pd.read_csv(RESULTS / "bmt.csv")
    return data.rename(columns={"Group": "disease", "T": "days", "Status": "died"})


def phreg_data() -> pd.DataFrame:
    raw = np.loadtxt(RESULTS / "survival_data_1000_10.csv")
    data = pd.DataFrame(raw[:, 3:], columns=[f"x{j}" for j in range(1, 11)])
    data.insert(0, "died", raw[:, 1])
    data.insert(0, "years", raw[:, 0])
    data["arm"] = np.where(data["x1"] > 0, "b", "a")
    return data


def rehospitalization(n: int = 900, seed: int = 11) -> pd.DataFrame:
    """Days to rehospitalization (whole days, so ties) with censoring and missing values."""
    rng = np.random.default_rng(seed)
    age = rng.normal(40, 12, n)
    male = rng.random(n) < 0.55
    trs = (rng.random(n) < 0.3).astype(float)
    rate = 0.002 * np.exp(0.02 * (age - 40) + 0.3 * male + 0.6 * trs)
    event_day = np.ceil(rng.exponential(1 / rate))
    end = rng.integers(200, 1500, n).astype(float)
    data = pd.DataFrame(
        {
            "time_to_rehospitalization": np.minimum(event_day, end),
            "rehospitalization": (event_day <= end).astype(float),
            "age": np.round(age, 1),
            "sex": np.where(male, "M", "F"),
            "trs": trs,
        }
    )
    data.loc[rng.random(n) < 0.05, "age"] = np.nan
    data.loc[rng.random(n) < 0.03, "rehospitalization"] = np.nan
    return data


def km_reference(
    time: npt.ArrayLike, died: npt.ArrayLike, grid: Sequence[float]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """statsmodels' product-limit estimate and Greenwood SE at the grid times."""
    sf = SurvfuncRight(np.asarray(time), np.asarray(died))
    i = np.searchsorted(sf.surv_times, np.asarray(grid), side="right") - 1
    survival = np.where(i >= 0, sf.surv_prob[np.maximum(i, 0)], 1.0)
    std_error = np.where(i >= 0, sf.surv_prob_se[np.maximum(i, 0)], 0.0)
    return survival, std_error


def interval_events(time: pd.Series, died: pd.Series, grid: Sequence[float]) -> list[int]:
    """Events in [0, g_1], (g_1, g_2], … counted on the pooled rows."""
    edges = [-np.inf, *grid]
    return [int(((time > a) & (time <= b) & (died == 1)).sum()) for a, b in pairwise(edges)]


def assert_curve(result: KaplanMeierResult, label: str, data: pd.DataFrame, time: str) -> None:
    curve = result.groups[label]
    survival, std_error = km_reference(data[time], data["died"], curve.time)
    np.testing.assert_allclose(curve.survival, survival, rtol=RTOL)
    np.testing.assert_allclose(
        [np.nan if s is None else s for s in curve.std_error], std_error, rtol=RTOL
    )
    assert curve.at_risk == [int((data[time] >= g).sum()) for g in curve.time]
    assert curve.events == interval_events(data[time], data["died"], curve.time)


def tied_across_sites(sites: dict[str, DataFrameSource], time: str, event: str) -> bool:
    """Whether some event time occurs at two or more sites."""
    seen = [
        set(f.loc[f[event] == 1, time])
        for f in (s.frame([time, event], "baseline", None) for s in sites.values())
    ]
    return any(seen[i] & seen[j] for i in range(len(seen)) for j in range(i + 1, len(seen)))


def test_kaplan_meier_by_group_equals_survfunc() -> None:
    df = bmt()
    sites = split_sites(df, [2, 5, 3], seed=1, sort_by="days", categories={"disease": BMT_GROUPS})
    assert tied_across_sites(sites, "days", "died")
    grid = [30, 100, 183, 365, 500, 730, 1000, 1500, 2000]
    request = {
        "analysis": "kaplan_meier",
        "time": "days",
        "event": "died",
        "group": "disease",
        "grid": grid,
        "min_events": 0,
    }
    result, rows, fed = run_request(sites, request)
    assert isinstance(result, KaplanMeierResult)
    assert list(result.groups) == BMT_GROUPS and not result.merged and result.coarsened == 0
    for label in BMT_GROUPS:
        assert result.groups[label].time == grid
        assert_curve(result, label, df[df.disease == label], "days")
    assert result.n == len(df) == sum(rows.values()) and result.missing == 0
    assert len(set(rows.values())) == 3
    # the axis ends at the last grid time: no extent round, nothing later is counted
    (exchange,) = fed.log
    assert isinstance(exchange.step, SurvivalCountsStep) and exchange.step.horizon == 2000


def test_kaplan_meier_fractional_times_with_ties() -> None:
    df = phreg_data()
    sites = split_sites(df, [5, 1, 3], seed=7, sort_by="x2", categories={"arm": ["a", "b"]})
    assert tied_across_sites(sites, "years", "died")
    grid = [0.5, 1.0, 1.5, 2.2, 3.0, 4.1, 5.0]
    request = {
        "analysis": "kaplan_meier",
        "time": "years",
        "event": "died",
        "grid": grid,
        "resolution": 0.1,
    }
    result, _, _ = run_request(sites, request)
    assert isinstance(result, KaplanMeierResult) and list(result.groups) == ["all"]
    assert not result.merged  # every interval holds at least five events here
    assert_curve(result, "all", df, "years")


def test_kaplan_meier_never_discloses_an_interval_with_few_events() -> None:
    df = rehospitalization(3000).rename(
        columns={"time_to_rehospitalization": "days", "rehospitalization": "died"}
    )
    df = df.dropna(subset=["died"])
    sites = split_sites(df, [2, 5, 3], seed=2, categories={"sex": ["F", "M"]})
    grid = list(range(20, 1001, 20))
    minimum = 5
    request = {
        "analysis": "kaplan_meier",
        "time": "days",
        "event": "died",
        "group": "sex",
        "grid": grid,
        "min_events": minimum,
    }
    result, _, fed = run_request(sites, request, min_cell=minimum)
    assert isinstance(result, KaplanMeierResult)
    # sites refused the fine grid; the coordinator probed one time at a time (bounded:
    # the whole grid, one probe per time, the kept grid) and left out the refused times
    assert result.coarsened >= 1 and result.merged
    assert len(fed.log) <= len(grid) + 2
    assert [e.step.probe for e in fed.log] == [False, *[True] * (len(fed.log) - 2), False]
    probes = [e for e in fed.log if e.step.probe and e.results]
    assert probes and all(not r.n and not r.at_risk for e in probes for r in e.results.values())
    left_out = {m.time for m in result.merged_points}
    assert left_out and left_out.isdisjoint(result.groups["F"].time)
    assert left_out | set(result.groups["F"].time) == set(grid)
    # what each site let out passed its gate: no interval with 1..4 of its own events or
    # exits (events and censored rows leaving the risk set between reported times)
    for exchange in fed.log[-1:]:
        for site, disclosure in exchange.disclosures.items():
            assert all(c == 0 or c >= minimum for c in disclosure.cells)
            rows = sites[site].frame(["days", "died", "sex"], "baseline", None)
            step = exchange.step
            assert isinstance(step, SurvivalCountsStep) and step.intervals is not None
            for sex in ("F", "M"):
                days = rows.loc[rows["sex"] == sex, "days"].to_numpy()
                bounds = [0, *step.intervals, np.inf]
                exits = [int(((days >= a) & (days < b)).sum()) for a, b in pairwise(bounds)]
                assert all(e == 0 or e >= minimum for e in exits), (site, sex, exits)
    # what the result shows: every reported interval holds 0 or at least the minimum events
    for label in ("F", "M"):
        curve = result.groups[label]
        assert set(curve.time) <= set(grid) and 1 < len(curve.time) < len(grid)
        pooled = df[df["sex"] == label]
        counted = interval_events(pooled["days"], pooled["died"], curve.time)
        assert counted == curve.events
        assert all(c == 0 or c >= minimum for c in counted)
        assert_curve(result, label, pooled, "days")  # still the exact pooled estimate


def test_logrank_equals_survdiff() -> None:
    df = bmt()
    sites = split_sites(df, [3, 1, 2], seed=5, sort_by="days", categories={"disease": BMT_GROUPS})
    request = {"analysis": "logrank", "time": "days", "event": "died", "group": "disease"}
    result, rows, fed = run_request(sites, request)
    assert isinstance(result, LogrankResult)
    chisq, p = survdiff(df.days, df.died, df.disease)
    assert result.statistic == pytest.approx(chisq, rel=RTOL)
    assert result.p_value == pytest.approx(p, rel=RTOL)
    assert result.df == 2 and result.n == len(df) == sum(rows.values())
    for label in BMT_GROUPS:
        assert result.groups[label].observed == int(df.died[df.disease == label].sum())
        assert result.groups[label].n == int((df.disease == label).sum())
    total_expected = sum(g.expected for g in result.groups.values())
    assert total_expected == pytest.approx(df.died.sum(), rel=1e-12)
    # the extent round bracketed the longest time by a power of two, no finer
    extent = fed.log[0].total
    assert isinstance(extent, SurvivalExtentResult)
    top = max(j for j, c in enumerate(extent.reaches) if c)
    assert 2**top <= df.days.max() < 2 ** (top + 1)
    assert fed.log[1].step.horizon == 2 ** (top + 1) - 1  # type: ignore[attr-defined]
    # two of the three levels
    two = {**request, "levels": ["AML-Low Risk", "AML-High Risk"]}
    result, _, _ = run_request(sites, two)
    assert isinstance(result, LogrankResult) and result.df == 1
    sub = df[df.disease != "ALL"]
    chisq, p = survdiff(sub.days, sub.died, sub.disease)
    assert result.statistic == pytest.approx(chisq, rel=RTOL)
    assert result.p_value == pytest.approx(p, rel=RTOL)


def test_logrank_with_heavy_ties_and_site_as_group() -> None:
    df = phreg_data()
    sites = split_sites(df, [5, 1, 3], seed=7, sort_by="x2", categories={"arm": ["a", "b"]})
    base = {"analysis": "logrank", "time": "years", "event": "died", "resolution": 0.1}
    result, _, _ = run_request(sites, {**base, "group": "arm"})
    assert isinstance(result, LogrankResult)
    chisq, p = survdiff(df.years, df.died, df.arm)
    assert result.statistic == pytest.approx(chisq, rel=RTOL)
    assert result.p_value == pytest.approx(p, rel=RTOL)
    result, _, _ = run_request(sites, {**base, "group": "site"})
    assert isinstance(result, LogrankResult) and list(result.groups) == list(sites)
    frames = [s.frame(["years", "died"], "baseline", None).assign(site=k) for k, s in sites.items()]
    pooled = pd.concat(frames)
    chisq, p = survdiff(pooled.years, pooled.died, pooled.site)
    assert result.df == 2 and result.statistic == pytest.approx(chisq, rel=RTOL)
    assert result.p_value == pytest.approx(p, rel=RTOL)


def values(rows: Sequence[object], field: str) -> npt.NDArray[np.float64]:
    """One field of every row, as floats (None as NaN, which then fails the comparison)."""
    out = [getattr(r, field) for r in rows]
    return np.array([np.nan if v is None else v for v in out], dtype=np.float64)


def assert_cox(result: CoxResult, reference: PHReg, exog_names: Sequence[str]) -> None:
    fit = reference.fit()
    rows, ratios = result.coefficients, result.hazard_ratios
    assert [c.term for c in rows] == list(exog_names) == [h.term for h in ratios]
    np.testing.assert_allclose(values(rows, "estimate"), fit.params, rtol=RTOL)
    np.testing.assert_allclose(values(rows, "std_error"), fit.bse, rtol=RTOL)
    np.testing.assert_allclose(values(rows, "statistic"), fit.tvalues, rtol=RTOL)
    np.testing.assert_allclose(values(rows, "p_value"), fit.pvalues, rtol=RTOL)
    ci = np.exp(fit.conf_int())
    np.testing.assert_allclose(values(ratios, "hazard_ratio"), np.exp(fit.params), rtol=RTOL)
    np.testing.assert_allclose(values(ratios, "lower"), ci[:, 0], rtol=RTOL)
    np.testing.assert_allclose(values(ratios, "upper"), ci[:, 1], rtol=RTOL)
    assert result.log_likelihood == pytest.approx(fit.llf, rel=1e-10)
    assert result.converged and 1 <= result.iterations <= 10
    assert result.n == reference.nobs and result.events == int(reference.status.sum())


def test_cox_efron_on_heart_and_bmt() -> None:
    df = heart()
    sites = split_sites(df, [1, 2, 3], seed=3, sort_by="age")
    assert tied_across_sites(sites, "days", "died")
    request = {"analysis": "cox", "time": "days", "event": "died", "formula": "age"}
    result, rows, _ = run_request(sites, request)
    assert isinstance(result, CoxResult) and result.ties == "efron"
    assert_cox(result, PHReg(df.days, df[["age"]], df.died, ties="efron"), ["age"])
    assert sum(rows.values()) == len(df) and result.missing == 0

    df = bmt()
    sites = split_sites(df, [2, 5, 3], seed=1, sort_by="days", categories={"disease": BMT_GROUPS})
    request = {"analysis": "cox", "time": "days", "event": "died", "formula": "~ disease"}
    result, _, _ = run_request(sites, request)
    assert isinstance(result, CoxResult)
    exog = pd.DataFrame({g: (df.disease == g).astype(float) for g in BMT_GROUPS[1:]})
    names = [f"disease[T.{g}]" for g in BMT_GROUPS[1:]]
    assert_cox(result, PHReg(df.days, exog, df.died, ties="efron"), names)


def test_cox_ten_covariates_tenths_of_years() -> None:
    df = phreg_data()
    sites = split_sites(df, [5, 1, 3], seed=7, sort_by="x2", categories={"arm": ["a", "b"]})
    covariates = [f"x{j}" for j in range(1, 11)]
    request = {
        "analysis": "cox",
        "time": "years",
        "event": "died",
        "formula": " + ".join(covariates),
        "resolution": 0.1,
    }
    result, _, _ = run_request(sites, request)
    assert isinstance(result, CoxResult)
    assert_cox(result, PHReg(df.years, df[covariates], df.died, ties="efron"), covariates)


def test_cox_on_dictionary_variables_with_missing_values() -> None:
    df = rehospitalization()
    sites = split_sites(df, [4, 1, 2], seed=2, sort_by="age", categories={"sex": ["F", "M"]})
    time, event = "time_to_rehospitalization", "rehospitalization"
    request = {"analysis": "cox", "time": time, "event": event, "formula": "age + sex + trs"}
    result, rows, _ = run_request(sites, request)
    assert isinstance(result, CoxResult)
    complete = df.dropna()
    exog = pd.DataFrame(
        {"age": complete.age, "sex[T.M]": (complete.sex == "M").astype(float), "trs": complete.trs}
    )
    reference = PHReg(complete[time], exog, complete[event], ties="efron")
    assert_cox(result, reference, ["age", "sex[T.M]", "trs"])
    assert result.missing == len(df) - len(complete) and sum(rows.values()) == len(complete)
    # Kaplan–Meier by sex on the same variables: rows missing time or event are dropped
    km = {
        "analysis": "kaplan_meier",
        "time": time,
        "event": event,
        "group": "sex",
        "grid": [90, 180, 365, 730],
    }
    curves, _, _ = run_request(sites, km)
    assert isinstance(curves, KaplanMeierResult)
    usable = df.dropna(subset=[time, event]).rename(columns={event: "died"})
    assert curves.missing == len(df) - len(usable)
    for label in ("F", "M"):
        assert_curve(curves, label, usable[usable.sex == label], time)


def test_requests_and_refusals_say_what_is_wrong() -> None:
    with pytest.raises(FedpsyError, match="only the right side") as err:
        parse_request({"analysis": "cox", "time": "t", "event": "e", "formula": "t ~ age"})
    assert err.value.code == "request_invalid"
    with pytest.raises(FedpsyError, match="finite and ≥ 0"):
        parse_request(
            {"analysis": "kaplan_meier", "time": "t", "event": "e", "grid": [-1.5], "resolution": 1}
        )
    with pytest.raises(FedpsyError, match="strictly increasing"):
        parse_request({"analysis": "kaplan_meier", "time": "t", "event": "e", "grid": [5, 2]})
    df = heart()
    df.loc[3, "days"] = -17.0
    sites = split_sites(df, [1, 1, 1], seed=0)
    with pytest.raises(FedpsyError) as err:
        run_request(
            sites, {"analysis": "logrank", "time": "days", "event": "died", "group": "site"}
        )
    assert "negative" in err.value.detail and "17" not in err.value.detail
    df = heart()
    df["died"] = df["died"] * 2
    sites = split_sites(df, [1, 1, 1], seed=0)
    with pytest.raises(FedpsyError, match="must be binary"):
        run_request(sites, {"analysis": "cox", "time": "days", "event": "died", "formula": "age"})
