"""A researcher's mistakes are bad input (exit 2) said plainly, found before anything is
sent, over ``fedpsy run`` against live nodes and in the dashboard's request check; a t-test
takes its two levels from the cohort or from the gated counts, equal to scipy on the
pooled rows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from typer.testing import CliRunner

from coordinator.http.api import create_app as coordinator_app
from coordinator.service import Coordinator
from coordinator.store import registry
from fedpsy.cli import app
from fedpsy.serving import BackgroundServer
from tests.support.consortium import LocalConsortium, clinical_sites

pytestmark = pytest.mark.xdist_group("request_checks")
SIZES = {"oslo": 120, "lyon": 100, "graz": 90}
OPS = "==, !=, <, <=, >, >=, in, not_in, is_null, not_null"


@pytest.fixture(scope="module")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalConsortium]:
    built = LocalConsortium.build(tmp_path_factory.mktemp("checks"), clinical_sites(SIZES, 11))
    yield built
    built.close()


@pytest.fixture(scope="module")
def server(consortium: LocalConsortium) -> Iterator[tuple[str, str]]:
    """The coordinator's API and dashboard: (URL, a researcher's token)."""
    token = registry.add_user(consortium.coordinator.engine, "ada")
    coordinator = Coordinator.open(consortium.coordinator.dir.root)
    with BackgroundServer(coordinator_app(coordinator)) as served:
        yield served.url, token
    coordinator.close()


def cli_run(
    c: LocalConsortium, request: dict[str, Any], tmp_path: Path, *remote: str
) -> tuple[int, dict[str, Any]]:
    """``fedpsy run`` on the coordinator's directory (or ``--coordinator URL --token T``)."""
    path = tmp_path / "request.json"
    path.write_text(json.dumps(request), encoding="utf-8")
    where = list(remote) or ["--coordinator", str(c.coordinator.dir.root)]
    out = CliRunner().invoke(app, ["run", str(path), *where])
    return out.exit_code, json.loads(out.stdout)


def form_check(server: tuple[str, str], request: dict[str, Any]) -> dict[str, Any]:
    """What the dashboard's request check says (the builder shows ``detail`` as the form's
    error)."""
    url, token = server
    with httpx.Client(base_url=url) as client:
        client.post("/login", data={"token": token})
        answer: dict[str, Any] = client.post("/analyses/validate", json=request).json()
    return answer


def tasks_received(c: LocalConsortium) -> int:
    return sum(1 for s in c.services.values() for e in s.audit.entries() if e.kind == "received")


def test_unknown_category_is_bad_input_naming_the_categories(
    consortium: LocalConsortium, server: tuple[str, str], tmp_path: Path
) -> None:
    cohort = {"all": [{"var": "primary_diagnosis", "op": "==", "value": "schizophrenia"}]}
    request = {"analysis": "count", "cohort": cohort}
    before = tasks_received(consortium)
    code, result = cli_run(consortium, request, tmp_path)
    expected = (
        "'schizophrenia' is not a category of primary_diagnosis; "
        "its categories are F20, F25, F31, F32, F33, HC"
    )
    assert code == 2 and result["status"] == "error"
    assert result["reason"]["code"] == "request_invalid" and expected in result["reason"]["detail"]
    assert tasks_received(consortium) == before  # nothing was sent to the sites
    check = form_check(server, request)
    assert check["ok"] is False and expected in check["detail"]


def test_misspelt_variable_is_unknown_with_a_suggestion(
    consortium: LocalConsortium, server: tuple[str, str], tmp_path: Path
) -> None:
    request = {"analysis": "summary", "variables": ["panss_totl"]}
    before = tasks_received(consortium)
    code, result = cli_run(consortium, request, tmp_path)
    assert code == 2 and result["reason"]["code"] == "unknown_variable"
    assert "'panss_totl' is not a variable" in result["reason"]["detail"]
    assert "did you mean panss_total" in result["reason"]["detail"]
    assert tasks_received(consortium) == before
    url, token = server
    code, remote = cli_run(consortium, request, tmp_path, "--coordinator", url, "--token", token)
    assert code == 2 and remote["reason"] == result["reason"]
    check = form_check(server, request)
    assert check["ok"] is False and "did you mean panss_total" in check["detail"]
    cohort = {"all": [{"var": "madrs_totl", "op": ">", "value": 10}]}  # in the cohort too
    check = form_check(server, {"analysis": "count", "cohort": cohort})
    assert check["ok"] is False and "did you mean madrs_total" in check["detail"]


def test_bad_operator_lists_the_operators(
    consortium: LocalConsortium, server: tuple[str, str], tmp_path: Path
) -> None:
    cohort = {
        "all": [{"var": "age", "op": ">=", "value": 18}, {"var": "age", "op": "=>", "value": 70}]
    }
    request = {"analysis": "count", "cohort": cohort}
    code, result = cli_run(consortium, request, tmp_path)
    expected = (
        f"cohort.all[1]: condition on 'age': '=>' is not an operator; the operators are {OPS}"
    )
    assert code == 2 and result["reason"]["code"] == "request_invalid"
    assert result["reason"]["detail"] == f"analysis 'count': {expected}"
    check = form_check(server, request)
    assert check == {"ok": False, "detail": f"analysis 'count': {expected}"}


