"""Signed node requests carried by Flower messages, on an in-process grid.

The sites are real node directories answering through their ClientApp
(:func:`node.training.client_app.respond`: the node's API, gate and audit); the grid
below only moves Flower messages between the ServerApp's mailbox and them, the way the
SuperLink does (the real SuperLink and SuperNodes run in ``test_training_deploy``).
Covered: hellos and answers signed by the site, the approved app, unsigned, forged and
replayed requests, which SuperNodes get work, a crashed or silent site failing the run
(named, with its code), and a whole run whose updates reach the
ServerApp only as masked secure-sum answers and equal the run in the clear.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from coordinator.federation.failures import SitesFailed
from coordinator.federation.http import Endpoint, HttpFederation
from coordinator.training.delivery import Delivery
from coordinator.training.plan import make_plan
from node.audit import AuditLog
from node.auth.identity import load_identity
from node.auth.trust import add_trusted_key
from node.layout import NodeDir
from node.privacy.approvals import approve_app
from node.site import NodeSite
from schemas.analyses import parse_request
from schemas.errors import FedpsyError
from schemas.keys import fingerprint, generate_private_key, write_private_key, write_public_key
from schemas.secagg.wire import SecureAnswer
from schemas.signing import sign_headers
from schemas.steps.train import TrainSumResult
from schemas.training.bundle import app_hash
from schemas.training.env import flower_environment
from tests.support.consortium import clinical_sites
from tests.support.deployment import make_node

FORMULA = "ketamine ~ age + madrs_total"
SITES = {"berlin": 450, "oslo": 390, "lyon": 330}
"""Large enough that every site's held-out parts (split with its own secret salt) hold
more than min_cohort positives and negatives whatever the salt."""


@pytest.fixture(scope="module", autouse=True)
def _flower(tmp_path_factory: pytest.TempPathFactory) -> None:
    flower_environment(tmp_path_factory.mktemp("flwr"))
    from flwr.supercore.task_identity import TaskIdentity

    TaskIdentity.run_id, TaskIdentity.task_id, TaskIdentity.node_id = 1, 1, 0


Fault = Callable[[int, Any], str | None]  # (node id, message) → "crash", "lost" or None


class InProcessGrid:
    """Moves messages to the ClientApps of node directories (node id → directory) and
    keeps every reply it carried; ``app`` is the installed bundle's hash."""

    def __init__(self, nodes: dict[int, Path], app: str | None) -> None:
        self.nodes = nodes
        self.app = app
        self.replies: dict[str, Any] = {}
        self.carried: list[Any] = []
        self.fault: Fault = lambda node, message: None

    def get_node_ids(self) -> Iterable[int]:
        return list(self.nodes)

    def push_messages(self, messages: Iterable[Any]) -> Iterable[str]:
        from flwr.app import Error, Message

        from node.training.client_app import respond

        ids = []
        for message in messages:
            message.metadata.__dict__["_message_id"] = uuid.uuid4().hex
            node = message.metadata.dst_node_id
            fault = self.fault(node, message)
            if fault == "lost":
                continue
            if fault == "crash":
                reply = Message(Error(code=1, reason="ClientApp crashed"), reply_to=message)
            else:
                reply = respond(message, str(self.nodes[node]), self.app)
            self.replies[message.metadata.message_id] = reply
            self.carried.append(reply)
            ids.append(message.metadata.message_id)
        return ids

    def pull_messages(self, ids: Iterable[str]) -> Iterable[Any]:
        return [self.replies.pop(i) for i in list(ids) if i in self.replies]


@pytest.fixture(scope="module")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:

    root = tmp_path_factory.mktemp("carriage")
    key = generate_private_key()
    write_private_key(root / "coordinator.key", key)
    write_public_key(root / "coordinator.pub", key.public_key())
    nodes, identities = {}, {}
    for i, (site, (person, obs)) in enumerate(clinical_sites(SITES, seed=5).items(), start=1):
        make_node(root, site, person, obs, root / "coordinator.pub")
        identities[site] = fingerprint(load_identity(NodeDir(root / site)).public_key())
        approve_app(root / site, app_hash())
        nodes[10 * i] = root / site
    yield {"root": root, "key": key, "nodes": nodes, "identities": identities, "app": app_hash()}


