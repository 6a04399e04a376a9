"""The data-quality report as DataFrames."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from coordinator.http.client.asking import Asking
from coordinator.http.client.result import Convert, Result, Tables

CELL_COLUMNS = ["n", "completeness", "mean", "sd", "smd", "implausible", "suppressed"]


def quality_tables(result: Mapping[str, Any], _: Mapping[str, Any]) -> Tables:
    rows = [
        {"variable": code, "visit": visit, "site": site, **cell}
        for code, visits in result["report"].items()
        for visit, cells in visits.items()
        for site, cell in cells.items()
    ]
    index = ["variable", "visit", "site"]
    table = pd.DataFrame(rows, columns=[*index, *CELL_COLUMNS, "shares"]).set_index(index)
    table = table.astype({"n": "Int64", "implausible": "Int64"})
    table = table.astype({c: float for c in ("completeness", "mean", "sd", "smd")})
    flags = pd.DataFrame(
        result["flags"],
        columns=["site", "variable", "visit", "rule", "value", "threshold", "suggestion"],
    )
    temporal = pd.DataFrame.from_dict(result["temporal"], orient="index").astype("Int64")
    temporal.index.name = "site"
    persons = pd.DataFrame(result["persons"]).astype("Int64")
    persons.index.name = "site"
    return table, {"flags": flags, "temporal": temporal, "persons": persons}


class Quality(Asking):
    """The consortium's data-quality report."""

    def data_quality(
        self,
        variables: Sequence[str] | None = None,
        visits: Sequence[str] | None = None,
        **options: Any,
    ) -> Result:
        """Completeness, moments, SMD against the other sites, shares and implausible
        values per variable × visit × site: ``table`` indexed by (``variable``, ``visit``,
        ``site``); ``.flags`` the findings with their suggested requests, ``.temporal``
        the temporal checks per site, ``.persons`` each site's persons per visit.

        Sends::

            {"analysis": "data_quality", "variables": ["age", "dacc_glx"],
             "visits": ["baseline", "week26"], "smd_threshold": 0.5}
        """
        return self._ask(
            "data_quality",
            quality_tables,
            variables=list(variables) if variables is not None else None,
            visits=list(visits) if visits is not None else None,
            **options,
        )


TABLES: dict[str, Convert] = {"data_quality": quality_tables}
"""Each analysis of this module with its conversion."""
