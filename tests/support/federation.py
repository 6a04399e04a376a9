"""An in-process :class:`~coordinator.federation.base.Federation` over frame sources.

Each step request and each result goes through JSON (``model_dump_json`` /
``model_validate_json``) as it would over the wire; nodes run their real handlers
(``node.steps.registry.run_step``). ``min_rows`` / ``min_cell`` optionally stand in for a
node's privacy gate: a result whose disclosure has fewer rows, or a non-zero cell below the
minimum, is refused (``cohort_too_small`` / ``cell_too_small``). Failures are raised as the
HTTP federation raises them (:class:`~coordinator.federation.failures.SitesFailed`, naming
each site).
Every exchange is recorded in :attr:`InProcessFederation.log` for tests to inspect.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeVar

import numpy as np
import pandas as pd

from coordinator.analyses.registry import run_analysis
from coordinator.federation.failures import SiteFailure, SitesFailed
from node.data.frame_memory import DataFrameSource
from node.data.source import FrameSource
from node.steps.registry import run_step
from schemas.analyses import AnalysisResult, parse_request
from schemas.cohort import Cohort, selected_sites
from schemas.errors import FedpsyError, Refused
from schemas.steps.additive import add_results
from schemas.steps.base import Disclosure, StepBase, StepResult
from schemas.steps.registry import parse_step, step_spec

R = TypeVar("R", bound=StepResult)


@dataclass
class Exchange:
    """One step sent to the sites and what came back."""

    mode: Literal["gather", "sum"]
    step: StepBase
    results: dict[str, StepResult] = field(default_factory=dict)
    disclosures: dict[str, Disclosure] = field(default_factory=dict)
    total: StepResult | None = None


class InProcessFederation:
    """Sites as in-process frame sources; requests and results cross JSON."""

    def __init__(
        self,
        sources: Mapping[str, FrameSource],
        *,
        cohort: Cohort | None = None,
        min_rows: int | None = None,
        min_cell: int | None = None,
    ) -> None:
        chosen = selected_sites(cohort, list(sources))
        self._sources = {s: sources[s] for s in chosen}
        self._rows: dict[str, int] = {}
        self.min_rows = min_rows
        self.min_cell = min_cell
        self.log: list[Exchange] = []

    @property
    def sites(self) -> list[str]:
        return list(self._sources)

    @property
    def rows(self) -> dict[str, int]:
        return dict(self._rows)

    async def gather(self, step: StepBase, result_type: type[R]) -> dict[str, R]:
        exchange = Exchange(mode="gather", step=step)
        self.log.append(exchange)
        return self._ask(step, result_type, exchange)

    async def sum(self, step: StepBase, result_type: type[R]) -> R:
        if not step_spec(step.step).additive:
            raise FedpsyError(f"step {step.step!r} is not additive", code="request_invalid")
        exchange = Exchange(mode="sum", step=step)
        self.log.append(exchange)
        parts = self._ask(step, result_type, exchange)
        total = add_results(list(parts.values()))
        exchange.total = total
        return total

    def _ask(self, step: StepBase, result_type: type[R], exchange: Exchange) -> dict[str, R]:
        wire = step.model_dump_json()
        out: dict[str, R] = {}
        failures: dict[str, SiteFailure] = {}
        for site, source in self._sources.items():
            received = parse_step(json.loads(wire))
            try:
                computed = run_step(received, source)
                self._gate(computed.disclosure)
            except FedpsyError as exc:
                failures[site] = SiteFailure(exc.code, exc.detail)
                continue
            result = result_type.model_validate_json(computed.result.model_dump_json())
            out[site] = result
            exchange.results[site] = result
            exchange.disclosures[site] = computed.disclosure
        if failures:
            raise SitesFailed(failures)
        self._rows = {s: exchange.disclosures[s].rows for s in out}
        return out

    def _gate(self, disclosure: Disclosure) -> None:
        """A stand-in for the node's threshold rules (zero cells may leave)."""
        if self.min_rows is not None and disclosure.rows < self.min_rows:
            raise Refused("the cohort is below the minimum", code="cohort_too_small")
        if self.min_cell is not None and any(0 < c < self.min_cell for c in disclosure.cells):
            raise Refused("a cell is below the minimum", code="cell_too_small")


def split_sites(
    df: pd.DataFrame,
    weights: Sequence[float],
    seed: int,
    *,
    sort_by: str | None = None,
    categories: Mapping[str, Sequence[str]] | None = None,
    names: Sequence[str] | None = None,
) -> dict[str, DataFrameSource]:
    """Split a pooled frame into unequal sites with different case mix.

    Rows are shuffled with ``seed``; with ``sort_by`` they are then ordered by that column
    (with a little shuffling left) so that sites differ systematically. Site ``i`` gets a
    contiguous share ``weights[i] / sum(weights)``. A ``person_id`` column is added when
    absent; ``categories`` names the categorical columns.
    """
    rng = np.random.default_rng(seed)
    data = df.reset_index(drop=True).copy()
    if "person_id" not in data.columns:
        data.insert(0, "person_id", [f"p{i:06d}" for i in range(len(data))])
    order = rng.permutation(len(data))
    data = data.iloc[order].reset_index(drop=True)
    if sort_by is not None:
        key = data[sort_by].rank(method="first").to_numpy() + rng.normal(
            0, len(data) / 10, len(data)
        )
        data = data.iloc[np.argsort(key, kind="stable")].reset_index(drop=True)
    w = np.asarray(weights, dtype=np.float64)
    bounds = np.round(np.cumsum(w) / w.sum() * len(data)).astype(int)
    starts = np.concatenate([[0], bounds[:-1]])
    labels = list(names) if names is not None else [f"site{i + 1}" for i in range(len(w))]
    cats = dict(categories or {})
    return {
        label: DataFrameSource(label, data.iloc[a:b].reset_index(drop=True), cats)
        for label, a, b in zip(labels, starts, bounds, strict=True)
    }


def pooled(
    sources: Mapping[str, DataFrameSource],
    variables: Sequence[str],
    visit: str = "baseline",
    cohort: Cohort | None = None,
) -> pd.DataFrame:
    """The rows of every site stacked (test reference only), with a ``site`` column."""
    frames = [
        src.frame(
            [*variables, "site"] if "site" not in variables else list(variables), visit, cohort
        ).astype({"site": object})
        for src in sources.values()
    ]
    return pd.concat(frames, ignore_index=True)


def run_request(
    sources: Mapping[str, FrameSource], data: Mapping[str, object], **gate: int
) -> tuple[AnalysisResult, dict[str, int], InProcessFederation]:
    """Parse ``data``, run it over an in-process federation of ``sources`` (sites chosen by
    the request's cohort; ``gate`` passes ``min_rows`` / ``min_cell``)."""
    request = parse_request(data)
    federation = InProcessFederation(sources, cohort=request.cohort, **gate)
    result, rows = asyncio.run(run_analysis(request, federation))
    return result, rows, federation