def _outsider(root: Path, name: str, site: str, consortium: dict[str, Any]) -> Path:

    NodeSite.create(root / name, site, None).close()
    add_trusted_key(root / name, consortium["root"] / "coordinator.pub")
    approve_app(root / name, consortium["app"])
    return root / name


def _signed_get(
    consortium: dict[str, Any], node: int, path: str = "/v1/tasks/t0000001", sign: bool = True
) -> tuple[Any, str]:
    from schemas.training.carriage import request_message

    headers = sign_headers(consortium["key"], "GET", path, b"") if sign else {}
    return request_message(node, "GET", path, headers, b"")


def _answer(grid: InProcessGrid, message: Any, nonce: str, site: str) -> tuple[int, Any]:
    from schemas.training.carriage import answer_of

    identity = load_identity(NodeDir(grid.nodes[message.metadata.dst_node_id])).public_key()
    [reply] = grid.pull_messages(grid.push_messages([message]))
    status, body = answer_of(reply, nonce, identity)
    return status, json.loads(body)


def test_answers_are_signed_by_the_site_and_a_forged_one_is_refused(
    consortium: dict[str, Any],
) -> None:

    from schemas.training.carriage import answer_of, answer_reply, hello_message, hello_of

    grid = InProcessGrid(consortium["nodes"], consortium["app"])
    hello, nonce = hello_message(10)
    [reply] = grid.pull_messages(grid.push_messages([hello]))
    seen = hello_of(reply, nonce)
    assert seen is not None and seen.site == "berlin"
    assert hello_of(reply, "another nonce") is None  # a hello cannot be replayed
    message, nonce = _signed_get(consortium, 10, "/v1/info")
    status, info = _answer(grid, message, nonce, "berlin")
    assert status == 200 and info["site"] == "berlin"
    forged = answer_reply(message, 200, json.dumps(info), Ed25519PrivateKey.generate())
    with pytest.raises(FedpsyError) as refused:
        answer_of(forged, nonce, seen.identity)
    assert refused.value.code == "bad_signature"


def test_unsigned_replayed_and_unapproved_requests_are_refused(
    consortium: dict[str, Any],
) -> None:

    grid = InProcessGrid(consortium["nodes"], consortium["app"])
    unsigned, nonce = _signed_get(consortium, 20, sign=False)
    assert _answer(grid, unsigned, nonce, "oslo")[1]["code"] == "unsigned"
    signed, nonce = _signed_get(consortium, 20)
    assert _answer(grid, signed, nonce, "oslo")[1]["code"] == "not_found"  # signature passed
    again = type(signed)(signed.content, dst_node_id=20, message_type=signed.metadata.message_type)
    assert _answer(grid, again, nonce, "oslo")[1]["code"] == "replayed"
    for installed in (None, "0" * 64):  # no bundle, or a bundle the site never approved
        other = InProcessGrid(consortium["nodes"], installed)
        message, nonce = _signed_get(consortium, 30)
        status, problem = _answer(other, message, nonce, "lyon")
        assert (status, problem["code"]) == (403, "app_not_approved")
    with NodeSite.open(consortium["nodes"][30]) as node:
        last = AuditLog(node.engine).entries()[-1]
    assert last.kind == "refused" and last.payload["code"] == "app_not_approved"


def test_only_the_jobs_sites_get_work(consortium: dict[str, Any], tmp_path: Path) -> None:
    from coordinator.training.grid_mailbox import GridMailbox

    impostor = _outsider(tmp_path, "impostor", "berlin", consortium)
    zurich = _outsider(tmp_path, "zurich", "zurich", consortium)
    pinned = {"berlin": consortium["identities"]["berlin"]}
    nodes = {10: consortium["nodes"][10], 11: impostor, 12: zurich}  # the impostor after
    mailbox = GridMailbox(InProcessGrid(nodes, consortium["app"]), pinned)  # type: ignore[arg-type]
    mailbox.discover(timeout=5)
    assert mailbox.nodes == {"berlin": 10}
    alone = GridMailbox(InProcessGrid({11: impostor, 12: zurich}, consortium["app"]), pinned)  # type: ignore[arg-type]
    with pytest.raises(SitesFailed) as failed:
        alone.discover(timeout=0.3, pause=0.1)
    assert failed.value.failures["berlin"].code == "peer_key_mismatch"
    nobody = GridMailbox(InProcessGrid({12: zurich}, consortium["app"]), pinned)  # type: ignore[arg-type]
    with pytest.raises(SitesFailed) as missing:
        nobody.discover(timeout=0.3, pause=0.1)
    assert missing.value.failures["berlin"].code == "site_unreachable"


