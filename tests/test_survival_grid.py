"""Kaplan–Meier grids as users ask for them: any non-negative times, and merges only where a
site's rules require them, listed in the result.

The demo's consortium (``fedpsy synth``: 3 sites × 400 persons, seed 7) served by real
nodes over signed HTTP with secure aggregation and the default policy: an 8-point grid of
days to rehospitalization, ungrouped and by ``trs`` (one site is too small for any
interval by ``trs``), and a grid of non-integer times. Curves equal statsmodels'
``SurvfuncRight`` on the pooled rows at the kept times (1e-8 relative); every left-out
time is one that some site's gate refuses next to the kept ones.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, cast

import numpy as np
import pandas as pd
import pytest

from coordinator.service import Coordinator
from coordinator.web.plots import plots_for
from fedpsy.serving import BackgroundServer
from fedpsy.synth import generate
from node.auth.trust import add_trusted_key
from node.data.source import FrameSource
from node.http.api import create_app
from node.service import NodeService
from node.site import NodeSite
from node.steps.registry import run_step
from schemas.analyses import parse_request
from schemas.analyses.kaplan_meier import KaplanMeierResult
from schemas.cohort import Cohort
from schemas.errors import ErrorCode, FedpsyError
from schemas.steps.survival import SurvivalCountsStep
from tests.support.federation import run_request, split_sites
from tests.test_survival import RTOL, assert_curve, bmt, km_reference

pytestmark = pytest.mark.xdist_group("survival_grid")

TIME, EVENT = "time_to_rehospitalization", "rehospitalization"
GRID = [30, 60, 90, 180, 270, 365, 545, 730]


@dataclass
class Demo:
    coordinator: Coordinator
    services: dict[str, NodeService]
    cached: dict[str, CachedFrames] = field(default_factory=dict)

    def run(self, request: dict[str, Any]) -> dict[str, Any]:
        envelope = asyncio.run(self.coordinator.run(request)).to_dict()
        assert isinstance(envelope, dict)
        return envelope

    def rows(self, sites: list[str], group: str | None = None) -> pd.DataFrame:
        """The pooled rows (ground truth read at the nodes, for the reference only)."""
        wanted = [TIME, EVENT, *([group] if group else [])]
        frames = [self.services[s].frames.frame(wanted, "baseline", None) for s in sites]
        data = pd.concat(frames, ignore_index=True).dropna(subset=wanted)
        return data.rename(columns={EVENT: "died"})

    def site_allows(self, site: str, times: Sequence[float], group: str | None = None) -> bool:
        """Whether ``site``'s gate lets a curve at ``times`` out (its cells, its policy)."""
        step = SurvivalCountsStep(
            time=TIME, event=EVENT, group=group, horizon=int(times[-1]), intervals=list(times)
        )
        service = self.services[site]
        source = self.cached.setdefault(site, CachedFrames(service.frames))
        cells = run_step(step, cast(FrameSource, source)).disclosure.cells
        return not any(0 < c < service.policy.min_cell for c in cells)


@dataclass
class CachedFrames:
    """A node's frames read once per variable list (the handler itself runs each time)."""

    inner: FrameSource
    frames: dict[tuple[str, ...], pd.DataFrame] = field(default_factory=dict)

    @property
    def site(self) -> str:
        return self.inner.site

    def frame(self, variables: Sequence[str], visit: str, cohort: Cohort | None) -> pd.DataFrame:
        assert visit == "baseline" and cohort is None
        key = tuple(variables)
        if key not in self.frames:
            self.frames[key] = self.inner.frame(variables, visit, cohort)
        return self.frames[key]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    root = tmp_path_factory.mktemp("demo")
    folders = generate(3, 400, 7, root / "data")
    coord = Coordinator.create(root / "coordinator")
    services = {}
    with ExitStack() as stack:
        for site, folder in folders.items():
            node = NodeSite.create(root / "nodes" / site, site, None)
            node.ingest(folder, None, None, None)
            add_trusted_key(node.dir.root, coord.dir.public_key)
            services[site] = NodeService(node)
            token = node.dir.admin_token.read_text().strip()
            server = stack.enter_context(BackgroundServer(create_app(services[site], token)))
            coord.add_node(site, server.url)
        yield Demo(coord, services)


def km(grid: list[float], **extra: Any) -> dict[str, Any]:
    return {"analysis": "kaplan_meier", "time": TIME, "event": EVENT, "grid": grid, **extra}


def assert_pooled(envelope: dict[str, Any], pooled: pd.DataFrame, group: str | None) -> None:
    result = KaplanMeierResult.model_validate(envelope["result"])
    for label, curve in result.groups.items():
        rows = pooled
        if group is not None:
            level = pooled[group].map(lambda v: f"{v:g}" if isinstance(v, float) else str(v))
            rows = pooled[level == label]
        survival, std_error = km_reference(rows[TIME], rows["died"], curve.time)
        np.testing.assert_allclose(curve.survival, survival, rtol=RTOL)
        np.testing.assert_allclose([s or 0.0 for s in curve.std_error], std_error, rtol=RTOL)
        assert curve.at_risk == [int((rows[TIME] >= t).sum()) for t in curve.time]


