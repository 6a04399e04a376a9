"""Formulas and design matrices: allowed vocabulary, variables, the same columns everywhere."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from node.data.formula import build_design
from node.data.frame_memory import DataFrameSource
from node.steps.registry import run_step
from schemas.errors import FedpsyError
from schemas.formula import formula_categories, parse_formula, variables_in_formula
from schemas.steps.design import ColumnMomentsStep, CrossprodStep
from schemas.steps.registry import parse_step


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "y": [1.0, 2.0, 3.0, np.nan, 5.0, 6.0, 7.0],
            "age": [20.0, 30.0, np.nan, 50.0, 60.0, 0.0, 40.0],
            "sex": pd.Categorical(["F", "M", "F", "M", None, "F", "F"], categories=["F", "M"]),
            "dx": pd.Categorical(["a", "a", "b", "a", "b", "a", "b"], categories=["a", "b", "c"]),
            "trs": [0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0],
        }
    )


def test_variables_in_order_of_appearance_outcome_first() -> None:
    assert variables_in_formula("trs ~ age + sex + age:sex + log(cpz_eq_current)") == [
        "trs",
        "age",
        "sex",
        "cpz_eq_current",
    ]
    assert variables_in_formula("~ age + I(age ** 2)") == ["age"]
    parts = parse_formula("y ~ a * b - 1")
    assert parts.outcome == ("y",) and parts.predictors == ("a", "b")


@pytest.mark.parametrize(
    "formula",
    [
        "y ~ center(age)",  # data-dependent transform: differs per site
        "y ~ poly(age, 2)",
        "y ~ __import__('os').system('true')",
        "y ~ np.log(age)",
        "y ~ age + `odd name`",
        "y ~ age if 1 else 2",
        "y ~ Age",
        "age + sex",  # a model needs an outcome
        "y ~ (age + sex",
        "y ~ age ~ sex",
        "y ~",
        "",
    ],
)
def test_refuses_formulas_outside_the_vocabulary(formula: str) -> None:
    with pytest.raises(FedpsyError) as caught:
        parse_formula(formula)
    assert caught.value.code == "request_invalid"


def test_step_models_validate_the_formula() -> None:
    with pytest.raises(ValidationError):
        ColumnMomentsStep(formula="y ~ scale(age)")
    with pytest.raises(FedpsyError):
        parse_step({"step": "column_moments", "formula": "y ~ exec(age)"})


def test_design_uses_dictionary_levels_binary_numeric_and_complete_cases() -> None:
    design = build_design("y ~ age + sex + dx + trs", frame())
    assert design.columns == ["Intercept", "age", "sex[T.M]", "dx[T.b]", "dx[T.c]", "trs"]
    # rows 2 (age), 3 (y) and 4 (sex) are incomplete
    assert (design.total, design.missing, design.n) == (7, 3, 4)
    assert np.all(design.x[:, 4] == 0.0)  # level c is absent but still a column
    np.testing.assert_array_equal(design.y, [1.0, 2.0, 6.0, 7.0])
    np.testing.assert_array_equal(design.x[:, 5], [0.0, 1.0, 0.0, 1.0])


def test_a_transform_never_drops_a_row() -> None:
    """Whether a row is dropped must not depend on its value: a transform's non-finite
    value counts as 0 (the node refuses such a term beforehand when its variables' declared
    ranges hold such a value, :mod:`node.data.domain`)."""
    data = frame()
    design = build_design("y ~ log(age)", data)
    assert design.columns == ["Intercept", "log(age)"]
    assert design.n == 5 and design.missing == 2  # only the rows missing a value
    zero_age = int(np.flatnonzero(data[["y", "age"]].dropna()["age"].to_numpy() == 0)[0])
    assert design.x[zero_age, 1] == 0.0  # log(0) = -inf counts as 0
    with pytest.raises(FedpsyError, match="not finite"):
        build_design("y ~ log(age)", data, strict=True)


def test_every_site_builds_the_same_columns_even_without_a_level() -> None:
    data = frame()
    only_a = data[data["dx"] == "a"].reset_index(drop=True)
    assert not (only_a["dx"] == "b").any()
    full = build_design("y ~ dx + sex", data)
    part = build_design("y ~ dx + sex", only_a)
    assert full.columns == part.columns


def test_columns_select_and_order_and_unknown_columns_are_refused() -> None:
    design = build_design("y ~ age + dx", frame(), columns=["dx[T.b]", "Intercept"])
    assert design.columns == ["dx[T.b]", "Intercept"]
    with pytest.raises(FedpsyError, match="no design columns"):
        build_design("y ~ age", frame(), columns=["age", "dx[T.b]"])


def test_categorical_outcome_is_refused() -> None:
    with pytest.raises(FedpsyError, match="categorical"):
        build_design("sex ~ age", frame())


def test_site_levels_come_from_the_request() -> None:
    assert formula_categories("y ~ age + site", ["b", "a"]) == {"site": ["b", "a"]}
    assert formula_categories("y ~ age", ["b", "a"]) == {}
    data = frame().assign(site=pd.Categorical(["a"] * 7, categories=["a"]))
    design = build_design("y ~ site", data, categories={"site": ["b", "a"]})
    assert design.columns == ["Intercept", "site[T.a]"]
    np.testing.assert_array_equal(design.x[:, 1], np.ones(design.n))


def test_design_steps_disclose_rows_and_parameters() -> None:
    data = frame().assign(person_id=[f"p{i}" for i in range(7)])
    data["sex"] = data["sex"].astype(object)
    data["dx"] = data["dx"].astype(object)
    source = DataFrameSource("s1", data, {"sex": ["F", "M"], "dx": ["a", "b", "c"]})
    step = ColumnMomentsStep(formula="y ~ age + sex + dx")
    computed = run_step(step, source)
    assert computed.disclosure.rows == 4
    assert computed.disclosure.parameters == 5
    moments = computed.result.model_dump()
    assert moments["n"] == 4 and moments["missing"] == 3
    assert moments["sums"][0] == 4.0 and moments["squares"][4] == 0.0
    centered = CrossprodStep(
        formula="y ~ age + sex + dx",
        columns=["Intercept", "age"],
        center=[0.0, 40.0],
        scale=[1.0, 10.0],
        y_center=4.0,
        y_scale=2.0,
    )
    cp = run_step(centered, source).result.model_dump()
    z = (np.array([20.0, 30.0, 0.0, 40.0]) - 40.0) / 10.0
    yt = (np.array([1.0, 2.0, 6.0, 7.0]) - 4.0) / 2.0
    np.testing.assert_allclose(cp["xtx"], [[4.0, z.sum()], [z.sum(), z @ z]], rtol=1e-15)
    np.testing.assert_allclose(cp["xty"], [yt.sum(), z @ yt], rtol=1e-15)
    assert cp["yty"] == pytest.approx(yt @ yt, rel=1e-15)


def test_text_without_categories_is_refused() -> None:
    # its levels would come from the values present, which differ between sites
    data = frame().assign(dx=lambda d: d["dx"].astype(object))
    with pytest.raises(FedpsyError, match="text without dictionary categories"):
        build_design("y ~ dx", data)
