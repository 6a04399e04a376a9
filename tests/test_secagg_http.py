"""Secure aggregation over real signed HTTP: pooled-equal answers, a coordinator that never
holds a site's clear partial, dropouts recovered after masking, below-threshold failure,
key substitution detected, replays refused, and sites that require secure aggregation."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import numpy as np
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from scipy import stats

from coordinator.federation.failures import SiteFailure, SitesFailed
from coordinator.federation.http import Endpoint, HttpFederation
from coordinator.federation.secagg import establish, fetch_bundles
from coordinator.jobs.runner import run_request
from coordinator.store import registry
from node.steps.registry import run_step
from schemas.errors import FedpsyError
from schemas.keys import generate_private_key
from schemas.secagg import fixedpoint
from schemas.secagg.keys import b64, make_bundle, raw_public
from schemas.secagg.wire import (
    KeyBundle,
    Participant,
    SecureAnswer,
    SecureTask,
    SetupRequest,
    UnmaskRequest,
)
from schemas.steps.additive import flatten
from schemas.steps.base import StepBase
from schemas.steps.moments import MomentsResult, MomentsStep
from schemas.steps.registry import step_spec
from schemas.steps.tabulate import CountResult, CountStep
from schemas.wire import TaskOutcome
from tests.support.consortium import LocalConsortium, clinical_sites

pytestmark = pytest.mark.xdist_group("secagg_http")
SIZES = {"amsterdam": 90, "berlin": 70, "copenhagen": 60, "dublin": 55}
T = TypeVar("T")


@pytest.fixture(scope="module")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalConsortium]:
    built = LocalConsortium.build(tmp_path_factory.mktemp("secagg"), clinical_sites(SIZES))
    yield built
    built.close()


@dataclass
class Recording(HttpFederation):
    """The HTTP federation, also remembering each step it sent and to whom."""

    sent: list[tuple[str, StepBase, SecureTask | None]] = field(default_factory=list)
    answers: list[dict[str, Any]] = field(default_factory=list)  # in the order of ``sent``
    received: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    async def task(self, site: str, step: StepBase, secure: SecureTask | None) -> TaskOutcome:
        self.sent.append((site, step, secure))
        self.answers.append({})
        slot = len(self.answers) - 1
        outcome = await super().task(site, step, secure)
        self.answers[slot] = outcome.result or {}
        return outcome


def endpoints(c: LocalConsortium, sites: list[str] | None = None) -> list[Endpoint]:
    nodes = registry.list_nodes(c.coordinator.engine)
    return [
        Endpoint(n.site, n.url, n.fingerprint) for n in nodes if sites is None or n.site in sites
    ]


def with_federation(
    c: LocalConsortium,
    body: Callable[[Recording], Awaitable[T]],
    transport: httpx.AsyncBaseTransport | None = None,
    **options: Any,
) -> T:
    async def main() -> T:
        async with httpx.AsyncClient(transport=transport) as client:
            fed = Recording(
                endpoints(c, options.pop("sites", None)),
                c.coordinator.key,
                "job-secagg",
                options.pop("analysis", "summary"),
                client,
                **options,
            )
            fed.on_receive = lambda site, kind, payload: fed.received.append((site, kind, payload))
            return await body(fed)

    return asyncio.run(main())


def run(c: LocalConsortium, request: dict[str, Any]) -> dict[str, Any]:
    return asyncio.run(c.coordinator.run(request))


# -- pooled-equal answers ------------------------------------------------------------------
def test_secure_analyses_equal_pooled_references(consortium: LocalConsortium) -> None:
    pooled = consortium.pooled
    summary = run(consortium, {"analysis": "summary", "variables": ["age", "madrs_total"]})
    assert summary["privacy"] == {"secure_aggregation": True, "dp": None}
    for var in ("age", "madrs_total"):
        got, values = summary["result"]["variables"][var], pooled[var].dropna()
        assert got["n"] == len(values)
        assert got["mean"] == pytest.approx(values.mean(), rel=1e-12)
        assert got["sd"] == pytest.approx(values.std(ddof=1), rel=1e-10)

    both = pooled.dropna(subset=["age", "madrs_total"])
    corr = run(consortium, {"analysis": "correlation", "variables": ["age", "madrs_total"]})
    assert corr["privacy"]["secure_aggregation"] is True
    r = stats.pearsonr(both["age"], both["madrs_total"]).statistic
    assert corr["result"]["matrix"][0][1] == pytest.approx(r, rel=1e-10)

    table = run(consortium, {"analysis": "crosstab", "row": "sex", "column": "ketamine"})
    assert table["status"] == "ok", table
    counts = np.array(table["result"]["counts"])
    chi2 = stats.chi2_contingency(counts, correction=False)
    assert counts.sum() == len(pooled)
    assert table["result"]["chi2"]["statistic"] == pytest.approx(chi2.statistic, rel=1e-10)

    ols = run(consortium, {"analysis": "ols", "formula": "madrs_total ~ age + sex"})
    ref = smf.ols("madrs_total ~ age + sex", pooled).fit()
    for coef in ols["result"]["coefficients"]:
        assert coef["estimate"] == pytest.approx(ref.params[coef["term"]], rel=1e-8)
        assert coef["std_error"] == pytest.approx(ref.bse[coef["term"]], rel=1e-8)
    assert ols["privacy"]["secure_aggregation"] is True

    formula = "ketamine ~ age + sex + madrs_total"
    glm = run(consortium, {"analysis": "glm", "formula": formula, "family": "binomial"})
    assert glm["status"] == "ok", glm
    gref = smf.glm(formula, pooled, family=sm.families.Binomial()).fit(tol=1e-14)
    for coef in glm["result"]["coefficients"]:
        assert coef["estimate"] == pytest.approx(gref.params[coef["term"]], rel=1e-8)
    assert glm["result"]["deviance"] == pytest.approx(gref.deviance, rel=1e-10)
    assert glm["privacy"]["secure_aggregation"] is True


def test_per_site_values_are_not_claimed_secure(consortium: LocalConsortium) -> None:
    meta = run(consortium, {"analysis": "meta", "formula": "madrs_total ~ age", "term": "age"})
    assert meta["status"] == "ok", meta
    assert meta["privacy"]["secure_aggregation"] is False  # per-site fits left the sites


# -- the coordinator never holds a clear partial ------------------------------------------
def _clear_partials(c: LocalConsortium, fed: Recording) -> list[tuple[str, np.ndarray]]:
    out = []
    for site, step, _ in fed.sent:
        computed = run_step(step, c.services[site].frames)
        out.append((site, flatten(computed.result)[0]))
    return out


def test_coordinator_never_holds_a_sites_clear_partial(consortium: LocalConsortium) -> None:
    hashes = {
        s: dict(registry.get_node(consortium.coordinator.engine, s).variable_hashes) for s in SIZES
    }
    feds: list[Recording] = []

    async def job(request: dict[str, Any]) -> dict[str, Any]:
        async with httpx.AsyncClient() as client:

            def federation_for(sites: list[str]) -> Recording:
                fed = Recording(
                    endpoints(consortium, sites),
                    consortium.coordinator.key,
                    "job-blind",
                    str(request["analysis"]),
                    client,
                )
                fed.on_receive = lambda s, k, p: fed.received.append((s, k, p))
                feds.append(fed)
                return fed

            return await run_request(request, hashes, federation_for, "job-blind")

    for request in (
        {"analysis": "summary", "variables": ["age", "madrs_total"]},
        {"analysis": "glm", "formula": "ketamine ~ age + madrs_total", "family": "binomial"},
    ):
        assert asyncio.run(job(request))["status"] == "ok"
    received = [p for fed in feds for _, k, p in fed.received if k == "task"]
    tasks = [(s, p) for fed in feds for (s, _, _), p in zip(fed.sent, fed.answers, strict=True)]
    assert sorted(map(repr, received)) == sorted(repr(p) for _, p in tasks)
    clear = [pair for fed in feds for pair in _clear_partials(consortium, fed)]
    steps = [step for fed in feds for _, step, _ in fed.sent]
    assert len(tasks) == len(clear) == len(steps) > 10
    for (site, payload), (same_site, partial), step in zip(tasks, clear, steps, strict=True):
        assert site == same_site
        answer = SecureAnswer.model_validate(payload)  # nothing but a masked answer arrived
        template = step_spec(step.step).result.model_validate(answer.template)
        assert not np.any(flatten(template)[0])
        masked = fixedpoint.decode(fixedpoint.from_bytes(base64.b64decode(answer.masked)))
        assert masked.shape == partial.shape
        informative = partial[np.abs(partial) > 1e-9]
        assert informative.size
        assert not np.any(np.isclose(masked[:, None], informative[None, :], rtol=1e-6))
    everything = repr([p for fed in feds for _, _, p in fed.received])
    for _, partial in clear:
        for value in partial[np.abs(partial) > 1]:
            assert repr(float(value)) not in everything
    # the node's audit log records the masked vector's digest, never the clear numbers
    site, payload = tasks[0]
    released = [e for e in consortium.services[site].audit.entries() if e.kind == "released"]
    digests = {e.payload["left"].get("masked_sha256") for e in released}
    assert hashlib.sha256(base64.b64decode(payload["masked"])).hexdigest() in digests
    assert all("result" not in e.payload["left"] for e in released if "secure" in e.payload["left"])


def test_in_the_clear_the_same_instrument_sees_the_partials(consortium: LocalConsortium) -> None:
    step = MomentsStep(variables=["age"], products=True)

    async def body(fed: Recording) -> MomentsResult:
        return await fed.sum(step, MomentsResult)

    fed_holder: list[Recording] = []

    async def keep(fed: Recording) -> MomentsResult:
        fed_holder.append(fed)
        return await body(fed)

    with_federation(consortium, keep, secure=False)
    fed = fed_holder[0]
    received = {s: MomentsResult.model_validate(p) for s, k, p in fed.received if k == "task"}
    for site, partial in _clear_partials(consortium, fed):
        assert np.array_equal(flatten(received[site])[0], partial)
    assert fed.privacy() == {"secure_aggregation": False, "dp": None}


# -- dropouts -------------------------------------------------------------------------------
class LoseAnswers(httpx.AsyncBaseTransport):
    """Delivers requests, then loses the answers to tasks of ``sites`` once armed: those
    nodes computed and masked their result, but it never reaches the coordinator."""

    def __init__(self, urls: dict[str, str]) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.urls = urls
        self.lose: set[str] = set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        site = next((s for s, u in self.urls.items() if str(request.url).startswith(u)), None)
        if site in self.lose and request.url.path == "/v1/tasks":
            await response.aread()
            raise httpx.ReadTimeout("answer lost", request=request)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def _lossy(c: LocalConsortium) -> LoseAnswers:
    return LoseAnswers({n.site: n.url for n in registry.list_nodes(c.coordinator.engine)})


def test_a_node_dropping_after_masking_is_recovered(consortium: LocalConsortium) -> None:
    lossy = _lossy(consortium)
    step = MomentsStep(variables=["age", "madrs_total"], products=True)

    async def body(fed: Recording) -> tuple[CountResult, MomentsResult, CountResult]:
        first = await fed.sum(CountStep(), CountResult)
        lossy.lose = {"dublin"}
        second = await fed.sum(step, MomentsResult)
        lossy.lose = set()
        third = await fed.sum(CountStep(), CountResult)
        return first, second, third

    first, second, third = with_federation(consortium, body, lossy, tolerate_dropouts=True)
    pooled = consortium.pooled
    assert first.n == len(pooled)
    survivors = pooled[pooled["site"] != "dublin"].dropna(subset=["age", "madrs_total"])
    values = survivors[["age", "madrs_total"]].to_numpy()
    assert second.n[0] == [len(survivors)] * 2
    np.testing.assert_allclose(second.sums[0], values.sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(second.cross[0], values.T @ values, rtol=1e-12)
    assert third.n == len(pooled[pooled["site"] != "dublin"])
    # dublin did mask round 2 (its audit says a masked answer left) before it was lost
    kinds = [
        (e.kind, e.payload.get("left", {}).get("secure", {}).get("round"))
        for e in consortium.services["dublin"].audit.entries()
    ]
    assert ("released", 2) in kinds
    unmasked = [
        e.payload
        for e in consortium.services["amsterdam"].audit.entries()
        if e.kind == "secagg.unmask" and e.payload["round"] == 2
    ]
    assert unmasked[-1]["dropped"] == ["dublin"]


def test_below_threshold_the_round_fails_cleanly(consortium: LocalConsortium) -> None:
    lossy = _lossy(consortium)

    async def body(fed: Recording) -> None:
        await fed.sum(CountStep(), CountResult)
        lossy.lose = {"berlin", "dublin"}
        await fed.sum(CountStep(), CountResult)

    with pytest.raises(FedpsyError) as caught:
        with_federation(consortium, body, lossy, tolerate_dropouts=True)
    assert caught.value.code == "secure_aggregation_failed"
    assert "only 2 of 4 sites answered round 2" in caught.value.detail
    assert "at least 3" in caught.value.detail
    assert caught.value.extra["sites"] == {
        "berlin": "site_unreachable",
        "dublin": "site_unreachable",
    }


def test_without_tolerance_a_dropout_fails_the_job_naming_the_site(
    consortium: LocalConsortium,
) -> None:
    lossy = _lossy(consortium)
    lossy.lose = {"copenhagen"}

    async def body(fed: Recording) -> None:
        await fed.sum(CountStep(), CountResult)

    with pytest.raises(SitesFailed) as caught:
        with_federation(consortium, body, lossy)
    assert caught.value.extra["sites"] == {"copenhagen": "site_unreachable"}


# -- keys -----------------------------------------------------------------------------------
def test_a_substituted_key_is_detected(consortium: LocalConsortium) -> None:
    sites = sorted(SIZES)

    async def body(fed: Recording) -> dict[str, str]:
        genuine = await fetch_bundles(fed, sites)
        await establish(fed, genuine)  # a first session: every node pins the others
        forged = dict(genuine)
        evil = X25519PrivateKey.generate()
        forged["berlin"] = KeyBundle(
            identity=genuine["berlin"].identity,
            key=b64(raw_public(evil.public_key())),
            signature=genuine["berlin"].signature,
        )
        with pytest.raises(SitesFailed) as swapped:
            await establish(fed, forged)
        codes = swapped.value.extra["sites"]
        assert {codes[s] for s in sites if s != "berlin"} == {"peer_key_mismatch"}
        assert codes["berlin"] == "secure_aggregation_failed"  # its own key is not there
        # swapping the identity too: the signature verifies, the pinned identity does not
        forged["berlin"] = make_bundle(generate_private_key(), evil)
        with pytest.raises(SitesFailed) as impostor:
            await establish(fed, forged)
        return dict(impostor.value.extra["sites"])

    codes = with_federation(consortium, body)
    assert {codes[s] for s in sites if s != "berlin"} == {"peer_key_mismatch"}


def test_the_coordinator_checks_identities_pinned_at_add_node(consortium: LocalConsortium) -> None:
    async def body(fed: Recording) -> None:
        fed.endpoints = [
            Endpoint(e.site, e.url, "0" * 64 if e.site == "berlin" else e.fingerprint)
            for e in fed.endpoints
        ]
        await fed.sum(CountStep(), CountResult)

    with pytest.raises(SitesFailed) as caught:
        with_federation(consortium, body)
    assert caught.value.extra["sites"] == {"berlin": "peer_key_mismatch"}


def test_sessions_and_conflicting_reveals_are_refused(consortium: LocalConsortium) -> None:
    async def body(fed: Recording) -> None:
        bundles = await fetch_bundles(fed, sorted(SIZES))
        session = await establish(fed, bundles)
        replay = SetupRequest(
            session=session.session,
            threshold=3,
            participants=[Participant(site=s, bundle=b) for s, b in sorted(bundles.items())],
        )
        with pytest.raises(SiteFailure, match="accepted once"):
            await fed.post("amsterdam", "/v1/secagg/setup", replay)
        await session.run(CountStep(), CountResult, tolerate_dropouts=False)
        # asking again for round 1 with a site now called dropped: both secrets of it
        shares = {w: session.pending[w]["amsterdam"] for w in sorted(SIZES) if w != "amsterdam"}
        lie = UnmaskRequest(
            session=session.session,
            round=1,
            survivors=["amsterdam", "berlin", "copenhagen"],
            dropped=["dublin"],
            shares=shares,
        )
        with pytest.raises(SiteFailure, match="reveal both secrets of dublin"):
            await fed.post("amsterdam", "/v1/secagg/unmask", lie)
        task = SecureTask(session=session.session, round=1, participants=sorted(SIZES))
        with pytest.raises(SiteFailure, match="not the next round"):
            await fed.task("amsterdam", CountStep(), task)

    with_federation(consortium, body)


def test_one_session_serves_every_round_with_fresh_masks(consortium: LocalConsortium) -> None:
    rounds = 3

    async def body(fed: Recording) -> None:
        totals = [await fed.sum(CountStep(), CountResult) for _ in range(rounds)]
        assert len({t.n for t in totals}) == 1 and totals[0].n == sum(SIZES.values())
        # one key exchange and one setup per site for the whole job; a task and an unmask
        # per site per round
        n = len(SIZES)
        assert fed.trips == Counter(key=n, setup=n, task=rounds * n, unmask=rounds * n)
        # the same count each round, masked differently each round
        masked: dict[str, list[str]] = {}
        for (site, _, _), answer in zip(fed.sent, fed.answers, strict=True):
            masked.setdefault(site, []).append(SecureAnswer.model_validate(answer).masked)
        assert all(len(set(vectors)) == rounds for vectors in masked.values())
        # a round is used once and in order: replayed rounds and a skipped one are refused
        session = fed._session
        assert session is not None and session.round == rounds
        for round_ in (*range(1, rounds + 1), rounds + 2):
            task = SecureTask(session=session.session, round=round_, participants=sorted(SIZES))
            with pytest.raises(SiteFailure, match="not the next round"):
                await fed.task("berlin", CountStep(), task)
        # the session goes on with the next round
        assert (await fed.sum(CountStep(), CountResult)).n == totals[0].n

    with_federation(consortium, body)


# -- policy --------------------------------------------------------------------------------
def test_a_site_requiring_secure_aggregation_refuses_clear_sums(tmp_path: Path) -> None:
    built = LocalConsortium.build(
        tmp_path,
        clinical_sites({"oslo": 25, "paris": 30}),
        policy_extra={"oslo": {"require_secure_aggregation": "true"}},
    )
    try:

        async def clear(fed: Recording) -> CountResult:
            return await fed.sum(CountStep(), CountResult)

        with pytest.raises(SitesFailed) as caught:
            with_federation(built, clear, secure=False, analysis="count")
        assert caught.value.extra["sites"] == {"oslo": "secure_aggregation_required"}
        assert caught.value.code == "refused"
        result = run(built, {"analysis": "count"})
        assert result["status"] == "ok" and result["result"]["n"] == 55
        assert result["privacy"]["secure_aggregation"] is True
    finally:
        built.close()


def test_a_manually_approved_secure_answer_leaves_masked(tmp_path: Path) -> None:
    import threading

    built = LocalConsortium.build(
        tmp_path,
        clinical_sites({"oslo": 25, "paris": 30}),
        policy_extra={"paris": {"default_approval": '"manual"'}},
    )
    paris = built.services["paris"]
    approved: list[str] = []

    def site_admin() -> None:
        for _ in range(200):
            pending = paris.tasks.pending()
            if pending:
                review = pending[0]["would_leave"]
                assert review["review"] == {"n": 30}  # the site sees its own clear value
                approved.append(paris.decide(pending[0]["task_id"], approve=True).task_id)
                return
            threading.Event().wait(0.05)

    admin = threading.Thread(target=site_admin)
    admin.start()
    try:

        async def body(fed: Recording) -> CountResult:
            fed.poll_interval = 0.05
            return await fed.sum(CountStep(), CountResult)

        total = with_federation(built, body, analysis="count")
        admin.join()
        assert total.n == 55 and approved
        outcome = paris.outcome(approved[0])
        assert set(outcome.result or {}) == {"masked", "template", "shares", "dp"}
        released = [e.payload["left"] for e in paris.audit.entries() if e.kind == "released"]
        assert (
            released[-1]["masked_sha256"]
            == hashlib.sha256(base64.b64decode((outcome.result or {})["masked"])).hexdigest()
        )
    finally:
        admin.join()
        built.close()


def test_keys_and_pins_live_in_the_node_directory(consortium: LocalConsortium) -> None:
    import json
    import stat

    run(consortium, {"analysis": "count"})
    for site, node in consortium.nodes.items():
        key = node.dir.keys / "secagg.key"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        pins = json.loads((node.dir.keys / "peers.json").read_text())
        assert sorted(pins) == sorted(s for s in SIZES if s != site)
        for peer, fp in pins.items():
            assert fp == registry.get_node(consortium.coordinator.engine, peer).fingerprint
