"""Leak test: canary values planted in a site never leave it, and no request makes a 5xx.

A ``fedpsy synth`` site carries six canary persons (distinctive ids, an age of 97.123456,
29.987654 years of education, a dACC glutamate value of 17.246813 and the free-text MRS
scanner label ``canary-scanner-9d2e`` that two of them hold). Served over real HTTP, the
node is driven by schemathesis from its own OpenAPI spec (signed with the coordinator's
key, so generated bodies reach the steps) and by a valid request of every registered step
over cohorts of many sizes; the coordinator's researcher API is driven by schemathesis with
a researcher token. Every response body, problem detail and log line (captured at DEBUG
from every logger, with full exception text) is scanned for the canaries and for every
person id of the site. ``FEDPSY_LEAK_EXAMPLES`` sets the schemathesis cases per operation
and generation mode (default 20; three times as many for operations with a body); the
cases are the same on every run unless ``FEDPSY_LEAK_RANDOM`` is set (then each run
explores new ones).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from coordinator.http.api import create_app as coordinator_app
from coordinator.service import Coordinator
from coordinator.store import registry
from fedpsy.serving import BackgroundServer
from node.privacy.policy import KNOWN_ANALYSES
from schemas.steps.registry import STEPS
from tests.support.bad_requests import ERRORS, MALFORMED
from tests.support.canary import (
    SITE,
    Scanner,
    Served,
    World,
    attach_collector,
    build_canary_site,
    detach_collector,
    served_node,
    submit,
)
from tests.support.fuzzing import (
    Target,
    fuzz,
    narrow,
    signer,
    summary,
    with_analysis_body,
    with_task_body,
)
from tests.support.step_requests import (
    EXPECT_ANSWER,
    STEP_REQUESTS,
    cohorts,
    names_open_levels,
    requests_for,
)

pytestmark = [pytest.mark.xdist_group("leaks"), pytest.mark.slow]

EXAMPLES = int(os.environ.get("FEDPSY_LEAK_EXAMPLES", "20"))
DERANDOMIZE = os.environ.get("FEDPSY_LEAK_RANDOM", "") == ""
CODES = [
    "age",
    "education_years",
    "sex",
    "primary_diagnosis",
    "trs",
    "madrs_total",
    "panss_total",
    "dacc_glu",
    "dacc_glx",
    "relapse",
    "time_to_relapse",
    "site",
    "mrs_scanner",
]
"""Variables the fuzzers name (``mrs_scanner``: an open categorical, its labels are data)."""
FORMULAS = [
    "madrs_total ~ age + education_years",
    "trs ~ age + sex",
    "dacc_glu ~ age + mrs_scanner",
    "age + sex",
]
VISITS = ["baseline", "week6"]
COHORT_NAMES = list(cohorts([50.0] * 50))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    logs, previous = attach_collector()
    try:
        root = tmp_path_factory.mktemp("leaks")
        site = build_canary_site(root / "site")
        coordinator = Coordinator.create(root / "coordinator")
        yield World(root, site, coordinator, logs, len(logs.lines))
    finally:
        detach_collector(logs, previous)


@pytest.fixture
def scanner(world: World) -> Scanner:
    return Scanner(world, len(world.logs.lines))


def test_setup_logs_hold_no_canary(world: World) -> None:
    """Ingesting the canary site (validation, derivations) logs no row value or id."""
    assert world.setup_lines > 0  # the collector sees the node's loggers
    Scanner(world, 0).assert_clean()


def test_every_registered_step_has_requests() -> None:
    missing = sorted(set(STEPS) - set(STEP_REQUESTS))
    assert not missing, f"add requests for {missing} to tests/support/step_requests.py"


def run_steps(
    world: World, scanner: Scanner, cohort: dict[str, Any] | None, label: str, open_levels: bool
) -> dict[str, list[int]]:
    """Every registered step's requests (those taking an open categorical's levels from
    the data, or the others) on a fresh node; returns the statuses per step."""
    statuses: dict[str, list[int]] = {}
    with served_node(world, "steps") as node:
        for name in sorted(STEPS):
            for analysis, step in requests_for(name):
                if names_open_levels(step) != open_levels:
                    continue
                sent = {**step, "cohort": cohort} if cohort is not None else step
                response = submit(world, node, analysis, sent)
                statuses.setdefault(name, []).append(response.status_code)
                scanner.scan(f"{name} on {label} ({response.status_code})", response.text)
        for path in ("/admin/audit?verify=true", "/admin/tasks"):
            admin = node.admin(path)
            assert admin.status_code == 200
            scanner.scan(f"GET {path}", admin.text)
    return statuses


@pytest.mark.parametrize("cohort_name", COHORT_NAMES)
def test_every_step_on_cohorts_leaks_nothing(
    world: World, scanner: Scanner, cohort_name: str
) -> None:
    """Each registered step, on a fresh node, over one cohort: no leak, no 5xx."""
    cohort = cohorts(list(world.site.ages))[cohort_name]
    statuses = run_steps(world, scanner, cohort, cohort_name, open_levels=False)
    failed = {name: codes for name, codes in statuses.items() if max(codes) >= 500}
    assert not failed, f"5xx from steps {failed}"
    if cohort_name == "everyone":
        answered = {name for name, codes in statuses.items() if 200 in codes}
        assert EXPECT_ANSWER & set(STEPS) <= answered, statuses
    scanner.assert_clean()


def test_open_categorical_labels_do_not_leave(world: World, scanner: Scanner) -> None:
    """Grouping, tabulating or modelling by ``mrs_scanner`` does not reveal the label two
    canary persons hold."""
    statuses = run_steps(world, scanner, None, "everyone", open_levels=True)
    assert all(max(codes) < 500 for codes in statuses.values()), statuses
    scanner.assert_clean()


def test_refused_table_does_not_leave_through_a_design(world: World, error_node: Served) -> None:
    """sex × primary_diagnosis has a cell of 2 at the canary site: the crosstab is refused,
    and the same counts must not leave as the sums of a regression's indicator columns."""
    table = submit(
        world,
        error_node,
        "crosstab",
        {"step": "crosstab", "row": "sex", "column": "primary_diagnosis"},
    )
    assert (table.status_code, table.json()["code"]) == (403, "cell_too_small")
    step = {"step": "column_moments", "formula": "age ~ primary_diagnosis * sex"}
    design = submit(world, error_node, "ols", step)
    if design.status_code == 200:
        result = design.json()["result"]
        small = {
            c: s
            for c, s in zip(result["columns"], result["sums"], strict=True)
            if "[T." in c and 0 < s < 5
        }
        assert not small, f"indicator counts below the minimum cell left: {small}"


