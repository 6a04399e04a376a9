"""Cohort filters and the in-memory frame source, against plain pandas masks."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import TypeAdapter

from node.data.cohort import cohort_mask
from node.data.frame_memory import DataFrameSource
from schemas.analyses.count import CountResult
from schemas.cohort import Cohort
from schemas.errors import FedpsyError
from tests.support.datasets import fair
from tests.support.federation import run_request, split_sites

OCCUPATION = {"occupation": ["1", "2", "3", "4", "5", "6"]}


def _frame() -> pd.DataFrame:
    df = fair()
    rng = np.random.default_rng(5)
    df.loc[rng.random(len(df)) < 0.1, "educ"] = np.nan
    df.loc[rng.random(len(df)) < 0.1, "occupation"] = np.nan
    return df


COHORT: TypeAdapter[Cohort] = TypeAdapter(Cohort)


def _cohort(data: dict[str, Any]) -> Cohort:
    return COHORT.validate_python(data)


CASES: list[tuple[dict[str, Any], Any]] = [
    ({"all": []}, lambda d: pd.Series(True, index=d.index)),
    ({"all": [{"var": "age", "op": ">=", "value": 32}]}, lambda d: d.age >= 32),
    (
        {"all": [{"var": "educ", "op": "!=", "value": 12}]},
        lambda d: d.educ.notna() & (d.educ != 12),
    ),
    ({"all": [{"var": "educ", "op": "is_null"}]}, lambda d: d.educ.isna()),
    ({"all": [{"var": "occupation", "op": "not_null"}]}, lambda d: d.occupation.notna()),
    (
        {"all": [{"var": "occupation", "op": "in", "value": [2, "3"]}]},
        lambda d: d.occupation.isin(["2", "3"]),
    ),
    (
        {"all": [{"var": "occupation", "op": "not_in", "value": ["2", "3"]}]},
        lambda d: d.occupation.notna() & ~d.occupation.isin(["2", "3"]),
    ),
    (
        {"all": [{"var": "religious", "op": "in", "value": [1, 4.0]}]},
        lambda d: d.religious.isin([1.0, 4.0]),
    ),
    ({"all": [{"var": "had_affair", "op": "==", "value": True}]}, lambda d: d.had_affair == 1),
    (
        {
            "all": [
                {"var": "age", "op": "<", "value": 30},
                {
                    "any": [
                        {"var": "occupation", "op": "==", "value": "5"},
                        {
                            "all": [
                                {"var": "educ", "op": ">", "value": 14},
                                {"var": "children", "op": "<=", "value": 1},
                            ]
                        },
                    ]
                },
            ]
        },
        lambda d: (d.age < 30) & ((d.occupation == "5") | ((d.educ > 14) & (d.children <= 1))),
    ),
    (
        {"any": [{"var": "site", "op": "==", "value": "site2"}, {"var": "educ", "op": "is_null"}]},
        lambda d: (d.site == "site2") | d.educ.isna(),
    ),
]


@pytest.mark.parametrize(("cohort", "expected"), CASES)
def test_cohort_counts_equal_pandas_masks(cohort: dict[str, Any], expected: Any) -> None:
    df = _frame()
    sites = split_sites(df, [2, 5, 3], seed=3, sort_by="age", categories=OCCUPATION)
    result, rows, _ = run_request(sites, {"analysis": "count", "cohort": cohort})
    columns = [*df.columns.drop("affairs"), "site"]
    assert isinstance(result, CountResult)
    total = 0
    for site, src in sites.items():
        local = src.frame(columns, "baseline", None).astype({"site": object})
        local["occupation"] = local["occupation"].astype(object)
        want = expected(local)
        mask = cohort_mask(local, COHORT.validate_python(cohort))
        assert mask.index.equals(local.index)
        assert mask.tolist() == want.tolist()
        assert rows[site] == int(want.sum())
        total += int(want.sum())
    assert result.n == total


def test_site_condition_selects_the_sites_asked() -> None:
    sites = split_sites(_frame(), [2, 5, 3], seed=3, categories=OCCUPATION)
    cohort = {"all": [{"var": "site", "op": "in", "value": ["site1", "site3"]}]}
    result, rows, federation = run_request(sites, {"analysis": "count", "cohort": cohort})
    assert set(rows) == {"site1", "site3"} and federation.sites == ["site1", "site3"]
    assert isinstance(result, CountResult) and result.n == sum(rows.values())


def test_ordering_a_categorical_is_a_clear_error() -> None:
    sites = split_sites(_frame(), [1, 1, 1], seed=1, categories=OCCUPATION)
    with pytest.raises(FedpsyError) as err:
        run_request(
            sites,
            {
                "analysis": "count",
                "cohort": {"all": [{"var": "occupation", "op": ">", "value": "2"}]},
            },
        )
    assert err.value.code == "request_invalid"
    assert err.value.extra["sites"] == {s: "request_invalid" for s in sites}
    frame = sites["site1"].frame(["occupation"], "baseline", None)
    with pytest.raises(FedpsyError, match="'occupation'") as direct:
        cohort_mask(frame, _cohort({"all": [{"var": "occupation", "op": "<", "value": "2"}]}))
    assert direct.value.code == "request_invalid"


def test_unknown_variable_and_text_against_number() -> None:
    frame = split_sites(_frame(), [1], seed=1, categories=OCCUPATION)["site1"].frame(
        ["age"], "baseline", None
    )
    with pytest.raises(FedpsyError) as err:
        cohort_mask(frame, _cohort({"all": [{"var": "nope", "op": "is_null"}]}))
    assert err.value.code == "unknown_variable"
    with pytest.raises(FedpsyError, match="'age'") as err:
        cohort_mask(frame, _cohort({"all": [{"var": "age", "op": "==", "value": "old"}]}))
    assert err.value.code == "request_invalid"


def test_frame_source_shapes_and_types() -> None:
    data = pd.DataFrame(
        {
            "person_id": ["b", "a", "c", "a", "b"],
            "visit": ["baseline", "baseline", "baseline", "week6", "week6"],
            "sex": ["M", "F", None, "F", "M"],
            "score": [1, 2.5, None, 4, 5],
            "trs": [1, 0, 1, 0, 1],
        }
    )
    src = DataFrameSource("alpha", data, {"sex": ["F", "M"]})
    base = src.frame(["sex", "score", "trs", "site"], "baseline", None)
    assert list(base.index) == [1, 0, 2]  # row ids: position in sorted person ids
    assert isinstance(base["sex"].dtype, pd.CategoricalDtype)
    assert list(base["sex"].cat.categories) == ["F", "M"] and pd.isna(base["sex"].iloc[2])
    assert base["score"].dtype == np.float64 and np.isnan(base["score"].iloc[2])
    assert base["trs"].dtype == np.float64
    assert list(base["site"].cat.categories) == ["alpha"]
    week6 = src.frame(
        ["score"], "week6", _cohort({"all": [{"var": "sex", "op": "==", "value": "M"}]})
    )
    assert list(week6.index) == [1] and week6["score"].tolist() == [5.0]
    assert src.frame(["score"], "week99", None).empty
    with pytest.raises(FedpsyError) as err:
        src.frame(["missing_var"], "baseline", None)
    assert err.value.code == "unknown_variable"


def test_frame_source_rejects_unknown_labels_and_duplicates() -> None:
    data = pd.DataFrame({"person_id": ["a", "b"], "sex": ["F", "X"]})
    with pytest.raises(FedpsyError, match="'sex'"):
        DataFrameSource("alpha", data, {"sex": ["F", "M"]})
    dup = pd.DataFrame({"person_id": ["a", "a"], "score": [1, 2]})
    with pytest.raises(FedpsyError, match="repeat"):
        DataFrameSource("alpha", dup, {})
