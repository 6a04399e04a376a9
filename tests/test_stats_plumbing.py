"""Additive results, the step and analysis registries, and request parsing."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pydantic import BaseModel, ConfigDict

from coordinator.analyses.registry import ANALYSES
from node.steps.registry import HANDLERS, run_step
from schemas.analyses import RESULTS, parse_request
from schemas.analyses.summary import SummaryRequest
from schemas.errors import FedpsyError
from schemas.steps.additive import add_results, flatten, unflatten
from schemas.steps.base import StepResult
from schemas.steps.moments import MomentsStep
from schemas.steps.registry import STEPS, parse_step
from schemas.steps.tabulate import CrosstabResult
from tests.support.datasets import iris
from tests.support.federation import split_sites


class Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")

    a: float
    b: list[int]


class Mixed(StepResult):
    label: str
    levels: list[str]
    n: int
    x: float
    ragged: list[list[float]]
    per: dict[str, float]
    inner: Inner
    flag: bool
    maybe: float | None


def _mixed(k: float, label: str = "t") -> Mixed:
    return Mixed(
        label=label,
        levels=["a", "b"],
        n=int(k),
        x=k / 3,
        ragged=[[k], [k, 2 * k, 0.5]],
        per={"u": k, "v": -k},
        inner=Inner(a=k, b=[1, int(k)]),
        flag=True,
        maybe=None,
    )


def test_flatten_round_trips_and_sums() -> None:
    parts = [_mixed(1.0), _mixed(2.0), _mixed(7.0)]
    vector, layout = flatten(parts[0])
    assert vector.dtype == np.float64 and vector.shape == (layout.size,)
    assert unflatten(vector, layout, Mixed) == parts[0]
    total = add_results(parts)
    assert total.n == 10 and isinstance(total.n, int)
    assert total.x == pytest.approx(10 / 3)
    assert total.ragged == [[10.0], [10.0, 20.0, 1.5]]
    assert total.per == {"u": 10.0, "v": -10.0} and total.inner.b == [3, 10]
    assert total.label == "t" and total.levels == ["a", "b"] and total.flag and total.maybe is None
    # the sum of the flat vectors is the flat vector of the sum
    vectors = [flatten(p)[0] for p in parts]
    np.testing.assert_allclose(flatten(total)[0], np.sum(vectors, axis=0))


def test_carried_fields_must_agree() -> None:
    with pytest.raises(ValueError, match="label"):
        add_results([_mixed(1.0), _mixed(2.0, label="other")])
    a = CrosstabResult(rows=["F", "M"], columns=["0", "1"], counts=[[1, 2], [3, 4]], missing=0)
    b = CrosstabResult(rows=["F", "M"], columns=["0"], counts=[[1], [3]], missing=0)
    with pytest.raises(ValueError):
        add_results([a, b])
    with pytest.raises(ValueError):
        add_results([])


def test_every_step_has_a_handler_and_every_analysis_an_algorithm() -> None:
    assert set(STEPS) <= set(HANDLERS)
    assert set(RESULTS) <= set(ANALYSES)
    for name, spec in STEPS.items():
        assert spec.request.model_fields["step"].default == name


def test_parse_step_and_run_step() -> None:
    sites = split_sites(
        iris(), [1, 2], seed=1, categories={"species": ["setosa", "versicolor", "virginica"]}
    )
    step = parse_step({"step": "moments", "variables": ["sepal_length"], "group": "species"})
    assert isinstance(step, MomentsStep)
    computed = run_step(step, sites["site1"])
    assert computed.disclosure.rows == 50 and len(computed.disclosure.cells) == 3
    with pytest.raises(FedpsyError, match="unknown step") as err:
        parse_step({"step": "nope"})
    assert err.value.code == "request_invalid"
    with pytest.raises(FedpsyError, match="variables") as err:
        parse_step({"step": "moments", "variables": []})
    assert err.value.code == "request_invalid"


def test_parse_request_gives_clear_errors() -> None:
    request = parse_request(
        {
            "analysis": "summary",
            "variables": ["age"],
            "cohort": {"all": [{"var": "sex", "op": "==", "value": "F"}]},
        }
    )
    assert isinstance(request, SummaryRequest)
    assert request.used_variables() == {"age", "sex"} and request.visit == "baseline"
    cases: list[tuple[dict[str, Any], str]] = [
        ({"analysis": "magic"}, "unknown analysis 'magic'"),
        ({"variables": ["x"]}, "unknown analysis None"),
        ({"analysis": "summary"}, "variables: Field required"),
        ({"analysis": "summary", "variables": ["x"], "extra": 1}, "extra: Extra inputs"),
        ({"analysis": "ttest", "variable": "x", "group": "g", "levels": ["a"]}, "levels"),
        ({"analysis": "histogram", "variable": "x", "edges": [2, 1]}, "strictly increasing"),
        ({"analysis": "count", "on_refusal": "ignore"}, "on_refusal"),
        (
            {"analysis": "count", "cohort": {"all": [{"var": "x", "op": "in", "value": 3}]}},
            "non-empty list",
        ),
    ]
    for bad, fragment in cases:
        with pytest.raises(FedpsyError) as err:
            parse_request(bad)
        assert err.value.code == "request_invalid"
        assert fragment in err.value.detail, (fragment, err.value.detail)