def assert_merges_listed(envelope: dict[str, Any], grid: list[float]) -> list[float]:
    """Kept and left-out times partition the grid; each left-out time names a rule's code
    and sites, never a count. Returns the kept times."""
    result = envelope["result"]
    kept = sorted({t for c in result["groups"].values() for t in c["time"]})
    left_out = [m["time"] for m in result["merged_points"]]
    assert sorted([*kept, *left_out]) == sorted(grid) and result["merged"] is bool(left_out)
    sites = set(envelope["sites"])
    for point in result["merged_points"]:
        assert set(point) == {"time", "code", "sites", "group"}
        assert point["code"] == ErrorCode.CELL_TOO_SMALL and set(point["sites"]) <= sites
        assert point["sites"] and point["group"] is None
    return kept


def test_an_eight_point_grid_keeps_every_time_the_sites_allow(demo: Demo) -> None:
    envelope = demo.run(km(GRID))
    assert envelope["status"] == "ok" and envelope["privacy"]["secure_aggregation"]
    kept = assert_merges_listed(envelope, GRID)
    sites = list(envelope["sites"])
    assert_pooled(envelope, demo.rows(sites), None)
    # the kept grid passes every site's gate, and no left-out time could come back: with
    # it, some site's rule refuses (merged only where a rule requires it)
    assert all(demo.site_allows(s, kept) for s in sites)
    for point in envelope["result"]["merged_points"]:
        with_it = sorted([*kept, point["time"]])
        refusing = [s for s in sites if not demo.site_allows(s, with_it)]
        assert refusing, f"{point['time']} was merged away although every site allows it"
    # and no grid of more of the requested times passes at every site: the search kept as
    # many times as any common grid can have (here as many as halving would, but the
    # times every site allows, and saying which were left out and why)
    longer = combinations(GRID, len(kept) + 1)
    assert not any(all(demo.site_allows(s, c) for s in sites) for c in longer)


def test_by_trs_a_site_supporting_no_interval_is_named_or_dropped(demo: Demo) -> None:
    sites = sorted(demo.services)
    unable = [s for s in sites if not any(demo.site_allows(s, [float(g)], "trs") for g in GRID)]
    assert unable == ["copenhagen"]  # the demo's small site
    refused = demo.run(km(GRID, group="trs"))
    assert refused["status"] == "refused"
    assert refused["reason"]["sites"] == {"copenhagen": ErrorCode.CELL_TOO_SMALL}
    assert "no interval" in refused["reason"]["detail"]
    envelope = demo.run(km(GRID, group="trs", on_refusal="drop_site"))
    assert envelope["status"] == "ok"
    assert envelope["dropped_sites"] == {"copenhagen": ErrorCode.CELL_TOO_SMALL}
    kept = assert_merges_listed(envelope, GRID)
    others = [s for s in sites if s not in unable]
    assert sorted(envelope["sites"]) == others
    assert_pooled(envelope, demo.rows(others, "trs"), "trs")
    assert all(demo.site_allows(s, kept, "trs") for s in others)
    # the plot shows only what was estimated: from (0, 1), stepping at the kept points only
    (plot,) = plots_for(envelope, km(GRID, group="trs"))
    assert plot.spec["layer"][-1]["mark"]["interpolate"] == "step-after"
    for label, curve in envelope["result"]["groups"].items():
        points = [(r["time"], r["survival"]) for r in plot.rows if r["group"] == label]
        assert points == [(0.0, 1.0), *zip(curve["time"], curve["survival"], strict=True)]
        assert all(s < 1.0 for t, s in points if t > 0)
    assert "left out" in plot.description


def test_non_integer_grid_times_over_http(demo: Demo) -> None:
    grid = [45.5, 90.5, 180.5, 365.5, 729.75]
    envelope = demo.run(km(grid))
    assert envelope["status"] == "ok"
    assert_merges_listed(envelope, grid)
    assert_pooled(envelope, demo.rows(list(envelope["sites"])), None)


def test_non_integer_grid_times_equal_survfunc_and_stay_on_the_axis() -> None:
    df = bmt()
    groups = ["ALL", "AML-Low Risk", "AML-High Risk"]
    sites = split_sites(df, [2, 5, 3], seed=1, sort_by="days", categories={"disease": groups})
    grid = [0.0, 45.5, 90.5, 182.6, 365.25, 366.0, 730.5, 1000.0, 1999.9]
    request = {
        "analysis": "kaplan_meier",
        "time": "days",
        "event": "died",
        "group": "disease",
        "grid": grid,
        "min_events": 0,
    }
    result, _, fed = run_request(sites, request)
    assert isinstance(result, KaplanMeierResult) and not result.merged_points
    for label in groups:
        assert result.groups[label].time == grid
        assert_curve(result, label, df[df.disease == label], "days")
        rows = df[df.disease == label]
        survival, _ = km_reference(rows.days, rows.died, [45.0, 45.5, 45.99])
        assert survival[0] == survival[1] == survival[2]  # a step function of whole days
    # what the nodes were asked for: axis points only, survival read at the last point at
    # or before each time, at-risk counts at the first at or after it
    (exchange,) = fed.log
    step = exchange.step
    assert isinstance(step, SurvivalCountsStep)
    assert step.intervals == [0, 45, 90, 182, 365, 366, 730, 1000, 1999]
    assert step.risk_points == [0, 46, 91, 183, 366, 366, 731, 1000, 2000]
    assert step.horizon == 2000


def test_grid_times_must_be_non_negative_and_few() -> None:
    base = {"analysis": "kaplan_meier", "time": "t", "event": "e"}
    with pytest.raises(FedpsyError, match="finite and ≥ 0"):
        parse_request({**base, "grid": [-1.5, 2]})
    with pytest.raises(FedpsyError, match="at most 100"):
        parse_request({**base, "grid": list(range(1, 102))})
