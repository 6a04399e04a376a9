"""Property: no generated attack session recovers the planted target's value.

Hypothesis generates attack sessions — a few requests each, against a fresh node of site
``a`` (the target's) behind a real coordinator: summaries and intercept-only models over
cohorts of age ranges around the target's 41 (with or without ``age != 41``), outcomes
that are infinite for a chosen age (``1e-300*log((age-A)**2)``) or missing with HAM-D,
spike columns ``I(k*exp(-((age-A)*w)**2))``, and histograms of age with edges near 41 in
the cohort ``ketamine == 1``. Every released number is collected, and the test knows, from
the data, which rows each answer used. The target's value must not follow from:

* **sum differences**: two answers whose used rows differ by exactly the target
  (``Σ madrs`` of one minus the other), or an answer over the target alone;
* **the spike coefficient**: ``b0 + b1·x_target`` of a model whose spike column is
  non-zero for the target only;
* **histogram differences**: cumulative counts at two edges (of one or two answers on
  the same cohort) between which the target is the only person — the count is then the
  target's membership of the cohort, i.e. their ketamine use.

Each example gets its own node (a copy of one ingested template, so its differencing
memory starts empty); ``max_examples`` is small and shrinking is off (a failing example
is reported as generated).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from coordinator.service import Coordinator
from fedpsy.serving import BackgroundServer
from node.auth.trust import add_trusted_key
from node.http.api import create_app
from node.service import NodeService
from node.site import NodeSite
from tests.attacks.support import TARGET, Envelope, SiteData, ok

pytestmark = pytest.mark.xdist_group("attacks")

Mask = npt.NDArray[np.bool_]
MARGIN = 2.0  # MADRS points


@dataclass(frozen=True)
class Move:
    """One request and what the test needs to know to read its answer."""

    kind: str  # "sum", "spike" or "hist"
    request: dict[str, Any]
    low: float | None = None  # cohort: low <= age <= high (None: no bound)
    high: float | None = None
    exclude: bool = False  # cohort also has age != 41
    drop_at: float | None = None  # outcome infinite where age == drop_at
    drop_missing: bool = False  # outcome missing where HAM-D is
    spike: tuple[float, float, float] | None = None  # (k, A, w)


# -- strategies ----------------------------------------------------------------------------

BOUNDS_LOW = [None, 12.0, 30.0, 39.5, 40.5, 41.0, 41.5]
BOUNDS_HIGH = [None, 40.5, 41.0, 41.5, 45.0, 60.0, 110.0]


@st.composite
def cohorts(draw: st.DrawFn) -> tuple[float | None, float | None, bool]:
    low = draw(st.sampled_from(BOUNDS_LOW))
    high = draw(st.sampled_from(BOUNDS_HIGH))
    if low is not None and high is not None and high <= low:
        high = None
    return low, high, draw(st.booleans())


def cohort_of(
    low: float | None, high: float | None, exclude: bool, *extra: dict[str, Any]
) -> dict[str, Any] | None:
    conditions: list[dict[str, Any]] = list(extra)
    if low is not None:
        conditions.append({"var": "age", "op": ">=", "value": low})
    if high is not None:
        conditions.append({"var": "age", "op": "<=", "value": high})
    if exclude:
        conditions.append({"var": "age", "op": "!=", "value": 41})
    return {"all": conditions} if conditions else None


def with_cohort(request: dict[str, Any], cohort: dict[str, Any] | None) -> dict[str, Any]:
    return {**request, "cohort": cohort} if cohort is not None else request


@st.composite
def moves(draw: st.DrawFn) -> Move:
    low, high, exclude = draw(cohorts())
    cohort = cohort_of(low, high, exclude)
    kind = draw(st.sampled_from(["summary", "drop", "missing", "spike", "hist"]))
    if kind == "summary":
        request = {"analysis": "summary", "variables": ["madrs_total"]}
        return Move("sum", with_cohort(request, cohort), low, high, exclude)
    if kind == "drop":
        at = draw(st.sampled_from([41.0, 41.0, 40.5, 41.05, 44.0]))
        formula = f"I(madrs_total - 1e-300*log((age-{at:g})**2)) ~ 1"
        request = {"analysis": "ols", "formula": formula}
        return Move("sum", with_cohort(request, cohort), low, high, exclude, drop_at=at)
    if kind == "missing":
        request = {"analysis": "ols", "formula": "I(madrs_total + 0*hamd17_total) ~ 1"}
        return Move("sum", with_cohort(request, cohort), low, high, exclude, drop_missing=True)
    if kind == "spike":
        k = draw(st.sampled_from([1.5, 2.0, 3.0]))
        at = draw(st.sampled_from([41.0, 41.0, 41.2, 40.9, 45.0]))
        w = draw(st.sampled_from([100.0, 30.0, 10.0, 1.0, 0.1]))
        formula = f"madrs_total ~ I({k:g}*exp(-((age-{at:g})*{w:g})**2))"
        request = {"analysis": "ols", "formula": formula}
        return Move("spike", with_cohort(request, cohort), low, high, exclude, spike=(k, at, w))
    inner = draw(
        st.lists(
            st.sampled_from([30.0, 40.0, 40.5, 40.9, 41.0, 41.1, 41.5, 42.0, 45.0, 50.0]),
            min_size=1,
            max_size=3,
            unique=True,
        )
    )
    edges = [12.0, *sorted(inner), 110.0]
    ketamine = {"var": "ketamine", "op": "==", "value": 1}
    histogram: dict[str, Any] = {
        "analysis": "histogram",
        "variable": "age",
        "edges": edges,
        "cohort": cohort_of(low, high, exclude, ketamine),
    }
    return Move("hist", histogram, low, high, exclude)


sessions = st.lists(moves(), min_size=2, max_size=4)


# -- the ground truth the estimators use ---------------------------------------------------


def in_cohort(frame: pd.DataFrame, move: Move) -> Mask:
    age = frame["age"].to_numpy(dtype=np.float64)
    mask = np.ones(len(frame), dtype=bool)
    if move.low is not None:
        mask &= age >= move.low
    if move.high is not None:
        mask &= age <= move.high
    if move.exclude:
        mask &= age != 41
    if move.kind == "hist":
        mask &= frame["ketamine"].to_numpy() == 1
    return mask


def used_rows(frame: pd.DataFrame, move: Move) -> Mask:
    """The rows whose values the answer sums (the step's complete, finite rows)."""
    mask = in_cohort(frame, move)
    age = frame["age"].to_numpy(dtype=np.float64)
    if move.drop_at is not None:
        with np.errstate(all="ignore"):
            value = frame["madrs_total"].to_numpy() - 1e-300 * np.log((age - move.drop_at) ** 2)
        mask &= np.isfinite(value)
    if move.drop_missing:
        mask &= frame["hamd17_total"].notna().to_numpy()
    return mask


def spike_values(frame: pd.DataFrame, spike: tuple[float, float, float]) -> npt.NDArray[Any]:
    k, at, w = spike
    age = frame["age"].to_numpy(dtype=np.float64)
    with np.errstate(all="ignore"):
        return np.asarray(k * np.exp(-(((age - at) * w) ** 2)), dtype=np.float64)


def released_sum(envelope: Envelope) -> tuple[int, float] | None:
    """``(n, Σ madrs)`` of an answered summary or intercept-only model."""
    if not ok(envelope):
        return None
    result = envelope["result"]
    if "variables" in result:
        s = result["variables"]["madrs_total"]
        return (int(s["n"]), float(s["n"]) * float(s["mean"])) if s["mean"] is not None else None
    (row,) = result["coefficients"]
    return int(result["n"]), int(result["n"]) * float(row["estimate"])


def cumulative(envelope: Envelope) -> dict[float, int]:
    """Persons below each edge of an answered histogram."""
    r = envelope["result"]
    out = {float(r["edges"][0]): int(r["below"])}
    running = int(r["below"])
    for edge, count in zip(r["edges"][1:], r["counts"], strict=True):
        running += int(count)
        out[float(edge)] = running
    return out


def recoveries(frame: pd.DataFrame, played: list[tuple[Move, Envelope]]) -> list[str]:
    """Every way the session's answers give the target's value (empty: none)."""
    target = (frame["person_id"] == TARGET.person_id).to_numpy()
    found: list[str] = []
    sums: list[tuple[Mask, float, str]] = []
    for move, envelope in played:
        if move.kind == "sum" and (released := released_sum(envelope)) is not None:
            rows = used_rows(frame, move)
            assert released[0] == int(rows.sum()), (move.request, released, int(rows.sum()))
            sums.append((rows, released[1], move.request.get("formula", "summary")))
        if move.kind == "spike" and ok(envelope) and move.spike is not None:
            rows = used_rows(frame, move)
            x = spike_values(frame, move.spike)
            others = rows & ~target
            if rows[target].all() and x[target][0] > 0 and not np.any(x[others]):
                terms = {c["term"]: c["estimate"] for c in envelope["result"]["coefficients"]}
                slope = [v for t, v in terms.items() if t != "Intercept"]
                if len(slope) == 1:
                    estimate = terms["Intercept"] + slope[0] * float(x[target][0])
                    if abs(estimate - TARGET.madrs_total) <= MARGIN:
                        found.append(f"spike {move.request['formula']}: {estimate}")
    for rows, total, name in sums:
        if rows.sum() == 1 and rows[target].all() and abs(total - TARGET.madrs_total) <= MARGIN:
            found.append(f"one-person answer {name}: {total}")
    for i, (rows1, total1, name1) in enumerate(sums):
        for rows2, total2, name2 in sums[i + 1 :]:
            big, small, sign = (
                (rows1, rows2, 1.0) if rows1.sum() > rows2.sum() else (rows2, rows1, -1.0)
            )
            diff = big & ~small
            if (small & ~big).any() or diff.sum() != 1 or not diff[target].all():
                continue
            estimate = sign * (total1 - total2)
            if abs(estimate - TARGET.madrs_total) <= MARGIN:
                found.append(f"difference {name1} − {name2}: {estimate}")
    found.extend(histogram_recoveries(frame, played, target))
    return found


def histogram_recoveries(
    frame: pd.DataFrame, played: list[tuple[Move, Envelope]], target: Mask
) -> list[str]:
    """Cumulative counts at two edges enclosing the target alone, on the same cohort."""
    age = frame["age"].to_numpy(dtype=np.float64)
    found: list[str] = []
    by_cohort: dict[str, dict[float, int]] = {}
    for move, envelope in played:
        if move.kind == "hist" and ok(envelope):
            key = repr(move.request.get("cohort"))
            by_cohort.setdefault(key, {}).update(cumulative(envelope))
    for key, points in by_cohort.items():
        edges = sorted(points)
        for i, lo in enumerate(edges):
            for hi in edges[i + 1 :]:
                between = (age >= lo) & (age < hi)
                alone = between.sum() == 1 and between[target].all()
                if alone and points[hi] - points[lo] == TARGET.ketamine:
                    found.append(f"histogram cohort {key}: [{lo}, {hi}) holds the target")
    return found


# -- one node per example ------------------------------------------------------------------


@dataclass
class Template:
    root: Path
    node_dir: Path
    coordinator: Coordinator
    frame: pd.DataFrame = field(repr=False)
    count: int = 0

    @contextmanager
    def fresh(self) -> Iterator[None]:
        """A copy of the ingested node (empty memory), served and registered as ``a``."""
        self.count += 1
        copy = self.root / f"node-{self.count}"
        shutil.copytree(self.node_dir, copy)
        with ExitStack() as stack:
            node = stack.enter_context(NodeSite.open(copy))
            add_trusted_key(node.dir.root, self.coordinator.dir.public_key)
            token = node.dir.admin_token.read_text().strip()
            server = stack.enter_context(BackgroundServer(create_app(NodeService(node), token)))
            self.coordinator.add_node(TARGET.site, server.url)
            yield
        shutil.rmtree(copy, ignore_errors=True)


@pytest.fixture(scope="module")
def template(
    tmp_path_factory: pytest.TempPathFactory,
    site_data: dict[str, SiteData],
    templates: dict[str, Path],
) -> Iterator[Template]:
    root = tmp_path_factory.mktemp("properties")
    with Coordinator.create(root / "coordinator") as coord:
        frame = site_data[TARGET.site].pooled()
        yield Template(root, templates[TARGET.site], coord, frame)


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(session=sessions)
def test_no_session_recovers_the_target(template: Template, session: list[Move]) -> None:
    """Generated attack sessions (classes 1, 2 and 6 at random parameters) never give the
    target's MADRS or ketamine use through sum differences, a spike coefficient or a
    histogram difference. Stopped by: the rules of the whole gate together."""
    with template.fresh():
        played = [(move, asyncio.run(template.coordinator.run(move.request))) for move in session]
    found = recoveries(template.frame, played)
    assert found == [], "\n".join(found)