def _run(
    consortium: dict[str, Any], secure: bool, fault: Fault | None = None
) -> tuple[Any, InProcessGrid]:
    """A carried run (planned over the grid first); ``fault`` then applies to its rounds."""

    from coordinator.training.carried import carried_run
    from coordinator.training.grid_mailbox import GridMailbox

    identities = consortium["identities"]
    grid = InProcessGrid(consortium["nodes"], consortium["app"])
    request = parse_request(
        {
            "analysis": "train",
            "formula": FORMULA,
            "rounds": 3,
            "seed": 2,
            "local_epochs": 2,
            "per_site": False,
            "validation_fraction": 0.3,
        }
    )

    async def plan() -> Any:  # the plan's moments, carried the same way
        mailbox = GridMailbox(grid, identities)  # type: ignore[arg-type]
        mailbox.discover(timeout=5)
        async with httpx.AsyncClient() as client:
            federation = HttpFederation(
                [Endpoint(s, "", f, "pull") for s, f in identities.items()],
                consortium["key"],
                "job",
                "train",
                client,
                mailbox=mailbox,
                secure=secure,
            )
            return await make_plan(
                request, federation, run_id=uuid.uuid4().hex[:12], app_hash=consortium["app"]
            )  # type: ignore[arg-type]

    delivery = Delivery(
        job_id="job",
        key_file=str(consortium["root"] / "coordinator.key"),
        identities=identities,
        secure=secure,
        request_timeout=2.0,
    )
    made = asyncio.run(plan()).model_copy(update={"delivery": delivery})
    grid.carried.clear()
    if fault is not None:
        grid.fault = fault
    return carried_run(made, grid), grid  # type: ignore[arg-type]


def test_a_carried_run_sends_only_masked_updates_and_equals_the_clear_run(
    consortium: dict[str, Any],
) -> None:

    secure, grid = _run(consortium, secure=True)
    clear, clear_grid = _run(consortium, secure=False)
    assert secure.protection is not None and clear.protection is not None
    assert secure.protection.secure > 0 and secure.protection.clear == 0
    assert clear.protection.secure == 0 and clear.protection.clear > 0
    np.testing.assert_allclose(secure.weights, clear.weights, rtol=1e-9, atol=1e-12)
    assert [h.round for h in secure.history] == [1, 2, 3]

    def tasks(g: InProcessGrid) -> list[dict[str, Any]]:
        out = []
        for reply in g.carried:
            record = reply.content.config_records["fedpsy-reply"]
            if "status" in record and int(str(record["status"])) == 200:
                body = json.loads(str(record["body"]))
                if "status" in body and body.get("result") is not None:
                    out.append(body["result"])
        return out

    secure_results, clear_results = tasks(grid), tasks(clear_grid)
    fits = [TrainSumResult.model_validate(r) for r in clear_results if r.get("phase") == "fit"]
    assert len(fits) == 3 * len(SITES) and all(f.weighted for f in fits)  # clear: updates
    assert secure_results and all(set(r) >= {"masked", "shares"} for r in secure_results)
    for result in secure_results:  # secure: nothing but masked vectors left the sites
        template = SecureAnswer.model_validate(result).template
        assert not any(template.get("weighted", [])) and not template.get("loss_sum")


@pytest.mark.parametrize(
    ("fault", "code"), [("crash", "site_unreachable"), ("lost", "site_timeout")]
)
def test_a_crashed_or_silent_site_fails_the_run(
    consortium: dict[str, Any], fault: str, code: str
) -> None:
    from schemas.training.carriage import request_of

    def oslo_tasks(node: int, message: Any) -> str | None:
        request = request_of(message)
        return fault if node == 20 and request is not None and request.path == "/v1/tasks" else None

    with pytest.raises(SitesFailed) as failed:
        _run(consortium, secure=True, fault=oslo_tasks)
    assert {s: f.code for s, f in failed.value.failures.items()} == {"oslo": code}
