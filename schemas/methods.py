"""A methods paragraph for a paper, written from a request, its result envelope and the
public policies of the sites that answered (``fedpsy run --methods``, the dashboard's job
page)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from schemas import __version__
from schemas.envelope import Envelope

ASKED = ("formula", "variables", "variable", "group", "row", "column", "time", "event", "family")


def _request_text(request: Mapping[str, Any]) -> str:
    parts = []
    for name in ASKED:
        value = request.get(name)
        if value is None:
            continue
        shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        parts.append(f"{name} {shown}")
    return f" ({'; '.join(parts)})" if parts else ""


def _minimums(policies: Mapping[str, Mapping[str, Any]], sites: list[str]) -> str:
    known = [policies[s] for s in sites if policies.get(s)]
    if not known:
        return ""
    keys = ("min_cell", "min_cohort", "min_model_rows")
    spans = []
    for key in keys:
        values = sorted({int(p[key]) for p in known if key in p})
        if values:
            shown = str(values[0]) if len(values) == 1 else f"{values[0]}–{values[-1]}"
            spans.append(f"{key.replace('_', ' ')} {shown}")
    return f" (site policies: {', '.join(spans)})" if spans else ""


def methods_paragraph(
    request: Mapping[str, Any],
    envelope: Envelope,
    policies: Mapping[str, Mapping[str, Any]] | None = None,
) -> str:
    """The paragraph: analysis and what it asked, sites and their rows, the protections in
    force, the fedpsy version, the dictionary hash and how to verify the result."""
    sites = sorted(envelope.sites)
    rows = ", ".join(f"{s} (n = {envelope.sites[s].n})" for s in sites)
    total = sum(r.n for r in envelope.sites.values())
    text = [
        f"We ran a federated {envelope.analysis} analysis{_request_text(request)} with "
        f"fedpsy {__version__} across {len(sites)} site(s): {rows}; {total} rows in all."
    ]
    if envelope.dropped_sites:
        text.append(f"Sites left out after refusing: {', '.join(sorted(envelope.dropped_sites))}.")
    text.append(
        "Patient rows never left the sites; every answer passed each site's privacy gate "
        f"before release{_minimums(policies or {}, sites)}."
    )
    if envelope.privacy.secure_aggregation:
        text.append(
            "Additive statistics were combined by secure aggregation with pairwise masks "
            "(Bonawitz et al. 2017), so the coordinator saw only sums over sites."
        )
    if envelope.privacy.dp is not None:
        dp = envelope.privacy.dp
        text.append(
            f"Sites added differential privacy noise ({dp.mechanism}; epsilon {dp.epsilon:g}, "
            f"delta {dp.delta:g})."
        )
    receipts = envelope.receipts or {}
    hashes = sorted({r.dictionary_hash for r in receipts.values()})
    if hashes:
        text.append(f"Variables followed the fedpsy data dictionary (hash {', '.join(hashes)}).")
    if receipts and envelope.signature is not None:
        text.append(
            f"The result (job {envelope.request_id}) carries a receipt signed by each site "
            "and the coordinator's signature; check it with `fedpsy verify RESULT.json "
            "--coordinator DIR_OR_URL`."
        )
    return " ".join(text)


__all__ = ["methods_paragraph"]
