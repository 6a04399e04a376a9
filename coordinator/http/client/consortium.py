"""The researcher's handle on a running coordinator: one method per analysis."""

from __future__ import annotations

from typing import Any

import httpx
import pandas as pd

from coordinator.http.client.descriptive import TABLES as DESCRIPTIVE
from coordinator.http.client.descriptive import Descriptive
from coordinator.http.client.models import TABLES as MODELS
from coordinator.http.client.models import Models
from coordinator.http.client.multivariate import TABLES as MULTIVARIATE
from coordinator.http.client.multivariate import Multivariate
from coordinator.http.client.quality import TABLES as QUALITY
from coordinator.http.client.quality import Quality
from coordinator.http.client.result import Convert, Result, finish
from coordinator.http.client.survival import TABLES as SURVIVAL
from coordinator.http.client.survival import Survival
from coordinator.http.client.tables import scalars
from coordinator.http.client.training import TABLES as TRAINING
from coordinator.http.client.training import Training
from coordinator.http.remote import CoordinatorSession

TABLES: dict[str, Convert] = {
    **DESCRIPTIVE,
    **MODELS,
    **SURVIVAL,
    **MULTIVARIATE,
    **TRAINING,
    **QUALITY,
}
"""Every analysis's conversion to tables, by name."""


class Consortium(Descriptive, Models, Survival, Multivariate, Training, Quality):
    """A running coordinator, seen by one researcher (``token`` from
    ``fedpsy coordinator add-user``)."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 60.0,
        poll: float = 0.5,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._session = CoordinatorSession(
            url, token, timeout=timeout, poll=poll, transport=transport
        )

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> Consortium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, request: dict[str, Any]) -> Result:
        """Send a request written as JSON (any analysis) and convert its answer as the
        analysis's own method does (an analysis without one: its plain values in a row)."""
        envelope = self._session.run(request)
        return finish(envelope, request, TABLES.get(str(request.get("analysis")), scalars))

    def nodes(self) -> pd.DataFrame:
        """The registered sites."""
        return pd.DataFrame(self._session.get("/v1/nodes"))

    def catalog(self) -> pd.DataFrame:
        """Every variable (``code``, ``label``, ``type``, ``unit``, ``level``) with a column
        per site saying whether it defines it as the shipped dictionary does."""
        data = self._session.get("/v1/catalog")
        rows = []
        for var in data["variables"]:
            row = {k: var[k] for k in ("code", "label", "type", "unit", "level")}
            row.update({site: var["sites"].get(site, "") for site in data["sites"]})
            rows.append(row)
        return pd.DataFrame(rows)

    def models(self) -> pd.DataFrame:
        """The trained models, newest first (no weights)."""
        return pd.DataFrame(self._session.get("/v1/models"))
