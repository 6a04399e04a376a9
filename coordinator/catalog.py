"""The variable catalog: each variable, its definition, where it is available and how
many persons have it at each site (rounded, and suppressed below the sites' minimum)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from coordinator.federation.failures import collect
from coordinator.federation.http import Endpoint, HttpFederation
from coordinator.store.registry import NodeRecord
from schemas.dictionary import load_dictionary
from schemas.steps.availability import AvailabilityResult, AvailabilityStep
from schemas.wire import NodeInfo

ROUND_TO = 10
Counts = dict[str, dict[str, int | None]]


async def site_counts(
    key: Ed25519PrivateKey,
    nodes: Sequence[NodeRecord],
    client: httpx.AsyncClient,
    visit: str = "baseline",
) -> Counts:
    """Per site, persons with a value of each of its variables at ``visit``, as the node
    released them (multiples of 10, ``None`` below the largest minimum cell size)."""
    nodes = [n for n in nodes if n.mode == "push"]  # pull nodes are reached only by jobs

    async def min_cell(node: NodeRecord) -> int:
        response = await client.get(node.url + "/v1/info", timeout=10)
        return NodeInfo.model_validate_json(response.content).policy.min_cell

    minima, _ = await collect({n.site: min_cell(n) for n in nodes})
    minimum = max([ROUND_TO, *minima.values()])

    async def counts(node: NodeRecord) -> dict[str, int | None]:
        federation = HttpFederation(
            [Endpoint(node.site, node.url)],
            key,
            f"catalog-{uuid.uuid4().hex[:12]}",
            "catalog",
            client,
            deadline=time.monotonic() + 60,
        )
        step = AvailabilityStep(
            variables=sorted(node.variable_hashes),
            visit=visit,
            round_to=ROUND_TO,
            suppress_below=minimum,
        )
        result = (await federation.gather(step, AvailabilityResult))[node.site]
        return {"_persons": result.persons, **result.counts}

    # a site that refuses, is down or answers nonsense shows no counts
    out, _ = await collect({n.site: counts(n) for n in nodes})
    return out


def catalog(
    nodes: Sequence[NodeRecord],
    counts: Counts | None = None,
    allowed: frozenset[str] | None = None,
) -> dict[str, Any]:
    """``{"sites", "persons", "variables": [{code, label, type, unit, level, derived,
    sites, counts}]}``.

    ``sites`` maps each site holding the variable to its status: ``same`` (defined as in
    the shipped dictionary), ``differs`` (same code, other definition: jobs using it across
    sites are refused) or ``site-only`` (an extension variable of that site). ``counts``
    maps each site to the rounded number of persons with a value (``None``: suppressed or
    not known); ``persons`` gives each site's rounded number of persons. ``allowed``: the
    codes to show (None: every code).
    """
    counts = counts or {}
    shipped = load_dictionary()
    reference = shipped.variable_hashes()
    codes = list(reference)
    for node in nodes:
        codes += [c for c in node.variable_hashes if c not in codes]
    out = []
    for code in codes if allowed is None else [c for c in codes if c in allowed]:
        var = shipped.variables.get(code)
        sites: dict[str, str] = {}
        for node in nodes:
            h = node.variable_hashes.get(code)
            if h is not None:
                sites[node.site] = (
                    "same"
                    if h == reference.get(code)
                    else "differs"
                    if code in reference
                    else "site-only"
                )
        out.append(
            {
                "code": code,
                "label": var.label if var else None,
                "type": var.type if var else None,
                "unit": var.unit if var else None,
                "level": var.level if var else None,
                "derived": var.source == "derived" if var else None,
                "sites": sites,
                "counts": {s: counts.get(s, {}).get(code) for s in sites},
            }
        )
    persons = {site: c.get("_persons") for site, c in counts.items()}
    return {"sites": [n.site for n in nodes], "persons": persons, "variables": out}
