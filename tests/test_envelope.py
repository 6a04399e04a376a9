"""The result envelope as a model (:class:`schemas.envelope.Envelope`) keeps the JSON
contract byte for byte: every kind of envelope the coordinator makes (ok, ok without a
site, ok under differential privacy, refused, and the errors of a bad request, a quorum,
no nodes and a restart), made by the real code paths, serializes as the dict-built
envelope did, reads back unchanged, and passes unchanged through the store, the API, the
dashboard's download and the CLI."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from coordinator.federation.base import PrivacyTally
from coordinator.federation.failures import SiteFailure
from coordinator.http.api import create_app
from coordinator.jobs.recovery import fail_interrupted_jobs
from coordinator.jobs.runner import run_request
from coordinator.service import Coordinator
from coordinator.store import jobs, registry
from coordinator.store import tables as t
from coordinator.web.session import COOKIE
from fedpsy.cli import app
from fedpsy.serving import BackgroundServer
from node.data.source import FrameSource
from schemas.envelope import Envelope, FailureReason, exit_status
from schemas.errors import CATALOG, EXIT_BAD_INPUT, EXIT_ERROR, EXIT_OK, EXIT_REFUSED
from schemas.secagg.wire import DpRelease
from tests.support.federation import InProcessFederation, split_sites

KEYS = ["status", "analysis", "result", "sites", "reason", "request_id", "privacy"]


def dict_envelope(
    status: str,
    analysis: object,
    request_id: str,
    *,
    result: dict[str, Any] | None = None,
    sites: dict[str, dict[str, int]] | None = None,
    reason: dict[str, Any] | None = None,
    privacy: dict[str, Any] | None = None,
    dropped_sites: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An envelope as the coordinator built it when envelopes were plain dicts."""
    out = {
        "status": status,
        "analysis": analysis,
        "result": result or {},
        "sites": sites or {},
        "reason": reason,
        "request_id": request_id,
        "privacy": {"secure_aggregation": False, "dp": None},
    }
    if privacy is not None:
        out["privacy"] = privacy
    if dropped_sites:
        out["dropped_sites"] = dropped_sites
    return out


def assert_contract(envelope: Envelope, expected: Mapping[str, Any]) -> None:
    """``envelope`` is ``expected`` byte for byte and reads back as itself."""
    text = json.dumps(envelope.to_dict())
    assert text == json.dumps(expected)
    assert json.dumps(envelope.model_dump(mode="json")) == text  # any serializer, one shape
    assert json.dumps(Envelope.model_validate(json.loads(text)).to_dict()) == text
    assert Envelope.model_validate_json(text) == envelope
    # it reads like its JSON object, as scripts written against the dict did
    assert [k for k in KEYS if k in envelope] == KEYS
    assert envelope["status"] == expected["status"] and envelope.get("reason") == expected["reason"]
    assert ("dropped_sites" in envelope) == ("dropped_sites" in expected)
    assert envelope.get("dropped_sites", {}) == expected.get("dropped_sites", {})
    assert json.dumps(dict(envelope)) == json.dumps({**envelope}) == text
    merged: dict[str, Any] = {}
    merged.update(envelope)
    assert json.dumps(merged) == text and list(envelope.items()) == list(merged.items())


# -- the envelopes the job runner makes, over an in-process federation ---------------------


@pytest.fixture(scope="module")
def sources() -> dict[str, FrameSource]:
    rng = np.random.default_rng(11)
    frame = pd.DataFrame({"age": rng.uniform(18, 80, 90).round(1)})
    return dict(split_sites(frame, [3, 2, 1], seed=4, names=["a", "b", "c"]))


class Noisy(InProcessFederation):
    """Sites that report differential privacy spent, as the HTTP federation does."""

    def privacy(self) -> dict[str, Any]:
        tally = PrivacyTally(secure=1)
        for site in self.sites:
            release = DpRelease(
                epsilon=0.5,
                delta=1e-6,
                sigma=2.0,
                sensitivity=1.0,
                calibration="distributed",
                participants=len(self.sites),
                epsilon_spent=0.5,
                epsilon_total=4.0,
            )
            tally.add_dp(site, release)
        return tally.envelope()


def run(
    sources: Mapping[str, FrameSource],
    request: dict[str, Any],
    *,
    down: dict[str, SiteFailure] | None = None,
    federation: type[InProcessFederation] = InProcessFederation,
    **gate: int,
) -> Envelope:
    hashes = {s: {"age": "h-age"} for s in sources if s not in (down or {})}
    return asyncio.run(
        run_request(
            request,
            hashes,
            lambda sites: federation({s: sources[s] for s in sites}, **gate),
            "job-1",
            down,
        )
    )


SIZES = {"a": 45, "b": 30, "c": 15}  # 90 rows split 3:2:1


def rows(*sites: str) -> dict[str, dict[str, int]]:
    return {s: {"n": SIZES[s]} for s in sites}


