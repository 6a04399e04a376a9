"""Formulas and design matrices: allowed vocabulary, variables, the same columns everywhere."""

from __future__ import annotations

import formulaic
import numpy as np
import pandas as pd
import patsy
import pytest
from pydantic import ValidationError

from node.data.domain import probe_frame
from node.data.formula import build_design
from node.data.frame_memory import DataFrameSource
from node.steps.registry import run_step
from schemas.dictionary.loader import load_dictionary
from schemas.errors import ErrorCode, FedpsyError
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


@pytest.mark.parametrize(
    ("formula", "variables"),
    [
        ("y ~ lspline(age, [15, 25, 35]) + abs(trs - 0.5)", ["y", "age", "trs"]),
        ("y ~ lspline(log1p(age), knots=[-1.5, 2e1]):sex", ["y", "age", "sex"]),
        ("y ~ bs(age, knots=[20, 40], lower_bound=0, upper_bound=100, degree=2)", ["y", "age"]),
        ("y ~ bs(age, knots=[], lower_bound=-5, upper_bound=5) + dx", ["y", "age", "dx"]),
    ],
)
def test_splines_with_public_knots_are_allowed(formula: str, variables: list[str]) -> None:
    assert variables_in_formula(formula) == variables


@pytest.mark.parametrize(
    ("formula", "fix"),
    [
        ("y ~ bs(age, df=4)", "give knots=\\[…\\], lower_bound and upper_bound"),
        ("y ~ bs(age)", "bs needs knots, lower_bound, upper_bound"),
        ("y ~ bs(age, knots=[20, 40], lower_bound=0)", "bs needs upper_bound"),
        ("y ~ bs(age, [20, 40], 0, 100)", "by name"),
        ("y ~ bs(age, knots=[20, 140], lower_bound=0, upper_bound=100)", "strictly between"),
        ("y ~ bs(age, knots=[20], lower_bound=9, upper_bound=1)", "lower_bound < upper_bound"),
        ("y ~ bs(age, knots=[5], lower_bound=0, upper_bound=9, degree=2.5)", "whole number"),
        ("y ~ bs(age, knots=[5], lower_bound=0, upper_bound=9, spline=1)", "no argument spline"),
        ("y ~ lspline(age, [35, 25])", "strictly increasing"),
        ("y ~ lspline(age, [])", "at least one knot"),
        ("y ~ lspline(age)", "a variable and its knots"),
        ("y ~ lspline(age, [q25])", "must be numbers"),
        ("y ~ I(lspline(age, [30]))", "a term of its own"),
        ("y ~ lspline(age, [30]", "unmatched"),
        ("y ~ age[1]", "only in the knots and bounds"),
        ("y ~ log(age, 2)", "only in the knots and bounds"),
        ("abs(y) ~ age", "outcome"),
    ],
)
def test_splines_need_public_knots_and_bounds(formula: str, fix: str) -> None:
    with pytest.raises(FedpsyError, match=fix) as caught:
        parse_formula(formula)
    assert caught.value.code == ErrorCode.REQUEST_INVALID


def spline_frame() -> pd.DataFrame:
    """Ages over 0–100 with the knots and both bounds among them."""
    rng = np.random.default_rng(12)
    age = np.concatenate([rng.uniform(0, 100, 300), [0.0, 20.0, 40.0, 60.5, 100.0]])
    return pd.DataFrame({"y": rng.normal(size=age.size), "age": age})


@pytest.mark.parametrize("degree", [1, 2, 3, 4])
def test_bs_equals_patsy_with_explicit_knots_and_bounds(degree: int) -> None:
    """The node's own B-spline basis (scipy's de Boor evaluation) against patsy's ``bs``,
    an independent implementation, at 1e-13 absolute (basis values lie in [0, 1])."""
    data = spline_frame()
    term = f"bs(age, knots=[20, 40, 60.5], lower_bound=0, upper_bound=100, degree={degree})"
    design = build_design(f"y ~ {term}", data)
    assert design.columns == ["Intercept", *(f"{term}[{k}]" for k in range(1, degree + 4))]
    reference = np.asarray(patsy.dmatrix(f"{term} - 1", data))
    np.testing.assert_allclose(design.x[:, 1:], reference, rtol=0, atol=1e-13)
    # no data-dependent default: formulaic's own bs with the same knots and bounds agrees
    own = formulaic.model_matrix(f"{term} - 1", data).to_numpy()
    np.testing.assert_allclose(design.x[:, 1:], own, rtol=0, atol=1e-13)


def test_lspline_is_r_lspline_and_abs_is_elementwise() -> None:
    """R's ``lspline(x, c(15, 25, 35))`` (marginal = FALSE): one slope per segment."""
    data = spline_frame()
    design = build_design("y ~ lspline(age, [15, 25, 35]) + abs(age - 50)", data)
    term = "lspline(age, [15, 25, 35])"
    assert design.columns == ["Intercept", *(f"{term}[{k}]" for k in range(1, 5)), "abs(age - 50)"]
    age = data["age"].to_numpy()
    by_hand = np.column_stack(
        [
            np.where(age < 15, age, 15.0),
            np.where(age < 15, 0.0, np.where(age < 25, age - 15, 10.0)),
            np.where(age < 25, 0.0, np.where(age < 35, age - 25, 10.0)),
            np.where(age < 35, 0.0, age - 35),
        ]
    )
    np.testing.assert_array_equal(design.x[:, 1:5], by_hand)
    np.testing.assert_array_equal(design.x[:, 1:5].sum(axis=1), age)
    np.testing.assert_array_equal(design.x[:, 5], np.abs(age - 50))


def test_splines_are_judged_on_the_declared_ranges() -> None:
    """``age`` is declared 12–110: a B-spline bounded inside that range is refused before any
    row is read, naming the fix; lspline and abs are finite everywhere."""
    dictionary = load_dictionary()
    probe = probe_frame([dictionary.get("madrs_total"), dictionary.get("age")])
    narrow = "madrs_total ~ bs(age, knots=[40], lower_bound=18, upper_bound=80)"
    with pytest.raises(FedpsyError, match="cover the declared min and max") as caught:
        build_design(narrow, probe, strict=True)
    assert caught.value.code == ErrorCode.REQUEST_INVALID
    assert "[1]" not in caught.value.detail  # the term once, not each of its columns
    covering = "madrs_total ~ bs(age, knots=[40], lower_bound=12, upper_bound=110)"
    assert build_design(covering, probe, strict=True).x.shape[1] == 5
    finite = "madrs_total ~ lspline(age, [30, 60]) + abs(age - 41) + lspline(log(age), [3])"
    assert build_design(finite, probe, strict=True).x.shape[1] == 7
