"""What every client method returns: a :class:`Result`, or an exception naming the code."""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from coordinator.http.remote import CoordinatorError
from schemas.envelope import Envelope
from schemas.errors import ErrorCode, known_code

Tables = tuple[pd.DataFrame, dict[str, pd.DataFrame]]
"""A converter's output: the main table and the companion frames by name."""

Convert = Callable[[Mapping[str, Any], Mapping[str, Any]], Tables]
"""Turns an analysis's ``result`` (and the request that asked for it) into tables."""

OWN = frozenset({"table", "envelope", "frames"})


class AnalysisFailed(CoordinatorError):
    """The job's envelope has status ``error``; ``envelope`` is the whole answer and
    ``code`` / ``detail`` its reason (``extra["sites"]``: each failing site's code)."""

    def __init__(self, envelope: Envelope) -> None:
        self.envelope = envelope
        reason = envelope.reason
        code = known_code(reason.code) if reason is not None else None
        super().__init__(
            reason.detail if reason is not None else f"status {envelope.status}",
            code=code or ErrorCode.INTERNAL,
            extra={"sites": dict(reason.sites or {})} if reason is not None else None,
        )


class AnalysisRefused(AnalysisFailed):
    """A site's privacy policy refused the request (status ``refused``)."""


@dataclass(frozen=True, repr=False)
class Result:
    """One analysis's answer as pandas objects.

    ``table``: the main DataFrame (coefficients, a summary per variable, a tidy survival
    curve, …); ``frames``: companion DataFrames by name, also read as attributes
    (``fit.groups``); ``envelope``: the raw answer. Any other attribute is the field of
    the same name of the analysis's ``result`` JSON (``fit.r_squared``, ``tab.chi2``).
    """

    table: pd.DataFrame
    envelope: Envelope
    frames: Mapping[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def analysis(self) -> str:
        return str(self.envelope.analysis)

    @property
    def result(self) -> dict[str, Any]:
        """The ``result`` JSON of the envelope."""
        return self.envelope.result

    @property
    def n(self) -> int | None:
        """Rows used over all sites."""
        n = self.result.get("n")
        return None if n is None else int(n)

    @property
    def missing(self) -> int | None:
        """Rows dropped for a missing value in a variable the analysis uses."""
        missing = self.result.get("missing")
        return None if missing is None else int(missing)

    @property
    def dropped_sites(self) -> dict[str, str]:
        """Sites left out under ``on_refusal="drop_site"``, each with its code."""
        return dict(self.envelope.dropped_sites or {})

    @property
    def sites(self) -> pd.DataFrame:
        """One row per site asked: ``n`` (rows it used; missing for a site left out) and
        ``dropped`` (the code of a site left out; missing for the others)."""
        used = {s: rows.n for s, rows in self.envelope.sites.items()}
        dropped = self.dropped_sites
        index = pd.Index([*used, *dropped], name="site")
        return pd.DataFrame(
            {
                "n": pd.array([used.get(s) for s in index], dtype="Int64"),
                "dropped": pd.array([dropped.get(s) for s in index], dtype="string"),
            },
            index=index,
        )

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name in OWN:
            raise AttributeError(name)
        if name in self.frames:
            return self.frames[name]
        if name in self.result:
            return self.result[name]
        raise AttributeError(
            f"{self.analysis} result has no {name!r}; its tables: {sorted(self.frames)}, "
            f"its result fields: {sorted(self.result)}"
        )

    def _headline(self) -> str:
        used = ", ".join(f"{s}={r.n}" for s, r in self.envelope.sites.items())
        dropped = f"; dropped {self.dropped_sites}" if self.dropped_sites else ""
        return f"{self.analysis}: n={self.n}, missing={self.missing}; sites {used}{dropped}"

    def __repr__(self) -> str:
        return f"<{self._headline()}>\n{self.table!r}"

    def _repr_html_(self) -> str:
        table: str = self.table._repr_html_()  # type: ignore[operator]
        return f"<p>{html.escape(self._headline())}</p>{table}"


def finish(envelope: Envelope, request: Mapping[str, Any], convert: Convert) -> Result:
    """The :class:`Result` of an answered job; a refused or failed one raises."""
    if envelope.status == "refused":
        raise AnalysisRefused(envelope)
    if envelope.status == "error":
        raise AnalysisFailed(envelope)
    table, frames = convert(envelope.result, request)
    return Result(table, envelope, frames)
