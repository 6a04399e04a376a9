"""The abstract federation every coordinator-side algorithm is written against.

An algorithm sends a step to every site taking part and gets back either each site's
partial result (``gather``: per-site values leave, only where the analysis declares it
and site policy allows) or only their sum (``sum``: additive steps; with secure
aggregation the coordinator never sees a per-site value). The same algorithm code runs
over HTTP, in the sandbox and in tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from schemas.envelope import Privacy
from schemas.receipts import Receipt
from schemas.secagg.wire import DpRelease
from schemas.steps.base import StepBase, StepResult

R = TypeVar("R", bound=StepResult)


class Federation(Protocol):
    """Sites taking part in one job, and the two ways of asking them."""

    @property
    def sites(self) -> list[str]:
        """Site ids taking part, in a stable order."""
        ...

    @property
    def rows(self) -> dict[str, int]:
        """Rows each site used in its latest step (reported by the node in the clear)."""
        ...

    async def gather(self, step: StepBase, result_type: type[R]) -> dict[str, R]:
        """Each site's own result for ``step`` (raises if any site refuses or fails)."""
        ...

    async def sum(self, step: StepBase, result_type: type[R]) -> R:
        """The field-wise sum over sites of an additive step's results."""
        ...


@dataclass
class PrivacyTally:
    """What protected the answers a federation received, for the envelope's ``privacy``.

    ``secure``: sums received under secure aggregation; ``clear``: per-site results
    received in the clear (a gather, or a sum asked in the clear); ``dp``: per site, the
    differential privacy the site applied to its releases in this job.
    """

    secure: int = 0
    clear: int = 0
    dp: dict[str, list[DpRelease]] = field(default_factory=dict)

    def add_dp(self, site: str, release: DpRelease) -> None:
        self.dp.setdefault(site, []).append(release)

    def envelope(self) -> dict[str, Any]:
        """``{"secure_aggregation": bool, "dp": None | {...}}``: secure aggregation is true
        when every result received was a secure sum; ``dp`` gives, per site and as the
        largest over sites, the ε and δ spent in this job (basic composition)."""
        out: dict[str, Any] = {
            "secure_aggregation": self.secure > 0 and self.clear == 0,
            "dp": None,
        }
        if self.dp:
            sites = {
                s: {
                    "epsilon": sum(r.epsilon for r in rs),
                    "delta": sum(r.delta for r in rs),
                    "releases": len(rs),
                }
                for s, rs in sorted(self.dp.items())
            }
            out["dp"] = {
                "mechanism": "gaussian",
                "epsilon": max(v["epsilon"] for v in sites.values()),
                "delta": max(v["delta"] for v in sites.values()),
                "sites": sites,
            }
        return out


def receipts_of(federation: Federation, sites: list[str]) -> dict[str, Receipt]:
    """The latest receipt of each of ``sites`` from a federation that collects them."""
    collected = getattr(federation, "receipts", None)
    if not isinstance(collected, dict):
        return {}
    return {site: collected[site] for site in sites if site in collected}


def privacy_of(federation: Federation) -> Privacy:
    """The envelope's ``privacy`` for a federation that reports it, else nothing protected
    beyond the gate."""
    report = getattr(federation, "privacy", None)
    if callable(report):
        return Privacy.model_validate(report())
    return Privacy()
