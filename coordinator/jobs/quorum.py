"""A job's quorum rule: which failed sites a job may go on without.

By default every site taking part must answer (``min_sites`` unset): one unreachable,
timed-out or failing site fails the job, naming the site and its code. With
``"min_sites": m`` in the request, sites that fail with an error (unreachable, timeout,
internal, a changed key) are left out and the analysis re-run on the others as long as at
least ``m`` remain; otherwise the job fails with ``quorum_not_met``. Refusals follow
``on_refusal`` (``drop_site`` leaves refusing sites out, also only down to ``m``; ``fail``
refuses the whole result). Whoever is left out is named in the envelope's
``dropped_sites`` with its code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from coordinator.federation.failures import SiteFailure, SitesFailed
from schemas.analyses.base import AnalysisBase
from schemas.errors import ErrorCode, FedpsyError


def quorum_error(
    failures: Mapping[str, SiteFailure], sites: Sequence[str], min_sites: int
) -> FedpsyError:
    """``quorum_not_met``, saying how many sites can answer and why the others cannot."""
    able = len([s for s in sites if s not in failures])
    why = "; ".join(
        f"site {s}: {f.code}" + (f" ({f.detail})" if f.detail else "")
        for s, f in sorted(failures.items())
    )
    return FedpsyError(
        f"{able} of {len(sites)} sites can answer but the request needs "
        f"min_sites={min_sites}" + (f" — {why}" if why else ""),
        code=ErrorCode.QUORUM_NOT_MET,
        extra={"sites": {s: f.code for s, f in sorted(failures.items())}},
    )


def check_quorum_possible(request: AnalysisBase, sites: Sequence[str]) -> None:
    """Refuse at once a ``min_sites`` larger than the sites selected."""
    if request.min_sites is not None and request.min_sites > len(sites):
        raise FedpsyError(
            f"the request needs min_sites={request.min_sites} but only "
            f"{len(sites)} sites take part ({', '.join(sites)})",
            code=ErrorCode.QUORUM_NOT_MET,
        )


def go_on_without(
    request: AnalysisBase, sites: Sequence[str], failures: Mapping[str, SiteFailure]
) -> tuple[list[str], dict[str, str]]:
    """The sites that go on and ``{left-out site: code}``; raises when the rule forbids."""
    failed = {s: f for s, f in failures.items() if s in sites}
    if not failed:
        return list(sites), {}
    refused = [s for s, f in failed.items() if f.refused]
    errored = [s for s, f in failed.items() if not f.refused]
    remaining = [s for s in sites if s not in failed]
    need = max(1, request.min_sites or 1)
    if refused and request.on_refusal != "drop_site":
        raise SitesFailed(dict(failed))
    if errored and request.min_sites is None:
        raise SitesFailed(dict(failed))
    if len(remaining) < need:
        if request.min_sites is not None:
            raise quorum_error(failed, sites, request.min_sites)
        raise SitesFailed(dict(failed))
    return remaining, {s: f.code for s, f in sorted(failed.items())}
