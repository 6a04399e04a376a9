"""The abstract federation every coordinator-side algorithm is written against.

An algorithm sends a step to every site taking part and gets back either each site's
partial result (``gather``: per-site values leave, only where the analysis declares it
and site policy allows) or only their sum (``sum``: additive steps; with secure
aggregation the coordinator never sees a per-site value). The same algorithm code runs
over HTTP, in the sandbox and in tests.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

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
