"""The request a method sends: its fields, checked against the analysis's request model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from coordinator.http.client.result import Convert, Result, finish
from coordinator.http.remote import CoordinatorSession
from schemas.analyses import ANALYSIS_MODELS

REQUEST_FIELDS: dict[str, frozenset[str]] = {
    request.model_fields["analysis"].default: frozenset(request.model_fields) - {"analysis"}
    for request, _ in ANALYSIS_MODELS
}
"""Each analysis's request fields (``cohort``, ``visit``, … and its own)."""

PASSED_THROUGH = frozenset({"project"})
"""Request fields the client passes on whether or not this version's models know them."""


def request_for(analysis: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """The request JSON of ``analysis`` with the ``fields`` given (None: left out, the
    coordinator's default); a field the analysis does not have is a ``TypeError``."""
    known = REQUEST_FIELDS[analysis] | PASSED_THROUGH
    unknown = sorted(set(fields) - known)
    if unknown:
        raise TypeError(
            f"{analysis}: unknown request field(s) {', '.join(unknown)}; "
            f"its fields are {', '.join(sorted(known))}"
        )
    return {"analysis": analysis, **{k: v for k, v in fields.items() if v is not None}}


class Asking:
    """What every analysis method needs: a session with the coordinator."""

    _session: CoordinatorSession

    def _ask(self, analysis: str, convert: Convert, **fields: Any) -> Result:
        request = request_for(analysis, fields)
        return finish(self._session.run(request), request, convert)
