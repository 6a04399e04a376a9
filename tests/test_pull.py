"""Pull mode over real HTTP: a consortium of two push nodes and one node that only polls
the coordinator gives the all-push answers (secure aggregation included), its polls and
answers are accepted only under its pinned key, its requests pass the node's own checks
and audit, and a pull node that stops polling fails the job with site_timeout in time."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from coordinator.http.api import create_app as coordinator_app
from coordinator.service import Coordinator, open_state
from coordinator.store import registry
from fedpsy.cli import app as cli
from fedpsy.serving import BackgroundServer
from node.auth.identity import load_identity
from node.auth.trust import add_trusted_key
from node.http.api import create_app as node_app
from node.http.pull import Poller
from node.service import NodeService
from node.site import NodeSite
from schemas.keys import generate_private_key
from schemas.signing import sign_headers
from tests.support.consortium import LocalConsortium, clinical_sites

pytestmark = pytest.mark.xdist_group("pull")
SIZES = {"amsterdam": 70, "berlin": 45, "copenhagen": 30}
PULL = "copenhagen"
SUMMARY = {"analysis": "summary", "variables": ["age", "madrs_total"]}
GLM = {"analysis": "glm", "formula": "ketamine ~ age + madrs_total", "family": "binomial"}


@dataclass
class PollingNode:
    """A pull node's poller running in its own thread and event loop."""

    service: NodeService
    app: Any
    coordinator_url: str
    stopping: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def start(self) -> PollingNode:
        self.stopping.clear()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self.thread.start()
        return self

    async def _run(self) -> None:
        async with httpx.AsyncClient() as client:
            poller = Poller(
                self.service,
                self.app,
                self.coordinator_url,
                load_identity(self.service.node.dir),
                client,
                wait=0.5,
            )
            await poller.run(self.stopping.is_set)

    def stop(self) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout=10)


@dataclass
class Mixed:
    consortium: LocalConsortium
    api: BackgroundServer
    puller: PollingNode

    @property
    def coordinator(self) -> Coordinator:
        return self.consortium.coordinator


def _mixed(root: Path) -> Mixed:
    data = clinical_sites(SIZES)
    c = LocalConsortium.build(root, {s: d for s, d in data.items() if s != PULL})
    person, obs = data[PULL]
    folder = root / "data" / PULL
    folder.mkdir(parents=True)
    person.to_csv(folder / "person.csv", index=False)
    obs.to_csv(folder / "observations.csv", index=False)
    node = NodeSite.create(root / "nodes" / PULL, PULL, None)
    node.ingest(folder)
    add_trusted_key(node.dir.root, c.coordinator.dir.public_key)
    service = NodeService(node)
    app = node_app(service, node.dir.admin_token.read_text().strip())
    api = c.stack.enter_context(BackgroundServer(coordinator_app(c.coordinator)))
    c.coordinator.add_pull_node(PULL, node.dir.public_key)
    c.nodes[PULL], c.services[PULL] = node, service
    puller = PollingNode(service, app, api.url).start()
    c.stack.callback(puller.stop)
    deadline = time.monotonic() + 10
    while not registry.get_node(c.coordinator.engine, PULL).dictionary_hash:
        assert time.monotonic() < deadline, "the pull node never polled"
        time.sleep(0.05)
    return Mixed(c, api, puller)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mixed]:
    built = _mixed(tmp_path_factory.mktemp("pull_mixed"))
    yield built
    built.consortium.close()


@pytest.fixture(scope="module")
def all_push(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalConsortium]:
    built = LocalConsortium.build(tmp_path_factory.mktemp("pull_push"), clinical_sites(SIZES))
    yield built
    built.close()


def run(coordinator: Coordinator, request: dict[str, Any]) -> dict[str, Any]:
    return asyncio.run(coordinator.run(request))


def _close(got: Any, want: Any) -> None:
    if isinstance(want, dict):
        assert set(got) == set(want)
        for k in want:
            _close(got[k], want[k])
    elif isinstance(want, list):
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            _close(g, w)
    elif isinstance(want, float):
        assert got == pytest.approx(want, rel=1e-9, abs=1e-12)
    else:
        assert got == want


@pytest.mark.parametrize("request_", [SUMMARY, GLM], ids=["summary", "glm"])
def test_a_pull_node_gives_the_all_push_answer(
    mixed: Mixed, all_push: LocalConsortium, request_: dict[str, Any]
) -> None:
    got = run(mixed.coordinator, request_)
    want = run(all_push.coordinator, request_)
    assert got["status"] == "ok", got
    assert want["status"] == "ok", want
    assert set(got["sites"]) == set(SIZES)
    _close(got["result"], want["result"])
    _close(got["sites"], want["sites"])
    assert got["privacy"]["secure_aggregation"] is True


def test_the_pull_node_audits_its_tasks_and_secure_sessions(mixed: Mixed) -> None:
    before = len(mixed.consortium.services[PULL].audit.entries(json=True))
    result = run(mixed.coordinator, SUMMARY)
    assert result["status"] == "ok", result
    entries = mixed.consortium.services[PULL].audit.entries(json=True)[before:]
    kinds = [e["kind"] for e in entries]
    assert "secagg.setup" in kinds
    received = {e["task_id"] for e in entries if e["kind"] == "received"}
    released = {e["task_id"] for e in entries if e["kind"] == "released"}
    assert received and received == released
    assert mixed.consortium.services[PULL].audit.verify().ok


def _signed_post(url: str, path: str, body: bytes, key: Any) -> httpx.Response:
    headers = {**sign_headers(key, "POST", path, body), "Content-Type": "application/json"}
    return httpx.post(url + path, content=body, headers=headers, timeout=10)


