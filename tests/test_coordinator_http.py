"""Coordinator and nodes over real signed HTTP: pooled-equal answers, refusals naming
sites, drop_site, site selection, dictionary mismatch, a downed node, the CLI and API."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from scipy import stats
from typer.testing import CliRunner

from coordinator.http.api import create_app as coordinator_app
from coordinator.service import Coordinator
from coordinator.store import jobs, registry
from fedpsy.cli import app
from fedpsy.serving import BackgroundServer
from tests.support.consortium import LocalConsortium, clinical_sites

pytestmark = pytest.mark.xdist_group("coordinator_http")
SIZES = {"amsterdam": 70, "berlin": 45, "copenhagen": 30}


@pytest.fixture(scope="module")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalConsortium]:
    built = LocalConsortium.build(tmp_path_factory.mktemp("coord_http"), clinical_sites(SIZES))
    yield built
    built.close()


def run(c: LocalConsortium, request: dict[str, Any]) -> dict[str, Any]:
    return asyncio.run(c.coordinator.run(request))


def test_summary_equals_pooled(consortium: LocalConsortium) -> None:
    result = run(consortium, {"analysis": "summary", "variables": ["age", "madrs_total"]})
    assert result["status"] == "ok", result
    pooled = consortium.pooled
    for var in ("age", "madrs_total"):
        got = result["result"]["variables"][var]
        values = pooled[var].dropna()
        assert got["n"] == len(values)
        assert got["missing"] == int(pooled[var].isna().sum())
        assert got["mean"] == pytest.approx(values.mean(), rel=1e-12)
        assert got["sd"] == pytest.approx(values.std(ddof=1), rel=1e-10)
    assert set(result["sites"]) == set(SIZES)
    assert sum(s["n"] for s in result["sites"].values()) == len(pooled)
    assert result["privacy"] == {"secure_aggregation": True, "dp": None}


def test_ttest_equals_scipy(consortium: LocalConsortium) -> None:
    result = run(consortium, {"analysis": "ttest", "variable": "madrs_total", "group": "sex"})
    assert result["status"] == "ok", result
    pooled = consortium.pooled.dropna(subset=["madrs_total"])
    f = pooled.loc[pooled["sex"] == "F", "madrs_total"]
    m = pooled.loc[pooled["sex"] == "M", "madrs_total"]
    welch = stats.ttest_ind(f, m, equal_var=False)
    assert result["result"]["welch"]["statistic"] == pytest.approx(welch.statistic, rel=1e-10)
    assert result["result"]["welch"]["p_value"] == pytest.approx(welch.pvalue, rel=1e-8)


def test_site_condition_selects_nodes(consortium: LocalConsortium) -> None:
    result = run(
        consortium,
        {
            "analysis": "count",
            "cohort": {"all": [{"var": "site", "op": "in", "value": ["berlin", "copenhagen"]}]},
        },
    )
    assert result["status"] == "ok", result
    assert set(result["sites"]) == {"berlin", "copenhagen"}
    assert result["result"]["n"] == SIZES["berlin"] + SIZES["copenhagen"]


def _small_at_copenhagen(c: LocalConsortium) -> float:
    ages = np.sort(c.pooled.loc[c.pooled["site"] == "copenhagen", "age"].to_numpy())
    return float(ages[-3]) - 1e-9  # three persons above this age at copenhagen


def test_refusal_names_the_site(consortium: LocalConsortium) -> None:
    cut = _small_at_copenhagen(consortium)
    others = consortium.pooled[
        (consortium.pooled["site"] != "copenhagen") & (consortium.pooled["age"] > cut)
    ]
    assert (others.groupby("site").size() >= 5).all()
    result = run(
        consortium,
        {"analysis": "count", "cohort": {"all": [{"var": "age", "op": ">", "value": cut}]}},
    )
    assert result["status"] == "refused"
    assert result["reason"]["sites"] == {"copenhagen": "cohort_too_small"}
    assert "copenhagen" in result["reason"]["detail"]
    job = jobs.get_job(consortium.coordinator.engine, result["request_id"])
    assert job is not None  # each site's progress ends in what it did, none left running
    assert job["sites"] == {
        "amsterdam": "answered count",
        "berlin": "answered count",
        "copenhagen": "refused (cohort_too_small)",
    }


def test_drop_site_answers_from_the_others(consortium: LocalConsortium) -> None:
    cut = _small_at_copenhagen(consortium)  # the last test's cohort: the same persons
    result = run(
        consortium,
        {
            "analysis": "count",
            "on_refusal": "drop_site",
            "cohort": {"all": [{"var": "age", "op": ">", "value": cut}]},
        },
    )
    assert result["status"] == "ok", result
    assert result["dropped_sites"] == {"copenhagen": "cohort_too_small"}
    pooled = consortium.pooled
    expected = ((pooled["site"] != "copenhagen") & (pooled["age"] > cut)).sum()
    assert result["result"]["n"] == expected
    assert set(result["sites"]) == {"amsterdam", "berlin"}
    job = jobs.get_job(consortium.coordinator.engine, result["request_id"])
    assert job is not None and job["sites"]["copenhagen"] == "left out (cohort_too_small)"


def test_unknown_variable_is_a_clear_error(consortium: LocalConsortium) -> None:
    result = run(consortium, {"analysis": "summary", "variables": ["panss_totl"]})
    assert result["status"] == "error"  # the researcher's mistake, not a privacy refusal
    assert result["reason"]["code"] == "unknown_variable"
    assert "did you mean panss_total" in result["reason"]["detail"]


def test_bad_request_is_request_invalid(consortium: LocalConsortium) -> None:
    result = run(consortium, {"analysis": "summary", "variables": []})
    assert (result["status"], result["reason"]["code"]) == ("error", "request_invalid")


def test_dictionary_mismatch_names_variables_and_sites(
    consortium: LocalConsortium, tmp_path: Path
) -> None:
    from coordinator.jobs.compat import check_compatible
    from schemas.errors import FedpsyError

    hashes = {
        s: dict(registry.get_node(consortium.coordinator.engine, s).variable_hashes) for s in SIZES
    }
    hashes["berlin"]["age"] = "0" * 64
    hashes["berlin"]["site_score"] = "1" * 64
    with pytest.raises(FedpsyError) as info:
        check_compatible(["age", "site_score", "madrs_total"], hashes)
    detail = info.value.detail
    assert info.value.code == "dictionary_mismatch"
    assert "age: defined differently at [amsterdam, copenhagen] vs [berlin]" in detail
    assert "site_score: not defined at amsterdam, copenhagen" in detail
    assert "madrs_total" not in detail


def test_cli_run_with_directory_prints_result_and_exit_codes(
    consortium: LocalConsortium, tmp_path: Path
) -> None:
    request = tmp_path / "req.json"
    request.write_text(json.dumps({"analysis": "count"}))
    runner = CliRunner()
    ok = runner.invoke(
        app, ["run", str(request), "--coordinator", str(consortium.coordinator.dir.root)]
    )
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["result"]["n"] == sum(SIZES.values())
    cut = _small_at_copenhagen(consortium) - 2e-9
    request.write_text(
        json.dumps(
            {"analysis": "count", "cohort": {"all": [{"var": "age", "op": ">", "value": cut}]}}
        )
    )
    refused = runner.invoke(
        app, ["run", str(request), "--coordinator", str(consortium.coordinator.dir.root)]
    )
    assert refused.exit_code == 3
    request.write_text("{not json")
    bad = runner.invoke(
        app, ["run", str(request), "--coordinator", str(consortium.coordinator.dir.root)]
    )
    assert bad.exit_code == 2


def test_researcher_api_and_url_run(consortium: LocalConsortium, tmp_path: Path) -> None:
    coord = consortium.coordinator
    token = registry.add_user(coord.engine, "ada")
    with BackgroundServer(coordinator_app(Coordinator.open(coord.dir.root))) as server:
        assert httpx.get(server.url + "/v1/nodes").status_code == 401
        headers = {"Authorization": f"Bearer {token}"}
        nodes = httpx.get(server.url + "/v1/nodes", headers=headers).json()
        assert [n["site"] for n in nodes] == sorted(SIZES)
        catalog = httpx.get(server.url + "/v1/catalog", headers=headers).json()
        age = next(v for v in catalog["variables"] if v["code"] == "age")
        assert age["sites"] == {s: "same" for s in sorted(SIZES)}
        # counts are rounded to 10 and never below the minimum
        assert age["counts"] == {s: 10 * round(n / 10) for s, n in SIZES.items()}
        assert catalog["persons"] == {s: 10 * round(n / 10) for s, n in SIZES.items()}
        madrs = next(v for v in catalog["variables"] if v["code"] == "madrs_total")
        observed = consortium.pooled.groupby("site")["madrs_total"].count()
        assert madrs["counts"] == {s: 10 * round(observed[s] / 10) for s in SIZES}
        absent = next(v for v in catalog["variables"] if v["code"] == "panss_p1")
        assert absent["counts"] == {s: None for s in SIZES}  # nobody: suppressed
        request = tmp_path / "req.json"
        request.write_text(json.dumps({"analysis": "summary", "variables": ["age"]}))
        out = CliRunner().invoke(
            app, ["run", str(request), "--coordinator", server.url, "--token", token]
        )
        assert out.exit_code == 0, out.output
        result = json.loads(out.stdout)
        assert result["result"]["variables"]["age"]["n"] == sum(SIZES.values())
        job = httpx.get(server.url + f"/v1/analyses/{result['request_id']}", headers=headers).json()
        assert job["status"] == "ok" and set(job["sites"]) == set(SIZES)


def test_downed_node_gives_a_clear_error_within_the_deadline(tmp_path: Path) -> None:
    import time

    built = LocalConsortium.build(tmp_path, clinical_sites({"oslo": 20, "paris": 20}))
    try:
        built.servers["paris"].stop()
        start = time.monotonic()
        result = run(built, {"analysis": "count"})
        assert time.monotonic() - start < 15
        assert result["status"] == "error"
        assert result["reason"]["sites"] == {"paris": "site_unreachable"}
    finally:
        built.close()
