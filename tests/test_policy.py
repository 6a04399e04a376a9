"""The site policy: safe defaults, the default file parses to them, errors name the key."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from pydantic import ValidationError

from node.privacy.policy import (
    KNOWN_ANALYSES,
    Policy,
    default_policy_text,
    load_policy,
    parse_policy,
    write_default_policy,
)
from schemas.errors import FedpsyError

DESIGN_TABLE = (
    "count",
    "summary",
    "crosstab",
    "correlation",
    "ttest",
    "ols",
    "glm",
    "cox",
    "kaplan_meier",
    "logrank",
    "combat",
    "pca",
    "kmeans",
    "train",
)


def test_defaults_are_the_safe_ones() -> None:
    policy = Policy()
    assert (policy.min_cell, policy.min_cohort, policy.min_model_rows) == (5, 5, 10)
    assert policy.max_parameter_fraction == 0.33
    assert policy.max_categories == 40
    assert policy.require_secure_aggregation is False
    assert policy.dp.enabled is False
    for name in (*DESIGN_TABLE, "histogram", "quantiles", "lmm", "meta"):
        assert policy.allows(name), name
        assert policy.approval_for(name) == "auto"
    assert not policy.allows("raw_rows")
    assert set(policy.allowed_analyses) == set(KNOWN_ANALYSES)


def test_policy_is_frozen() -> None:
    with pytest.raises(ValidationError):
        Policy().min_cell = 1  # type: ignore[misc]


def test_default_text_parses_to_the_defaults_and_explains_every_key() -> None:
    text = default_policy_text()
    assert parse_policy(text) == Policy()
    data = tomllib.loads(text)
    assert set(data) == set(Policy.model_fields)
    for key in Policy.model_fields:
        line = next(
            i for i, ln in enumerate(text.splitlines()) if ln.startswith((f"{key} =", f"[{key}]"))
        )
        assert text.splitlines()[line - 1].startswith("#"), f"{key} has no comment above it"


def test_write_load_and_no_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    write_default_policy(path)
    assert load_policy(path) == Policy()
    path.write_text(default_policy_text().replace("min_cell = 5", "min_cell = 10"))
    with pytest.raises(FedpsyError, match="already exists"):
        write_default_policy(path)
    assert load_policy(path).min_cell == 10


def test_a_missing_policy_is_an_error_not_silent_defaults(tmp_path: Path) -> None:
    with pytest.raises(FedpsyError, match="does not exist") as caught:
        load_policy(tmp_path / "policy.toml")
    assert caught.value.code == "config_invalid"


def test_manual_approval_and_a_narrower_list() -> None:
    policy = parse_policy(
        'allowed_analyses = ["count", "summary", "count"]\ndefault_approval = "auto"\n'
        '[approval]\nsummary = "manual"\n'
    )
    assert policy.allowed_analyses == ("count", "summary")
    assert policy.approval_for("summary") == "manual"
    assert policy.approval_for("count") == "auto"
    assert not policy.allows("glm")
    assert parse_policy('default_approval = "manual"').approval_for("glm") == "manual"


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("min_cel = 3", ["unknown key 'min_cel'", "did you mean 'min_cell'"]),
        ("wibble = 1", ["unknown key 'wibble'", "known keys:", "min_cohort"]),
        ("[dp]\nepsilon = 1.0", ["unknown key 'dp.epsilon'", "epsilon_total"]),
        ("min_cell = 0", ["min_cell = 0", "greater than or equal to 1"]),
        ('min_cohort = "5"', ['min_cohort = "5"', "valid integer"]),
        ("min_model_rows = true", ["min_model_rows = true", "valid integer"]),
        ("max_parameter_fraction = 1.5", ["max_parameter_fraction = 1.5"]),
        ("max_categories = 1", ["max_categories = 1"]),
        ('allowed_analyses = ["count", "magic"]', ["allowed_analyses", "'magic'", "known:"]),
        ('[approval]\nglm = "sometimes"', ["approval.glm", "'auto' or 'manual'"]),
        ('[approval]\nmagic = "manual"', ["approval", "unknown analysis 'magic'"]),
        ('default_approval = "never"', ["default_approval"]),
        ("[dp]\nepsilon_total = 0.5\nepsilon_per_release = 1.0", ["dp", "more than epsilon_total"]),
        ("[dp]\ndelta = 0.0", ["dp.delta = 0.0"]),
        ("require_secure_aggregation = 1", ["require_secure_aggregation = 1"]),
        ("min_cell = ", ["not valid TOML"]),
    ],
)
def test_bad_keys_and_values_are_named(tmp_path: Path, text: str, names: list[str]) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(text)
    with pytest.raises(FedpsyError) as caught:
        load_policy(path)
    assert caught.value.code == "config_invalid"
    assert str(path) in caught.value.detail
    for name in names:
        assert name in caught.value.detail


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(FedpsyError) as caught:
        parse_policy("min_cel = 3\nmin_cohort = 0\n")
    assert "min_cel" in caught.value.detail
    assert "min_cohort = 0" in caught.value.detail