def test_an_answer_keeps_the_contract(sources: dict[str, FrameSource]) -> None:
    envelope = run(sources, {"analysis": "count"})
    assert envelope.status == "ok" and envelope.reason is None and envelope.dropped_sites is None
    assert_contract(
        envelope,
        dict_envelope("ok", "count", "job-1", result={"n": 90}, sites=rows("a", "b", "c")),
    )
    assert list(envelope.to_dict()) == KEYS
    assert exit_status(envelope) == EXIT_OK


def test_an_answer_without_a_site_names_it(sources: dict[str, FrameSource]) -> None:
    down = {"c": SiteFailure("site_unreachable", "no route")}
    envelope = run(sources, {"analysis": "count", "min_sites": 2}, down=down)
    expected = dict_envelope(
        "ok",
        "count",
        "job-1",
        result={"n": 75},
        sites=rows("a", "b"),
        dropped_sites={"c": "site_unreachable"},
    )
    assert_contract(envelope, expected)
    assert list(envelope.to_dict()) == [*KEYS, "dropped_sites"]
    assert exit_status(envelope) == EXIT_OK


def test_an_answer_under_differential_privacy_states_it(sources: dict[str, FrameSource]) -> None:
    envelope = run(sources, {"analysis": "count"}, federation=Noisy)
    spent = {"epsilon": 0.5, "delta": 1e-6, "releases": 1}
    privacy = {
        "secure_aggregation": True,
        "dp": {
            "mechanism": "gaussian",
            "epsilon": 0.5,
            "delta": 1e-6,
            "sites": {"a": spent, "b": spent, "c": spent},
        },
    }
    assert envelope.privacy.dp is not None and envelope.privacy.dp.sites["a"].releases == 1
    assert_contract(
        envelope,
        dict_envelope(
            "ok",
            "count",
            "job-1",
            result={"n": 90},
            sites=rows("a", "b", "c"),
            privacy=privacy,
        ),
    )


def test_a_refusal_names_each_refusing_site(sources: dict[str, FrameSource]) -> None:
    envelope = run(sources, {"analysis": "count"}, min_rows=1_000)
    assert envelope.status == "refused" and envelope.reason is not None
    codes = dict.fromkeys("abc", "cohort_too_small")
    expected = dict_envelope(
        "refused",
        "count",
        "job-1",
        reason={"code": "refused", "detail": envelope.reason.detail, "sites": codes},
    )
    assert_contract(envelope, expected)
    assert list(envelope.to_dict()["reason"]) == ["code", "detail", "sites"]
    assert exit_status(envelope) == EXIT_REFUSED


@pytest.mark.parametrize("analysis", ["no_such_analysis", 5, None])
def test_a_bad_request_echoes_its_analysis(
    sources: dict[str, FrameSource], analysis: object
) -> None:
    request = {} if analysis is None else {"analysis": analysis}
    envelope = run(sources, request)
    assert envelope.status == "error" and envelope.reason is not None
    assert envelope.reason.code == "request_invalid"
    expected = dict_envelope(
        "error",
        analysis,
        "job-1",
        reason={"code": "request_invalid", "detail": envelope.reason.detail},
    )
    assert_contract(envelope, expected)
    assert list(envelope.to_dict()["reason"]) == ["code", "detail"]  # no sites when none failed
    assert exit_status(envelope) == EXIT_BAD_INPUT


def test_a_missed_quorum_names_the_failed_sites(sources: dict[str, FrameSource]) -> None:
    down = {"c": SiteFailure("site_timeout", "slow")}
    envelope = run(sources, {"analysis": "count", "min_sites": 3}, down=down)
    assert envelope.reason is not None and envelope.reason.code == "quorum_not_met"
    expected = dict_envelope(
        "error",
        "count",
        "job-1",
        reason={
            "code": "quorum_not_met",
            "detail": envelope.reason.detail,
            "sites": {"c": "site_timeout"},
        },
    )
    assert_contract(envelope, expected)
    assert exit_status(envelope) == CATALOG["quorum_not_met"].exit_code


def test_exit_status_of_unknown_or_missing_codes() -> None:
    unknown = Envelope(status="error", reason=FailureReason(code="from_the_future", detail=""))
    assert exit_status(unknown) == EXIT_ERROR
    assert exit_status(Envelope(status="error")) == CATALOG["internal"].exit_code


def test_an_envelope_of_another_shape_is_not_read() -> None:
    good = dict_envelope("ok", "count", "r", result={"n": 1})
    for bad in (
        {**good, "status": "done"},
        {**good, "surprise": 1},
        {**good, "sites": {"a": {"n": "many"}}},
        {**good, "reason": {"code": "refused"}},
    ):
        with pytest.raises(ValueError):
            Envelope.model_validate(bad)


# -- through the store, the API, the dashboard and the CLI ------------------------------------


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Coordinator, httpx.Client]]:
    """A coordinator with no nodes, served; a client with a researcher's token and login."""
    coordinator = Coordinator.create(tmp_path / "coord")
    token = registry.add_user(coordinator.engine, "ada")
    with (
        BackgroundServer(create_app(coordinator)) as server,
        httpx.Client(
            base_url=server.url,
            headers={"Authorization": f"Bearer {token}"},
            cookies={COOKIE: token},
        ) as client,
    ):
        yield coordinator, client
    coordinator.close()


