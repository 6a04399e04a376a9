"""A Python client for researchers: requests in, pandas DataFrames out.

>>> from coordinator.http.client import Consortium
>>> c = Consortium("http://coordinator:8700", token="fpy_…")
>>> c.summary(["panss_total", "age"])            # DataFrame: one row per variable
>>> c.glm("trs ~ age + sex", family="binomial")  # DataFrame of coefficients
>>> c.run({"analysis": "count"})                 # the raw result envelope

Refused and failed requests raise :class:`AnalysisRefused` / :class:`AnalysisFailed`
carrying the envelope (its ``reason`` names each site and its code).
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pandas as pd


class AnalysisFailed(RuntimeError):
    """The coordinator answered with status ``error``."""

    def __init__(self, envelope: dict[str, Any]) -> None:
        self.envelope = envelope
        reason = envelope.get("reason") or {}
        super().__init__(f"{reason.get('code')}: {reason.get('detail')}")


class AnalysisRefused(AnalysisFailed):
    """A site's privacy policy refused the request."""


class Consortium:
    """A running coordinator, seen by one researcher."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 60.0,
        poll: float = 0.5,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=url.rstrip("/"),
            timeout=timeout,
            headers={"Authorization": f"Bearer {token}"},
            transport=transport,
        )
        self._poll = poll

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Consortium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _get(self, path: str) -> Any:
        response = self._http.get(path)
        response.raise_for_status()
        return response.json()

    def run(self, request: dict[str, Any], *, raise_on_failure: bool = True) -> dict[str, Any]:
        """Submit ``request``, wait for the job, return the result envelope."""
        response = self._http.post("/v1/analyses", json=request)
        if response.status_code >= 400:
            raise AnalysisFailed({"status": "error", "reason": response.json()})
        job_id = response.json()["job_id"]
        while True:
            job = self._get(f"/v1/analyses/{job_id}")
            if job["result"] is not None:
                envelope: dict[str, Any] = job["result"]
                break
            time.sleep(self._poll)
        if raise_on_failure and envelope["status"] == "refused":
            raise AnalysisRefused(envelope)
        if raise_on_failure and envelope["status"] == "error":
            raise AnalysisFailed(envelope)
        return envelope

    def nodes(self) -> pd.DataFrame:
        return pd.DataFrame(self._get("/v1/nodes"))

    def catalog(self) -> pd.DataFrame:
        data = self._get("/v1/catalog")
        rows = []
        for var in data["variables"]:
            row = {k: var[k] for k in ("code", "label", "type", "unit", "level")}
            row.update({site: var["sites"].get(site, "") for site in data["sites"]})
            rows.append(row)
        return pd.DataFrame(rows)

    def count(self, cohort: dict[str, Any] | None = None, **options: Any) -> int:
        result = self.run({"analysis": "count", "cohort": cohort, **options})["result"]
        return int(result["n"])

    def summary(self, variables: list[str], **options: Any) -> pd.DataFrame:
        result = self.run({"analysis": "summary", "variables": variables, **options})["result"]
        return pd.DataFrame.from_dict(result["variables"], orient="index")

    def correlation(self, variables: list[str], **options: Any) -> pd.DataFrame:
        result = self.run({"analysis": "correlation", "variables": variables, **options})["result"]
        return pd.DataFrame(
            result["matrix"], index=result["variables"], columns=result["variables"]
        )

    def crosstab(self, row: str, column: str, **options: Any) -> pd.DataFrame:
        result = self.run({"analysis": "crosstab", "row": row, "column": column, **options})[
            "result"
        ]
        return pd.DataFrame(result["counts"], index=result["rows"], columns=result["columns"])

    def ols(self, formula: str, **options: Any) -> pd.DataFrame:
        return self._coefficients({"analysis": "ols", "formula": formula, **options})

    def glm(self, formula: str, family: str = "gaussian", **options: Any) -> pd.DataFrame:
        return self._coefficients(
            {"analysis": "glm", "formula": formula, "family": family, **options}
        )

    def _coefficients(self, request: dict[str, Any]) -> pd.DataFrame:
        result = self.run(request)["result"]
        return pd.DataFrame(result["coefficients"]).set_index("term")
