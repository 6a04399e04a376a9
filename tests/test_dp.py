"""Differential privacy at the nodes: OpenDP calibration, the noise distribution (KS
tests), sensitivities checked on real neighbouring data sets, the ledger on both store
backends, and budgets spent and exhausted over real HTTP with secure aggregation."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import opendp.prelude as dp_lib
import pandas as pd
import pytest
from scipy import stats
from sqlalchemy import Engine

from coordinator.federation.http import Endpoint, HttpFederation
from coordinator.store import registry
from node.data.frame_memory import DataFrameSource
from node.privacy import dp
from node.privacy.ledger import PrivacyLedger
from node.steps.registry import run_step
from schemas.dictionary import load_dictionary
from schemas.dictionary.model import Dictionary, Variable
from schemas.errors import FedpsyError
from schemas.steps.additive import flatten
from schemas.steps.glm import GlmScoreStep
from schemas.steps.moments import MomentsStep
from schemas.steps.tabulate import CountResult, CountStep, HistogramStep
from tests.support.consortium import LocalConsortium, clinical_sites

SIZES = {"lisbon": 40, "madrid": 35, "porto": 30}
GLM_STEP = GlmScoreStep(
    formula="y ~ x",
    family="binomial",
    beta=[0.0, 0.0],
    columns=["Intercept", "x"],
    center=[0.0, 0.0],
    scale=[1.0, 1.0],
)


@pytest.mark.parametrize(("epsilon", "delta"), [(0.1, 1e-6), (1.0, 1e-5), (3.0, 1e-7)])
def test_sigma_is_the_smallest_opendp_accepts(epsilon: float, delta: float) -> None:
    sens = 2.5
    sigma = dp.gaussian_sigma(sens, epsilon, delta)
    dp_lib.enable_features("contrib")
    space = (
        dp_lib.vector_domain(dp_lib.atom_domain(T=float, nan=False), size=1),
        dp_lib.l2_distance(T=float),
    )

    def private(scale: float) -> bool:
        meas = dp_lib.c.make_fix_delta(
            dp_lib.c.make_zCDP_to_approxDP(dp_lib.m.make_gaussian(*space, scale=scale)), delta
        )
        return bool(meas.check(sens, (epsilon, delta)))

    assert private(sigma) and not private(sigma * 0.999)
    if epsilon < 1:  # tighter than the classical calibration (Dwork & Roth, Thm. A.1)
        assert sigma < sens * math.sqrt(2 * math.log(1.25 / delta)) / epsilon


def test_noise_follows_the_stated_gaussian() -> None:
    sigma = 3.7
    noise = dp.add_noise(np.zeros(3000), sigma)
    assert stats.kstest(noise, "norm", args=(0.0, sigma)).pvalue > 1e-3
    assert stats.kstest(noise, "norm", args=(0.0, sigma * 1.3)).pvalue < 1e-6  # can fail
    shifted = dp.add_noise(np.full(3000, 10.0), sigma)
    assert stats.kstest(shifted - 10.0, "norm", args=(0.0, sigma)).pvalue > 1e-3


def test_distributed_shares_sum_to_the_target_noise() -> None:
    sigma, sites = 6.0, 5
    share = dp.node_sigma(sigma, sites, secure=True)
    assert share == pytest.approx(sigma / math.sqrt(sites))
    assert dp.node_sigma(sigma, sites, secure=False) == sigma
    total = sum(dp.add_noise(np.zeros(2000), share) for _ in range(sites))
    assert stats.kstest(total, "norm", args=(0.0, sigma)).pvalue > 1e-3


def _source(rows: pd.DataFrame) -> DataFrameSource:
    return DataFrameSource(
        "here", rows.assign(person_id=[f"p{i}" for i in range(len(rows))]), {"sex": ["F", "M"]}
    )


@pytest.mark.parametrize("products", [False, True])
@pytest.mark.parametrize("extreme", [(110.0, 60.0), (12.0, 0.0), (110.0, 0.0)])
def test_moment_sensitivity_bounds_one_person(products: bool, extreme: tuple[float, float]) -> None:
    dictionary = load_dictionary()
    rng = np.random.default_rng(5)
    base = pd.DataFrame(
        {
            "age": rng.uniform(18, 80, 30).round(1),
            "madrs_total": rng.integers(0, 61, 30).astype(float),
        }
    )
    person = pd.DataFrame({"age": [extreme[0]], "madrs_total": [extreme[1]]})
    for center in (None, [[40.0, 20.0]]):
        step = MomentsStep(variables=["age", "madrs_total"], products=products, center=center)
        without = flatten(run_step(step, _source(base)).result)[0]
        with_one = flatten(run_step(step, _source(pd.concat([base, person]))).result)[0]
        change = float(np.linalg.norm(with_one - without))
        bound = dp.sensitivity(step, dictionary)
        assert change <= bound
        if center is None and extreme == (110.0, 60.0):  # the worst person nearly reaches it
            assert change >= 0.99 * bound


@pytest.mark.parametrize("extreme", [(110.0, 60.0), (12.0, 0.0), (40.0, 20.0)])
def test_standardized_higher_moment_sensitivity_bounds_one_person(
    extreme: tuple[float, float],
) -> None:
    """The summary's third round: sums of z, z², z³ and z⁴ of z = (x − c)/s."""
    dictionary = load_dictionary()
    rng = np.random.default_rng(6)
    base = pd.DataFrame(
        {
            "age": rng.uniform(18, 80, 30).round(1),
            "madrs_total": rng.integers(0, 61, 30).astype(float),
        }
    )
    person = pd.DataFrame({"age": [extreme[0]], "madrs_total": [extreme[1]]})
    step = MomentsStep(
        variables=["age", "madrs_total"],
        complete_cases=False,
        products=True,
        higher=["age", "madrs_total"],
        center=[[40.0, 20.0]],
        scale=[[15.0, 9.0]],
    )
    without = flatten(run_step(step, _source(base)).result)[0]
    with_one = flatten(run_step(step, _source(pd.concat([base, person]))).result)[0]
    bound = dp.sensitivity(step, dictionary)
    assert float(np.linalg.norm(with_one - without)) <= bound
    assert dp.sensitivity(step.model_copy(update={"higher": ["age"]}), dictionary) < bound
    # the scale shrinks the bound: unscaled fourth powers of ages would need far more noise
    assert bound < dp.sensitivity(step.model_copy(update={"scale": None}), dictionary) / 100


