"""Count, crosstab, histogram and quantiles over unequal sites equal the pooled references."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from coordinator.stats.bins import coarsen, merge_small
from schemas.analyses.count import CountResult
from schemas.analyses.crosstab import CrosstabResult
from schemas.analyses.histogram import HistogramResult
from schemas.analyses.quantiles import QuantilesResult
from schemas.errors import FedpsyError
from tests.support.datasets import diabetes, fair, iris, wine
from tests.support.federation import run_request, split_sites

RTOL = 1e-10
SPECIES = {"species": ["setosa", "versicolor", "virginica"]}


def test_count_with_cohort_and_site_selection() -> None:
    df = diabetes()
    sites = split_sites(df, [1, 2, 4], seed=2, sort_by="age", categories={"sex": ["F", "M"]})
    result, rows, _ = run_request(sites, {"analysis": "count"})
    assert isinstance(result, CountResult) and result.n == len(df) == sum(rows.values())
    assert len(set(rows.values())) == 3  # unequal sites
    cohort = {
        "all": [
            {"var": "site", "op": "==", "value": "site2"},
            {"var": "bmi", "op": ">=", "value": 0.0},
        ]
    }
    result, rows, _ = run_request(sites, {"analysis": "count", "cohort": cohort})
    frame = sites["site2"].frame(["bmi"], "baseline", None)
    assert isinstance(result, CountResult)
    assert list(rows) == ["site2"] and result.n == int((frame["bmi"] >= 0).sum())


def test_crosstab_equals_chi2_contingency() -> None:
    df = fair()
    sites = split_sites(
        df,
        [3, 1, 6],
        seed=4,
        sort_by="rate_marriage",
        categories={"occupation": ["1", "2", "3", "4", "5", "6"]},
    )
    result, rows, _ = run_request(
        sites, {"analysis": "crosstab", "row": "occupation", "column": "had_affair"}
    )
    assert isinstance(result, CrosstabResult)
    table = np.array(
        [
            [np.sum((df.occupation == r) & (df.had_affair == float(c))) for c in (0, 1)]
            for r in ["1", "2", "3", "4", "5", "6"]
        ]
    )
    assert result.rows == ["1", "2", "3", "4", "5", "6"] and result.columns == ["0", "1"]
    assert np.array_equal(np.array(result.counts), table)
    ref = stats.chi2_contingency(table, correction=False)
    assert result.chi2.statistic == pytest.approx(ref.statistic, rel=RTOL)
    assert result.chi2.df == ref.dof
    assert result.chi2.p_value == pytest.approx(ref.pvalue, rel=1e-8)
    assert result.n == len(df) == sum(rows.values()) and result.missing == 0


def test_crosstab_with_given_levels_and_missing() -> None:
    df = diabetes(missing=0.1, seed=1)
    df["bmi_band"] = np.where(df["bmi"].isna(), np.nan, (df["bmi"] > 0).astype(float) + 1)
    sites = split_sites(df, [2, 5, 1], seed=6, sort_by="target", categories={"sex": ["F", "M"]})
    result, _, _ = run_request(
        sites,
        {"analysis": "crosstab", "row": "sex", "column": "bmi_band", "column_levels": ["1", "2"]},
    )
    assert isinstance(result, CrosstabResult)
    used = df[["sex", "bmi_band"]].dropna()
    table = np.array(
        [[np.sum((used.sex == s) & (used.bmi_band == b)) for b in (1.0, 2.0)] for s in ("F", "M")]
    )
    assert np.array_equal(np.array(result.counts), table)
    assert result.missing == len(df) - len(used)
    ref = stats.chi2_contingency(table, correction=False)
    assert result.chi2.statistic == pytest.approx(ref.statistic, rel=RTOL)


def test_crosstab_by_site_drops_empty_rows_from_the_test() -> None:
    df = iris()
    sites = split_sites(df, [1, 1, 1], seed=0, sort_by="petal_length", categories=SPECIES)
    result, _, _ = run_request(sites, {"analysis": "crosstab", "row": "species", "column": "site"})
    assert isinstance(result, CrosstabResult)
    assert result.columns == ["site1", "site2", "site3"]
    table = np.array(result.counts)
    assert table.sum() == 150 and (table == 0).any()  # sorted by petal length: skewed mix
    kept = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
    ref = stats.chi2_contingency(kept, correction=False)
    assert result.chi2.statistic == pytest.approx(ref.statistic, rel=RTOL)
    assert result.chi2.df == ref.dof


def test_histogram_equals_numpy() -> None:
    df = wine()
    edges = [250.0, 500, 750, 1000, 1250, 1500, 1700]
    sites = split_sites(
        df, [4, 1, 2], seed=3, sort_by="proline", categories={"cultivar": ["c0", "c1", "c2"]}
    )
    result, _, _ = run_request(
        sites, {"analysis": "histogram", "variable": "proline", "edges": edges, "min_count": 0}
    )
    assert isinstance(result, HistogramResult)
    counts, _ = np.histogram(df["proline"], bins=edges)
    assert result.counts == counts.tolist() and result.edges == edges
    assert result.below == int((df.proline < 250).sum()) and result.above == 0
    assert result.n == len(df) and not result.merged and result.coarsened == 0


def test_histogram_coarsens_until_no_site_refuses() -> None:
    df = wine()
    edges = [float(e) for e in np.linspace(11.0, 15.0, 9)]  # the grid's 0.5 steps
    sites = split_sites(
        df, [4, 1, 2], seed=3, sort_by="alcohol", categories={"cultivar": ["c0", "c1", "c2"]}
    )
    result, _, federation = run_request(
        sites, {"analysis": "histogram", "variable": "alcohol", "edges": edges}, min_cell=5
    )
    assert isinstance(result, HistogramResult)
    assert result.coarsened >= 1 and len(result.edges) < len(edges)
    assert set(result.edges) <= set(edges)
    counts, _ = np.histogram(df["alcohol"], bins=result.edges)
    assert result.counts == counts.tolist()
    # the accepted exchange had no small cell at any site
    last = federation.log[-1]
    assert all(not 0 < c < 5 for d in last.disclosures.values() for c in d.cells)


def test_merge_small_and_coarsen() -> None:
    assert coarsen([0.0, 1, 2, 3, 4]) == [0.0, 2, 4]
    assert coarsen([0.0, 1, 2, 3]) == [0.0, 2, 3]
    assert merge_small([0.0, 1, 2, 3, 4], [10, 2, 7, 0], 5) == ([0.0, 1, 3, 4], [10, 9, 0])
    assert merge_small([0.0, 1, 2, 3], [10, 0, 2], 5) == ([0.0, 3], [12])
    assert merge_small([0.0, 1, 2], [0, 0], 5) == ([0.0, 1, 2], [0, 0])


@pytest.mark.parametrize("bins", [1000, 137])
def test_quantiles_within_the_stated_bound(bins: int) -> None:
    df = fair()
    sites = split_sites(df, [1, 3, 2], seed=9, sort_by="age")
    probabilities = [0.0, 0.05, 0.25, 0.5, 0.9, 0.99, 1.0]
    for variable in ("age", "yrs_married", "affairs"):
        result, _, _ = run_request(
            sites,
            {
                "analysis": "quantiles",
                "variable": variable,
                "probabilities": probabilities,
                "bins": bins,
            },
        )
        assert isinstance(result, QuantilesResult)
        expected = np.quantile(df[variable], probabilities)
        errors = np.abs(np.array(result.values) - expected)
        assert np.all(errors <= result.error_bound), (variable, errors, result.error_bound)
        # the bins lie on the public grid, so they are at least as wide as asked
        assert result.error_bound >= (result.upper - result.lower) / bins * (1 - 1e-9)


def test_quantiles_with_given_range_and_offset() -> None:
    df = diabetes()
    df["shifted"] = df["target"] / 1000 + 5  # 5.025 .. 5.346: the grid's spacing is 0.05
    sites = split_sites(df, [2, 1, 2], seed=2, categories={"sex": ["F", "M"]})
    result, _, _ = run_request(
        sites,
        {
            "analysis": "quantiles",
            "variable": "shifted",
            "lower": 5.0,
            "upper": 5.4,
            "bins": 4000,
        },
    )
    assert isinstance(result, QuantilesResult)
    expected = np.quantile(df["shifted"], [0.25, 0.5, 0.75])
    assert result.error_bound == pytest.approx(0.05)
    assert np.all(np.abs(np.array(result.values) - expected) <= result.error_bound)


def test_quantile_outside_the_range_is_an_error() -> None:
    sites = split_sites(diabetes(), [1, 1, 1], seed=2, categories={"sex": ["F", "M"]})
    with pytest.raises(FedpsyError) as err:
        run_request(
            sites,
            {
                "analysis": "quantiles",
                "variable": "target",
                "lower": 100,
                "upper": 200,
                "probabilities": [0.01],
            },
        )
    assert err.value.code == "request_invalid"