def test_form_check_names_numbers_and_levels(server: tuple[str, str]) -> None:
    cohort = {"all": [{"var": "age", "op": ">=", "value": "old"}]}
    check = form_check(server, {"analysis": "count", "cohort": cohort})
    assert check == {"ok": False, "detail": "cohort: 'old' is not a number; age is numeric"}
    ttest = {"analysis": "ttest", "variable": "age", "group": "sex", "levels": ["F", "m"]}
    check = form_check(server, ttest)
    assert check["detail"] == "levels: 'm' is not a category of sex; its categories are F, M"


def test_a_valid_request_still_checks_valid(server: tuple[str, str]) -> None:
    cohort = {"all": [{"var": "primary_diagnosis", "op": "in", "value": ["F20", "F25"]}]}
    check = form_check(server, {"analysis": "summary", "variables": ["age"], "cohort": cohort})
    assert check == {"ok": True, "variables": ["age", "primary_diagnosis"]}


def _check_ttest(result: dict[str, Any], a: Any, b: Any) -> None:
    for kind, equal_var in (("welch", False), ("pooled", True)):
        ref = stats.ttest_ind(a, b, equal_var=equal_var)
        got = result[kind]
        assert got["statistic"] == pytest.approx(ref.statistic, rel=1e-8)
        assert got["df"] == pytest.approx(ref.df, rel=1e-8)
        assert got["p_value"] == pytest.approx(ref.pvalue, rel=1e-8)


def _scores(c: LocalConsortium, variable: str, diagnosis: str) -> Any:
    rows = c.pooled.dropna(subset=[variable])
    return rows.loc[rows["primary_diagnosis"] == diagnosis, variable]


def test_ttest_two_levels_from_the_cohort(consortium: LocalConsortium, tmp_path: Path) -> None:
    """primary_diagnosis has six categories; the cohort keeps two, in its order."""
    cohort = {"all": [{"var": "primary_diagnosis", "op": "in", "value": ["F32", "F20"]}]}
    request = {
        "analysis": "ttest",
        "variable": "madrs_total",
        "group": "primary_diagnosis",
        "cohort": cohort,
    }
    code, result = cli_run(consortium, request, tmp_path)
    assert code == 0, result
    assert list(result["result"]["groups"]) == ["F32", "F20"]
    a, b = _scores(consortium, "madrs_total", "F32"), _scores(consortium, "madrs_total", "F20")
    assert result["result"]["groups"]["F32"]["n"] == len(a)
    _check_ttest(result["result"], a, b)


def test_ttest_two_levels_left_by_the_data(consortium: LocalConsortium, tmp_path: Path) -> None:
    """No row is F31 or HC: leaving out F20 and F32 leaves F25 and F33 (dictionary order)."""
    cohort = {"all": [{"var": "primary_diagnosis", "op": "not_in", "value": ["F20", "F32"]}]}
    request = {"analysis": "ttest", "variable": "age", "group": "primary_diagnosis"}
    code, result = cli_run(consortium, {**request, "cohort": cohort}, tmp_path)
    assert code == 0, result
    assert list(result["result"]["groups"]) == ["F25", "F33"]
    _check_ttest(
        result["result"], _scores(consortium, "age", "F25"), _scores(consortium, "age", "F33")
    )
    cohort = {"all": [{"var": "primary_diagnosis", "op": "in", "value": ["F20", "F25", "F33"]}]}
    request = {**request, "variable": "cgi_s", "cohort": cohort}
    code, result = cli_run(consortium, request, tmp_path)
    assert code == 2 and result["reason"]["code"] == "request_invalid"
    detail = result["reason"]["detail"]
    assert "3 levels with rows in the cohort (F20, F25, F33)" in detail and "'levels'" in detail


def test_a_sites_own_variable_with_a_wrong_category_is_bad_input_not_a_refusal(
    tmp_path: Path,
) -> None:
    """The coordinator knows only shipped definitions; each node checks cohort values against
    its own dictionary before reading a row, so a typo in a site's own variable is exit 2
    naming the categories (before, every site refused it as cohort_too_small)."""
    extension = tmp_path / "dx.yaml"
    extension.write_text(
        "variables:\n"
        "  - code: dx\n    label: Diagnosis group\n    type: categorical\n"
        "    level: person\n    categories: [Control, Schizophrenia, Bipolar]\n",
        encoding="utf-8",
    )
    sites = []
    for name, n in (("a", 40), ("b", 30)):
        frame = pd.DataFrame(
            {
                "person_id": [f"{name}{i}" for i in range(n)],
                "dx": ["Control", "Schizophrenia", "Bipolar"] * (n // 3) + ["Control"] * (n % 3),
                "age": np.linspace(20, 60, n).round(1),
            }
        )
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
        sites += ["--site", f"{name}={tmp_path / f'{name}.csv'}"]
    good = {"analysis": "count", "cohort": {"all": [{"var": "dx", "op": "==", "value": "Control"}]}}
    typo = {"analysis": "count", "cohort": {"all": [{"var": "dx", "op": "==", "value": "control"}]}}
    requests = []
    for name, request in (("good", good), ("typo", typo)):
        (tmp_path / f"{name}.json").write_text(json.dumps(request), encoding="utf-8")
        requests.append(str(tmp_path / f"{name}.json"))
    run = CliRunner().invoke(
        app,
        ["sandbox", *sites, "--dictionary", str(extension), *requests],
    )
    answers = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    assert [a["status"] for a in answers] == ["ok", "error"], run.stdout
    assert answers[0]["result"]["n"] == 14 + 10
    reason = answers[1]["reason"]
    assert reason["code"] == "request_invalid"
    assert (
        "'control' is not a category of dx; its categories are Control, Schizophrenia, Bipolar"
        in (reason["detail"])
    )
    assert run.exit_code == 2