def test_counting_sensitivity_is_one_person() -> None:
    rng = np.random.default_rng(2)
    base = pd.DataFrame({"age": rng.uniform(18, 80, 25)})
    step = HistogramStep(variable="age", edges=[10, 30, 50, 70, 90])
    without = flatten(run_step(step, _source(base)).result)[0]
    with_one = flatten(
        run_step(step, _source(pd.concat([base, pd.DataFrame({"age": [44.0]})]))).result
    )[0]
    assert float(np.linalg.norm(with_one - without)) == dp.sensitivity(step, load_dictionary())


def test_steps_without_a_mechanism_are_refused() -> None:
    with pytest.raises(FedpsyError) as caught:
        dp.sensitivity(GLM_STEP, load_dictionary())
    assert caught.value.code == "dp_unsupported"
    unbounded = Dictionary.from_variables([Variable(code="score", label="Score", type="numeric")])
    with pytest.raises(FedpsyError, match="'score' has no range"):
        dp.sensitivity(MomentsStep(variables=["score"]), unbounded)


def test_ledger_spends_and_refuses_past_the_budget(store_engine: Engine) -> None:
    ledger = PrivacyLedger(store_engine)
    for i in range(10):
        spent = ledger.charge(
            f"t{i}", epsilon=0.1, delta=1e-6, sigma=1.0, sensitivity=1.0, budget=1.0
        )
    assert spent == pytest.approx(1.0)
    with pytest.raises(FedpsyError) as caught:
        ledger.charge("t10", epsilon=0.1, delta=1e-6, sigma=1.0, sensitivity=1.0, budget=1.0)
    assert caught.value.code == "dp_budget_exhausted"
    assert "epsilon 1 of 1 used" in caught.value.detail
    total = ledger.spent()
    assert total.releases == 10
    assert (total.epsilon, total.delta) == pytest.approx((1.0, 1e-5))