def test_polls_and_answers_under_another_key_are_refused(mixed: Mixed) -> None:
    stranger = generate_private_key()
    answer = json.dumps({"status": 200, "body": "{}"}).encode()
    for path, body in (
        (f"/v1/pull/{PULL}/responses/{'0' * 32}", answer),
        (f"/v1/pull/{PULL}/next?wait=0", b""),
    ):
        refused = _signed_post(mixed.api.url, path, body, stranger)
        assert refused.status_code == 401
        assert refused.json()["code"] == "unknown_key"
    own = load_identity(mixed.consortium.nodes[PULL].dir)
    path = "/v1/pull/amsterdam/next?wait=0"  # a push node's mailbox, even with a real key
    assert _signed_post(mixed.api.url, path, b"", own).json()["code"] == "unknown_key"
    path = f"/v1/pull/{PULL}/responses/{'0' * 32}"
    headers = {**sign_headers(own, "POST", path, answer), "Content-Type": "application/json"}
    first = httpx.post(mixed.api.url + path, content=answer, headers=headers)
    assert first.status_code == 404  # authenticated, but no such message
    again = httpx.post(mixed.api.url + path, content=answer, headers=headers)
    assert again.status_code == 401 and again.json()["code"] == "replayed"


def test_a_pulled_request_not_signed_by_the_coordinator_is_refused(mixed: Mixed) -> None:
    service = mixed.consortium.services[PULL]
    poller = Poller(
        service,
        mixed.puller.app,
        mixed.api.url,
        load_identity(service.node.dir),
        httpx.AsyncClient(),
    )
    body = json.dumps(
        {"task_id": "f" * 32, "job_id": "j", "analysis": "count", "step": {"step": "count"}}
    ).encode()
    message = {
        "message_id": "m",
        "method": "POST",
        "path": "/v1/tasks",
        "headers": sign_headers(generate_private_key(), "POST", "/v1/tasks", body),
        "body": body.decode(),
    }
    status, text = asyncio.run(poller.replay(message))
    assert status == 401 and json.loads(text)["code"] == "unknown_key"
    admin = {**message, "path": "/admin/tasks", "method": "GET"}
    assert asyncio.run(poller.replay(admin))[0] == 404


def test_a_pull_node_that_stops_polling_times_out_within_the_deadline(mixed: Mixed) -> None:
    coord = mixed.coordinator
    config = coord.config
    coord.config = config.model_copy(update={"request_timeout_s": 1.5, "job_deadline_s": 4.0})
    mixed.puller.stop()
    try:
        start = time.monotonic()
        result = run(coord, {"analysis": "count"})
        elapsed = time.monotonic() - start
        assert result["status"] == "error", result
        assert result["reason"]["code"] == "site_timeout"
        assert result["reason"]["sites"] == {PULL: "site_timeout"}
        assert "did not collect" in result["reason"]["detail"]
        assert elapsed < 4.0 + 1.0
    finally:
        coord.config = config
        mixed.puller.start()
    time.sleep(1.0)
    assert run(coord, {"analysis": "count"})["status"] == "ok"


def test_add_node_pull_from_the_cli(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["coordinator", "init", str(tmp_path / "c")]).exit_code == 0
    node = NodeSite.create(tmp_path / "n", "dublin", None)
    done = runner.invoke(
        cli,
        [
            "coordinator",
            "add-node",
            str(tmp_path / "c"),
            "--site",
            "dublin",
            "--pull",
            "--key",
            str(node.dir.public_key),
        ],
    )
    assert done.exit_code == 0, done.output
    assert "pull" in done.output
    with Coordinator.open(tmp_path / "c") as coord:
        record = registry.get_node(coord.engine, "dublin")
        assert (record.mode, record.url, record.dictionary_hash) == ("pull", "", "")
        result = run(coord, {"analysis": "count"})
    assert result["status"] == "error"
    assert "has not polled yet" in json.dumps(result["reason"])
    both = runner.invoke(
        cli,
        [
            "coordinator",
            "add-node",
            str(tmp_path / "c"),
            "--site",
            "dublin",
            "--pull",
            "--url",
            "http://x",
        ],
    )
    assert both.exit_code != 0


def test_a_store_from_before_pull_mode_gains_the_mode_column(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE node (site VARCHAR(32) PRIMARY KEY, url TEXT NOT NULL, "
                "public_key TEXT NOT NULL, fingerprint VARCHAR(64) NOT NULL, "
                "dictionary_hash VARCHAR(64) NOT NULL, variable_hashes TEXT NOT NULL, "
                "added_at FLOAT NOT NULL, last_seen FLOAT)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO node VALUES ('oslo', 'https://oslo:8701', 'pem', "
                "'f', 'd', '{}', 1.0, NULL)"
            )
        )
    engine.dispose()
    upgraded = open_state(f"sqlite:///{tmp_path / 'old.db'}")
    (node,) = registry.list_nodes(upgraded)
    assert (node.site, node.mode) == ("oslo", "push")
    upgraded.dispose()


def test_dashboard_overview_reads_a_pull_node_from_its_polls() -> None:
    import asyncio
    import time

    import httpx

    from coordinator.store.registry import NodeRecord
    from coordinator.web.overview import _probe

    def record(last_seen: float | None) -> NodeRecord:
        return NodeRecord("oslo", "", "", "f" * 64, "", {}, last_seen, mode="pull")

    async def probe(node: NodeRecord) -> tuple[bool, str]:
        async with httpx.AsyncClient() as client:
            return await _probe(client, node)

    assert asyncio.run(probe(record(time.time()))) == (True, "polling")
    assert asyncio.run(probe(record(time.time() - 3600))) == (False, "not polling")
    assert asyncio.run(probe(record(None))) == (False, "not polling")