def _stored(coordinator: Coordinator, job_id: str) -> str:
    with coordinator.engine.connect() as conn:
        raw = conn.execute(t.job.select().where(t.job.c.job_id == job_id)).mappings().one()
    return str(raw["result"])


def _shown(client: httpx.Client, job_id: str) -> tuple[str, str, str]:
    """The envelope as ``GET /v1/analyses/{id}``, the job list and the download show it."""
    one = client.get(f"/v1/analyses/{job_id}").json()["result"]
    (listed,) = [j["result"] for j in client.get("/v1/analyses").json() if j["job_id"] == job_id]
    download = client.get(f"/jobs/{job_id}/result.json")
    assert download.status_code == 200
    return json.dumps(one), json.dumps(listed), download.text


def test_an_error_passes_through_store_api_and_dashboard_unchanged(
    served: tuple[Coordinator, httpx.Client],
) -> None:
    coordinator, client = served
    answer = client.post("/v1/analyses", params={"wait": "true"}, json={"analysis": "count"})
    assert answer.status_code == 200
    job_id = answer.json()["request_id"]
    detail = (
        "no nodes registered; add one with `fedpsy coordinator add-node DIR --site SITE --url URL`"
    )
    expected = dict_envelope(
        "error", "count", job_id, reason={"code": "bad_input", "detail": detail}
    )
    assert json.dumps(answer.json()) == json.dumps(expected)
    assert _stored(coordinator, job_id) == json.dumps(expected)
    assert _shown(client, job_id) == (json.dumps(expected),) * 2 + (json.dumps(expected, indent=2),)
    page = client.get(f"/jobs/{job_id}")
    assert page.status_code == 200 and "(bad_input)" in page.text


def test_a_stored_answer_passes_through_api_and_dashboard_unchanged(
    served: tuple[Coordinator, httpx.Client], sources: dict[str, FrameSource]
) -> None:
    coordinator, client = served
    refused = run(sources, {"analysis": "count"}, min_rows=1_000)
    noisy = run(
        sources,
        {"analysis": "count", "min_sites": 2},
        federation=Noisy,
        down={"c": SiteFailure("site_unreachable", "")},
    )
    for job_id, envelope in (("job-refused", refused), ("job-noisy", noisy)):
        jobs.create_job(coordinator.engine, job_id, "ada", {"analysis": "count"})
        jobs.finish_job(coordinator.engine, job_id, envelope)
        text = json.dumps(envelope.to_dict())
        assert _stored(coordinator, job_id) == text
        stored = jobs.get_job(coordinator.engine, job_id)
        assert stored is not None and stored["result"] == envelope
        assert stored["status"] == envelope.status
        assert _shown(client, job_id) == (text, text, json.dumps(envelope.to_dict(), indent=2))
    refused_page = client.get("/jobs/job-refused").text
    assert "<li>a: cohort_too_small</li>" in refused_page
    noisy_page = client.get("/jobs/job-noisy").text
    assert "differential privacy (gaussian, ε = 0.5" in noisy_page
    assert "secure aggregation" in noisy_page and "c (site_unreachable)" in noisy_page


def test_an_interrupted_job_is_finished_with_the_contract(tmp_path: Path) -> None:
    with Coordinator.create(tmp_path / "coord") as coordinator:
        jobs.create_job(coordinator.engine, "job-9", "ada", {"analysis": "summary"})
        jobs.set_site_status(coordinator.engine, "job-9", "oslo", "running summary")
        assert fail_interrupted_jobs(coordinator.engine) == ["job-9"]
        job = jobs.get_job(coordinator.engine, "job-9")
        assert job is not None and job["result"] is not None
        detail = (
            "the coordinator stopped while this job was running (oslo: running summary); "
            "nothing of it was kept. Submit the request again."
        )
        expected = dict_envelope(
            "error", "summary", "job-9", reason={"code": "job_interrupted", "detail": detail}
        )
        assert_contract(job["result"], expected)
        assert _stored(coordinator, "job-9") == json.dumps(expected)
        assert exit_status(job["result"]) == CATALOG["job_interrupted"].exit_code


def test_the_cli_prints_the_envelope_unchanged(
    served: tuple[Coordinator, httpx.Client], tmp_path: Path
) -> None:
    coordinator, client = served
    request = tmp_path / "request.json"
    request.write_text(json.dumps({"analysis": "count"}))
    runner = CliRunner()
    local = runner.invoke(app, ["run", str(request), "--coordinator", str(coordinator.dir.root)])
    token = client.headers["Authorization"].removeprefix("Bearer ")
    remote = runner.invoke(
        app,
        ["run", str(request), "--coordinator", str(client.base_url), "--token", token],
    )
    for printed in (local, remote):
        assert printed.exit_code == EXIT_BAD_INPUT, printed.output
        job_id = json.loads(printed.stdout)["request_id"]
        expected = json.dumps(
            dict_envelope(
                "error",
                "count",
                job_id,
                reason={
                    "code": "bad_input",
                    "detail": json.loads(printed.stdout)["reason"]["detail"],
                },
            )
        )
        assert printed.stdout == expected + "\n"
        assert _stored(coordinator, job_id) == expected
