"""How sites fail a job: refusals (a privacy policy said no) and errors, named per site."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from schemas.errors import CATALOG, EXIT_REFUSED, ErrorCode, FedpsyError, known_code

T = TypeVar("T")


@dataclass
class SiteFailure(Exception):
    """One site's failure: its code (as the site gave it) and a public detail."""

    code: str
    detail: str = ""

    @property
    def refused(self) -> bool:
        code = known_code(self.code)
        return code is not None and CATALOG[code].exit_code == EXIT_REFUSED


class SitesFailed(FedpsyError):
    """One or more sites refused or failed; ``failures`` names each with its code.
    ``answered`` holds the results of the sites that did answer a gathered step, for an
    analysis that can go on without some sites at that step."""

    def __init__(
        self, failures: dict[str, SiteFailure], answered: Mapping[str, object] | None = None
    ) -> None:
        self.failures = failures
        self.answered = dict(answered or {})
        refused = all(f.refused for f in failures.values())
        detail = "; ".join(
            f"site {s}: {f.code}" + (f" ({f.detail})" if f.detail else "")
            for s, f in sorted(failures.items())
        )
        code = ErrorCode.REFUSED if refused else self._error_code(failures)
        super().__init__(
            detail, code=code, extra={"sites": {s: f.code for s, f in sorted(failures.items())}}
        )

    @staticmethod
    def _error_code(failures: dict[str, SiteFailure]) -> ErrorCode:
        codes = {f.code for f in failures.values() if not f.refused}
        known = known_code(codes.pop()) if len(codes) == 1 else None
        return known or ErrorCode.INTERNAL

    @property
    def refusing_sites(self) -> list[str]:
        return sorted(s for s, f in self.failures.items() if f.refused)


async def collect(calls: Mapping[str, Awaitable[T]]) -> tuple[dict[str, T], dict[str, SiteFailure]]:
    """Run per-site calls concurrently; split answers from failures."""
    outcomes = await asyncio.gather(*calls.values(), return_exceptions=True)
    done: dict[str, T] = {}
    failed: dict[str, SiteFailure] = {}
    for site, outcome in zip(calls, outcomes, strict=True):
        if isinstance(outcome, SiteFailure):
            failed[site] = outcome
        elif isinstance(outcome, BaseException):
            failed[site] = SiteFailure(ErrorCode.INTERNAL, repr(outcome))
        else:
            done[site] = outcome
    return done, failed
