"""Per-person values derived by an analysis stay at the nodes, over real HTTP: ComBat's
harmonized measures and PCA scores become variables of each node that later requests use,
and a run refused anywhere is kept nowhere."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from node.store import tables as t
from tests.support.consortium import LocalConsortium, clinical_sites

pytestmark = pytest.mark.xdist_group("derived_http")
SIZES = {"lisbon": 60, "madrid": 50, "naples": 40}


@pytest.fixture(scope="module")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalConsortium]:
    built = LocalConsortium.build(tmp_path_factory.mktemp("derived"), clinical_sites(SIZES))
    yield built
    built.close()


def run(c: LocalConsortium, request: dict[str, Any]) -> dict[str, Any]:
    return asyncio.run(c.coordinator.run(request))


def stored(c: LocalConsortium, site: str, code: str) -> int:
    with c.nodes[site].engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(t.observation)
                .where(t.observation.c.variable == code)
            ).scalar()
            or 0
        )


def test_combat_values_stay_at_nodes_and_are_usable(consortium: LocalConsortium) -> None:
    result = run(
        consortium,
        {
            "analysis": "combat",
            "variables": ["madrs_total", "hamd17_total"],
            "batch": "site",
            "covariates": ["age"],
        },
    )
    assert result["status"] == "ok", result
    new = result["result"]["new_variables"]
    assert new == ["madrs_total_combat", "hamd17_total_combat"]
    pooled = consortium.pooled
    for site in SIZES:
        complete = pooled[(pooled["site"] == site)].dropna(
            subset=["madrs_total", "hamd17_total", "age"]
        )
        assert stored(consortium, site, "hamd17_total_combat") == len(complete)
        derived = consortium.nodes[site].dir.dictionary / "derived.yaml"
        assert "hamd17_total_combat" in derived.read_text()
    # the new variables are defined identically everywhere, so a later job can use them
    summary = run(consortium, {"analysis": "summary", "variables": ["hamd17_total_combat"]})
    assert summary["status"] == "ok", summary
    assert summary["result"]["variables"]["hamd17_total_combat"]["n"] == len(
        pooled.dropna(subset=["madrs_total", "hamd17_total", "age"])
    )
    # harmonization moves the site means together (the synthetic sites differ in MADRS)
    two = {"all": [{"var": "site", "op": "in", "value": ["lisbon", "naples"]}]}
    by_site = run(
        consortium,
        {
            "analysis": "ttest",
            "variable": "madrs_total_combat",
            "group": "site",
            "levels": ["lisbon", "naples"],
            "cohort": two,
        },
    )
    raw = run(
        consortium,
        {
            "analysis": "ttest",
            "variable": "madrs_total",
            "group": "site",
            "levels": ["lisbon", "naples"],
            "cohort": two,
        },
    )
    assert abs(by_site["result"]["welch"]["statistic"]) < abs(raw["result"]["welch"]["statistic"])


def test_pca_scores_kept_and_a_refused_run_kept_nowhere(consortium: LocalConsortium) -> None:
    ok = run(
        consortium,
        {
            "analysis": "pca",
            "variables": ["age", "madrs_total"],
            "scale": True,
            "scores_prefix": "dep",
        },
    )
    assert ok["status"] == "ok", ok
    assert stored(consortium, "naples", "dep_pc1") > 0
    small = {"all": [{"var": "age", "op": ">", "value": 70}]}
    refused = run(
        consortium,
        {
            "analysis": "pca",
            "variables": ["age", "madrs_total"],
            "scale": True,
            "scores_prefix": "old",
            "cohort": small,
        },
    )
    assert refused["status"] == "refused"
    for site in SIZES:
        assert stored(consortium, site, "old_pc1") == 0
