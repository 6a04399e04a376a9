"""Running one analysis request as a job and wrapping its answer in the result envelope.

Envelope (:class:`schemas.envelope.Envelope`): ``{"status": "ok"|"refused"|"error",
"analysis", "result", "sites": {SITE: {"n"}}, "reason": {"code", "detail", "sites"?},
"request_id", "privacy"}``; with ``"on_refusal": "drop_site"`` a refused site is left out,
the analysis re-run on the others and ``"dropped_sites": {SITE: CODE}`` says who was left
out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import JsonValue

from coordinator.analyses.registry import run_analysis
from coordinator.federation.base import Federation, privacy_of, receipts_of
from coordinator.federation.failures import SiteFailure, SitesFailed
from coordinator.jobs.checks import check_request
from coordinator.jobs.compat import check_compatible
from coordinator.jobs.quorum import check_quorum_possible, go_on_without
from schemas.analyses import parse_request
from schemas.cohort import selected_sites
from schemas.envelope import Envelope, FailureReason, Privacy, SiteRows, Status
from schemas.errors import CATALOG, EXIT_REFUSED, ErrorCode, FedpsyError
from schemas.receipts import Receipt

log = logging.getLogger(__name__)
FederationFor = Callable[[list[str]], Federation]


def envelope(
    status: Status,
    analysis: JsonValue,
    request_id: str,
    *,
    result: dict[str, Any] | None = None,
    sites: dict[str, SiteRows] | None = None,
    reason: FailureReason | None = None,
    privacy: Privacy | None = None,
    dropped_sites: dict[str, str] | None = None,
    receipts: dict[str, Receipt] | None = None,
) -> Envelope:
    return Envelope(
        status=status,
        analysis=analysis,
        result=result or {},
        sites=sites or {},
        reason=reason,
        request_id=request_id,
        privacy=privacy if privacy is not None else Privacy(),
        dropped_sites=dropped_sites or None,
        receipts=receipts or None,
    )


def _failed(exc: FedpsyError, analysis: JsonValue, request_id: str) -> Envelope:
    refused = CATALOG[exc.code].exit_code == EXIT_REFUSED
    reason = FailureReason(
        code=exc.code, detail=exc.detail or exc.message, sites=exc.extra.get("sites")
    )
    return envelope("refused" if refused else "error", analysis, request_id, reason=reason)


async def run_request(
    data: Mapping[str, Any],
    variable_hashes: Mapping[str, Mapping[str, str]],
    federation_for: FederationFor,
    request_id: str,
    unavailable: Mapping[str, SiteFailure] | None = None,
) -> Envelope:
    """Validate (the request's mistakes, :mod:`coordinator.jobs.checks`, before anything is
    sent), check compatibility, run, and wrap. Never raises for expected failures.

    ``unavailable``: sites that failed before the job started (the quorum rule of
    :mod:`coordinator.jobs.quorum` decides whether the job goes on without them).
    """
    analysis: JsonValue = data.get("analysis") if isinstance(data, Mapping) else None
    try:
        request = parse_request(data)
        check_request(request, variable_hashes)
        sites = selected_sites(request.cohort, sorted({*variable_hashes, *(unavailable or {})}))
        if not sites:
            raise FedpsyError(
                "no registered site matches the request's site condition",
                code=ErrorCode.REQUEST_INVALID,
            )
        check_quorum_possible(request, sites)
        sites, dropped = go_on_without(request, sites, unavailable or {})
        check_compatible(request.used_variables(), {s: variable_hashes[s] for s in sites})
    except FedpsyError as exc:
        return _failed(exc, analysis, request_id)
    while True:
        try:
            federation = federation_for(sites)
            result, site_n = await run_analysis(request, federation)
            break
        except SitesFailed as exc:
            try:
                sites, left_out = go_on_without(request, sites, exc.failures)
            except FedpsyError as final:
                return _failed(final, analysis, request_id)
            log.info("going on without sites", extra={"job_id": request_id, "sites": left_out})
            dropped.update(left_out)
        except FedpsyError as exc:
            return _failed(exc, analysis, request_id)
    return envelope(
        "ok",
        analysis,
        request_id,
        result=result.model_dump(mode="json"),
        sites={s: SiteRows(n=int(site_n.get(s, 0))) for s in sites},
        privacy=privacy_of(federation),
        dropped_sites=dropped,
        receipts=receipts_of(federation, sites),
    )