@pytest.fixture(scope="module")
def error_node(world: World) -> Iterator[Served]:
    with served_node(world, "errors") as node:
        yield node


@pytest.mark.parametrize(("analysis", "step"), ERRORS)
def test_error_messages_leak_nothing(
    world: World, error_node: Served, scanner: Scanner, analysis: str, step: dict[str, Any]
) -> None:
    """Requests that fail at the node: a 4xx problem body naming no value."""
    response = submit(world, error_node, analysis, step)
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["code"], response.text
    scanner.scan(f"{step['step']} error ({response.status_code})", response.text)
    scanner.assert_clean()


@pytest.mark.parametrize(("analysis", "step"), MALFORMED)
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy overflow in the server thread
def test_malformed_steps_are_refused_not_500(
    world: World, error_node: Served, scanner: Scanner, analysis: str, step: dict[str, Any]
) -> None:
    """Well-typed but impossible requests (ragged matrices, overflowing numbers): 4xx."""
    response = submit(world, error_node, analysis, step)
    scanner.scan(f"{step['step']} ({response.status_code})", response.text)
    scanner.assert_clean()
    assert 400 <= response.status_code < 500, response.text


def test_node_api_fuzzed_without_5xx_or_leak(world: World, scanner: Scanner) -> None:
    """Schemathesis over the node's OpenAPI: every operation, positive and negative."""
    with served_node(world, "fuzz", manual=("histogram", "crosstab")) as node:
        served = node.client.get("/openapi.json")
        assert served.status_code == 200, served.text
        spec = served.json()
        spec = narrow(with_task_body(spec, list(KNOWN_ANALYSES)), CODES, FORMULAS, VISITS)
        sign = signer(world.coordinator.key)
        target = Target(
            node.url,
            headers=lambda path: (
                {"authorization": f"Bearer {node.token}"} if path.startswith("/admin") else {}
            ),
            auth=lambda path: sign,  # extra headers are harmless where unsigned
            inspect=lambda e: scanner.scan(f"{e.method} {e.path} ({e.status})", e.body),
            examples=EXAMPLES,
            body_examples=3 * EXAMPLES,
            derandomize=DERANDOMIZE,
        )
        seen = fuzz(spec, target)
        for path in ("/admin/audit?verify=true", "/admin/tasks"):
            scanner.scan(f"GET {path}", node.admin(path).text)
    assert not [e for e in seen if e.status >= 500], summary(seen)
    tasks = [e for e in seen if e.method == "POST" and e.path == "/v1/tasks"]
    assert any(e.status == 200 for e in tasks), summary(seen)  # bodies reach the steps
    assert any(e.status in (403, 422) for e in tasks), summary(seen)  # and the checks
    scanner.assert_clean()


def test_coordinator_api_fuzzed_without_5xx_or_leak(world: World, scanner: Scanner) -> None:
    """Schemathesis over the coordinator's researcher API, with a researcher token."""
    with served_node(world, "coordinated") as node:
        coordinator = Coordinator.open(world.coordinator.dir.root)
        coordinator.add_node(SITE, node.url)
        token = registry.add_user(coordinator.engine, f"leak-{uuid.uuid4().hex[:6]}")
        with BackgroundServer(coordinator_app(coordinator)) as server:
            served = httpx.get(server.url + "/openapi.json")
            assert served.status_code == 200, served.text
            spec = served.json()
            spec = narrow(with_analysis_body(spec), CODES, FORMULAS, VISITS)
            target = Target(
                server.url,
                headers=lambda path: {"authorization": f"Bearer {token}"},
                inspect=lambda e: scanner.scan(f"{e.method} {e.path} ({e.status})", e.body),
                examples=EXAMPLES,
                body_examples=3 * EXAMPLES,
                derandomize=DERANDOMIZE,
            )
            seen = fuzz(spec, target)
    answered = [
        e
        for e in seen
        if e.method == "POST" and e.status == 200 and json.loads(e.body).get("status") == "ok"
    ]
    assert answered, summary(seen)  # generated requests reach the node and come back
    scanner.assert_clean()
