"""``fedpsy run`` over a real in-process consortium: readable tables (``--table``, the
default on a terminal) with the envelope's numbers, the envelope as one JSON object
(``--json``, the default into a pipe), tables into a pipe laid out without wrapping, and
the README's exit codes (0 ok, 1 error, 2 bad input or usage, 3 refused); every analysis
has a table-maker."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from fedpsy.cli import app
from fedpsy.run import WIDE
from fedpsy.show import SHOW, privacy_line, show_result, site_reasons
from fedpsy.show_tables import Z95, interval, num
from schemas.analyses import ANALYSIS_NAMES, RESULTS
from schemas.envelope import Envelope
from tests.support.consortium import LocalConsortium, clinical_sites
from tests.support.web_results import SAMPLES, envelope

pytestmark = pytest.mark.xdist_group("cli_run")
SIZES = {"amsterdam": 70, "berlin": 45, "copenhagen": 30}
GLM = {
    "analysis": "glm",
    "formula": "ketamine ~ age + sex",
    "family": "binomial",
    "on_refusal": "drop_site",
}
SUMMARY = {"analysis": "summary", "variables": ["age", "madrs_total"]}


@pytest.fixture(scope="module")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalConsortium]:
    built = LocalConsortium.build(tmp_path_factory.mktemp("cli_run"), clinical_sites(SIZES))
    yield built
    built.close()


def refused_count(c: LocalConsortium) -> dict[str, Any]:
    """A count copenhagen refuses: three of its persons are older than the cut."""
    ages = np.sort(c.pooled.loc[c.pooled["site"] == "copenhagen", "age"].to_numpy())
    cut = float(ages[-3]) - 1e-9
    return {"analysis": "count", "cohort": {"all": [{"var": "age", "op": ">", "value": cut}]}}


def run_cli(c: LocalConsortium, tmp_path: Path, request: dict[str, Any], *flags: str) -> Any:
    path = tmp_path / "request.json"
    path.write_text(json.dumps(request))
    where = ["--coordinator", str(c.coordinator.dir.root)]
    return CliRunner().invoke(app, ["run", str(path), *where, *flags])


def test_json_is_the_envelope_as_one_object(consortium: LocalConsortium, tmp_path: Path) -> None:
    explicit = run_cli(consortium, tmp_path, GLM, "--json")
    assert explicit.exit_code == 0, explicit.output
    assert len(explicit.stdout.strip().splitlines()) == 1
    data = json.loads(explicit.stdout)
    assert list(data)[:7] == [
        "status",
        "analysis",
        "result",
        "sites",
        "reason",
        "request_id",
        "privacy",
    ]
    assert Envelope.model_validate(data).to_dict() == data
    default = run_cli(consortium, tmp_path, GLM)  # not a terminal: JSON as before
    assert json.loads(default.stdout)["result"] == data["result"]


def test_glm_table_shows_estimates_intervals_and_odds_ratios(
    consortium: LocalConsortium, tmp_path: Path
) -> None:
    data = json.loads(run_cli(consortium, tmp_path, GLM, "--json").stdout)
    assert data["status"] == "ok", data
    shown = run_cli(consortium, tmp_path, GLM, "--table")
    assert shown.exit_code == 0, shown.output
    text = shown.stdout
    assert "odds ratios" in text and "binomial GLM, logit link" in text
    for c in data["result"]["coefficients"]:
        low, high = c["estimate"] - Z95 * c["std_error"], c["estimate"] + Z95 * c["std_error"]
        coefficient, *ratio = [line for line in text.splitlines() if f" {c['term']} " in line]
        assert num(c["estimate"]) in coefficient and num(c["std_error"]) in coefficient
        assert interval(low, high) in coefficient
        if c["term"] == "Intercept":
            assert ratio == []  # exp of the intercept is no odds ratio
        else:
            assert num(math.exp(c["estimate"])) in ratio[0]
            assert interval(math.exp(low), math.exp(high)) in ratio[0]
    used = " · ".join(f"{site} {rows['n']}" for site, rows in data["sites"].items())
    assert f"rows used per site: {used}" in text
    for site, code in (data.get("dropped_sites") or {}).items():
        assert f"left out: {site} ({code}" in text
    assert "privacy: site policies applied, on refusal: drop_site · secure aggregation: yes" in text
    assert "differential privacy: none" in text


def test_summary_table_shows_each_variable(consortium: LocalConsortium, tmp_path: Path) -> None:
    data = json.loads(run_cli(consortium, tmp_path, SUMMARY, "--json").stdout)
    text = run_cli(consortium, tmp_path, SUMMARY, "--table").stdout
    for code, s in data["result"]["variables"].items():
        row = next(line for line in text.splitlines() if f" {code} " in line)
        for value in (s["n"], s["mean"], s["sd"], s["skewness"], s["kurtosis"], s["missing"]):
            assert num(value) in row, (code, value, row)
    if data["result"]["variables"]["madrs_total"]["missing"]:
        assert "rows missing" not in text  # summary counts missing per variable, no total


def test_refused_table_names_each_site_and_its_rule(
    consortium: LocalConsortium, tmp_path: Path
) -> None:
    request = refused_count(consortium)
    data = json.loads(run_cli(consortium, tmp_path, request, "--json").stdout)
    assert data["status"] == "refused" and data["reason"]["sites"] == {
        "copenhagen": "cohort_too_small"
    }
    shown = run_cli(consortium, tmp_path, request, "--table")
    assert shown.exit_code == 3
    text = shown.stdout
    assert "refused by the privacy policy of copenhagen" in text
    assert "(refused)" not in text
    row = next(line for line in text.splitlines() if " copenhagen " in line)
    assert "cohort_too_small" in row
    assert site_reasons(data["reason"]["detail"], data["reason"]["sites"])["copenhagen"] in row
    assert '"on_refusal": "drop_site"' in text


def test_tables_into_a_pipe_are_not_wrapped(consortium: LocalConsortium, tmp_path: Path) -> None:
    path = tmp_path / "request.json"
    path.write_text(json.dumps(GLM))
    cli = [sys.executable, "-m", "fedpsy.cli", "run", str(path)]
    cli += ["--coordinator", str(consortium.coordinator.dir.root)]
    piped = subprocess.run(cli, capture_output=True, text=True, check=True)
    data = json.loads(piped.stdout)  # a pipe gets JSON by default
    tables = subprocess.run([*cli, "--table"], capture_output=True, text=True, check=True).stdout
    lines = tables.splitlines()
    assert "\x1b" not in tables
    privacy = next(line for line in lines if line.startswith("privacy:"))
    assert privacy.endswith("differential privacy: none") and len(privacy) > 80
    header = next(line for line in lines if " term " in line)
    assert "95% CI" in header and "…" not in header
    for c in data["result"]["coefficients"]:
        row = next(line for line in lines if f" {c['term']} " in line)
        assert row.rstrip().endswith("│") and len(row) == len(header)  # one line a row


@pytest.mark.parametrize(
    ("case", "exit_code"),
    [("ok", 0), ("error", 1), ("unknown variable", 2), ("usage", 2), ("refused", 3)],
)
def test_exit_codes_follow_the_readme(
    consortium: LocalConsortium, tmp_path: Path, case: str, exit_code: int
) -> None:
    requests = {
        "ok": {"analysis": "count"},
        "error": {"analysis": "count", "min_sites": 9},  # quorum_not_met
        "unknown variable": {"analysis": "summary", "variables": ["madrs_totl"]},
        "refused": refused_count(consortium),
    }
    if case == "usage":
        both = run_cli(consortium, tmp_path, {"analysis": "count"}, "--json", "--table")
        assert both.exit_code == exit_code and "[bad_input]" in both.output
        missing = CliRunner().invoke(app, ["run", str(tmp_path / "request.json")])
        assert missing.exit_code == exit_code and "--coordinator" in missing.output
        return
    as_json = run_cli(consortium, tmp_path, requests[case], "--json")
    assert as_json.exit_code == exit_code, as_json.output
    status = json.loads(as_json.stdout)["status"]
    assert status == {0: "ok", 3: "refused"}.get(exit_code, "error")
    as_table = run_cli(consortium, tmp_path, requests[case], "--table")
    assert as_table.exit_code == exit_code, as_table.output
    if status == "error":
        code = json.loads(as_json.stdout)["reason"]["code"]
        assert f"error [{code}]" in as_table.stdout


EXTRA: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "count": ({}, {"n": 145}),
    "lmm": (
        {"formula": "madrs_total ~ age"},
        {
            "formula": "madrs_total ~ age",
            "coefficients": SAMPLES["ols"][1]["coefficients"],
            "n": 139,
            "missing": 6,
            "groups": 3,
            "variance_components": {"site": 1.5, "residual": 40.2},
            "log_likelihood": -450.1,
            "converged": True,
            "dropped": ["sex[T.M]"],
        },
    ),
    "logrank": (
        {"time": "time_to_relapse", "event": "relapse", "group": "sex"},
        {
            "time": "time_to_relapse",
            "event": "relapse",
            "group": "sex",
            "groups": {
                "F": {"n": 120, "observed": 63, "expected": 70.5},
                "M": {"n": 110, "observed": 72, "expected": 64.5},
            },
            "statistic": 1.9,
            "df": 1,
            "p_value": 0.168,
            "n": 230,
            "missing": 0,
        },
    ),
    "gmm": (
        {"variables": ["age", "madrs_total"], "k": 2},
        {
            "variables": ["age", "madrs_total"],
            "k": 2,
            "weights": [0.4, 0.6],
            "means": [[30.0, 25.0], [60.0, 33.0]],
            "covariances": [[[20.0, 1.0], [1.0, 9.0]], [[25.0, 2.0], [2.0, 11.0]]],
            "log_likelihood": -8.1,
            "lower_bound": -8.1,
            "iterations": 12,
            "converged": True,
            "bic": 2400.5,
            "aic": 2380.2,
            "bic_by_k": {"2": 2400.5},
            "n": 140,
            "missing": 5,
            "new_variables": [],
            "run_id": None,
        },
    ),
    "predict": (
        {"model_id": "m1", "new_variable": "trs_risk"},
        {
            "model_id": "m1",
            "new_variable": "trs_risk",
            "formula": "trs ~ age",
            "n": 140,
            "run_id": "r1",
        },
    ),
}


def rendered(name: str) -> str:
    if name in EXTRA:
        fields, result = EXTRA[name]
        RESULTS[name].model_validate(result)
        request: dict[str, Any] = {"analysis": name, **fields}
        data = {"status": "ok", "analysis": name, "result": result, "sites": {"oslo": {"n": 9}}}
    else:
        request, data = envelope(name)
    page = io.StringIO()
    show_result(Console(file=page, width=WIDE), Envelope.model_validate(data), request)
    return page.getvalue()


def test_every_analysis_has_a_table() -> None:
    assert set(SHOW) == set(ANALYSIS_NAMES)
    assert set(SAMPLES) | set(EXTRA) == set(ANALYSIS_NAMES)


@pytest.mark.parametrize("name", ANALYSIS_NAMES)
def test_every_analysis_renders(name: str) -> None:
    text = rendered(name)
    assert "rows used per site:" in text and "privacy:" in text
    expected = {
        "count": ["n = 145 persons"],
        "crosstab": ["sex \\ rtms_protocol", "rows: sex, columns: rtms_protocol", "df = 2,"],
        "ttest": ["difference in means (F − M) = -1.600", "Welch t = -1.350, df = 133.2"],
        "ols": ["t ", "R² = 0.12", "df residual = 136"],
        "glm": ["odds ratios", "4 Newton iterations"],
        "lmm": ["fixed effects", "left out: terms sex[T.M]"],
        "meta": ["random effects", "τ² = 0", "I² = 0"],
        "kaplan_meier": ["time_to_relapse", "0.85"],
        "logrank": ["log-rank χ² = 1.900, df = 1, p = 0.168"],
        "cox": ["hazard ratios"],
        "pca": ["PC3", "loadings"],
        "kmeans": ["withheld"],
        "gmm": ["component", "BIC 2,400.5"],
        "train": ["model (log-odds)"],
        "predict": ["trs_risk"],
        "data_quality": ["100% · SMD +0.62", "89% · SMD -0.62 · 6 implausible", "suppressed"],
    }
    for piece in expected.get(name, []):
        assert piece in text, (name, piece, text)


def test_the_privacy_line_reports_differential_privacy() -> None:
    privacy = Envelope.model_validate(
        {
            "status": "ok",
            "privacy": {
                "secure_aggregation": True,
                "dp": {
                    "mechanism": "laplace",
                    "epsilon": 0.5,
                    "delta": 0.0,
                    "sites": {"oslo": {"epsilon": 0.5, "delta": 0.0, "releases": 2}},
                },
            },
        }
    ).privacy
    line = privacy_line(privacy, {"on_refusal": "drop_site"})
    assert "on refusal: drop_site" in line and "secure aggregation: yes" in line
    assert "ε = 0.5, δ = 0 at most per site (laplace; oslo ε 0.5 in 2 releases)" in line


def test_each_refusing_site_gets_its_own_reason() -> None:
    detail = (
        "site berlin: cell_too_small (step 'crosstab': a count is below 5); "
        "site oslo: dominance (one person dominates; clip it)"
    )
    assert site_reasons(detail, {"oslo": "dominance", "berlin": "cell_too_small"}) == {
        "berlin": "step 'crosstab': a count is below 5",
        "oslo": "one person dominates; clip it",
    }