# -- over HTTP -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def noisy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalConsortium]:
    dp_policy = {"enabled": "true", "epsilon_total": "3.0", "epsilon_per_release": "1.0"}
    built = LocalConsortium.build(
        tmp_path_factory.mktemp("dp"),
        clinical_sites(SIZES),
        policy_extra={s: dp_policy for s in SIZES},
    )
    yield built
    built.close()


def _count_in_the_clear(c: LocalConsortium) -> tuple[CountResult, dict[str, object]]:
    async def main() -> tuple[CountResult, dict[str, object]]:
        async with httpx.AsyncClient() as client:
            nodes = registry.list_nodes(c.coordinator.engine)
            fed = HttpFederation(
                [Endpoint(n.site, n.url) for n in nodes],
                c.coordinator.key,
                "job-dp",
                "count",
                client,
                secure=False,
            )
            return await fed.sum(CountStep(), CountResult), fed.privacy()

    return asyncio.run(main())


@pytest.mark.xdist_group("dp_http")
def test_budget_is_spent_per_release_and_then_refused(noisy: LocalConsortium) -> None:
    def run(request: dict[str, Any]) -> dict[str, Any]:
        return asyncio.run(noisy.coordinator.run(request))

    total = sum(SIZES.values())
    glm = run({"analysis": "glm", "formula": "ketamine ~ age", "family": "binomial"})
    assert glm["status"] == "refused"
    assert set(glm["reason"]["sites"].values()) == {"dp_unsupported"}

    first = run({"analysis": "count"})
    assert first["status"] == "ok", first
    sigma = dp.gaussian_sigma(1.0, 1.0, 1e-6)
    assert abs(first["result"]["n"] - total) < 6 * sigma
    assert first["privacy"] == {
        "secure_aggregation": True,
        "dp": {
            "mechanism": "gaussian",
            "epsilon": 1.0,
            "delta": 1e-6,
            "sites": {s: {"epsilon": 1.0, "delta": 1e-6, "releases": 1} for s in SIZES},
        },
    }
    assert first["sites"] == {s: {"n": 0} for s in SIZES}  # exact row counts stay home

    clear, privacy = _count_in_the_clear(noisy)
    assert privacy["secure_aggregation"] is False and privacy["dp"] is not None
    assert abs(clear.n - total) < 6 * sigma * math.sqrt(len(SIZES))

    assert run({"analysis": "count"})["status"] == "ok"
    exhausted = run({"analysis": "count"})
    assert exhausted["status"] == "refused"
    assert exhausted["reason"]["sites"] == {s: "dp_budget_exhausted" for s in SIZES}
    for site, service in noisy.services.items():
        spent = PrivacyLedger(service.node.engine).spent()
        assert spent.releases == 3 and spent.epsilon == pytest.approx(3.0), site
        left = [e.payload["left"] for e in service.audit.entries() if e.kind == "released"]
        calibrations = [
            entry["dp"]["calibration"] if "dp" in entry else entry["result"]["dp"]["calibration"]
            for entry in left
        ]
        assert calibrations == ["distributed", "local", "distributed"]


def test_policy_parses_the_dp_settings(tmp_path: Path) -> None:
    from node.privacy.policy import parse_policy

    policy = parse_policy("[dp]\nenabled = true\nepsilon_total = 2.0\nepsilon_per_release = 0.5")
    assert policy.dp.enabled and policy.dp.epsilon_per_release == 0.5
    with pytest.raises(FedpsyError, match="more than epsilon_total"):
        parse_policy("[dp]\nepsilon_total = 0.2\nepsilon_per_release = 0.5")
