"""Survival curves and the log-rank test (Cox is with the other models)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from coordinator.http.client.asking import Asking
from coordinator.http.client.result import Convert, Result, Tables
from coordinator.http.client.tables import named
from coordinator.stats.wald import critical

CURVE_COLUMNS = ["group", "time", "survival", "std_error", "ci_low", "ci_high", "at_risk", "events"]
MERGED_COLUMNS = ["time", "code", "sites", "group"]


def curve_frame(label: str, curve: Mapping[str, Any]) -> pd.DataFrame:
    """One level's curve from (0, 1) through its reported times, with the 95 % interval
    Ŝ ± z · SE (Greenwood) clipped to [0, 1] (R's ``conf.type = "plain"``)."""
    frame = pd.DataFrame({k: curve[k] for k in CURVE_COLUMNS[1:] if k in curve})
    se = frame["std_error"].astype(float)
    frame = frame.assign(
        group=label,
        std_error=se,
        ci_low=(frame["survival"] - critical() * se).clip(0.0, 1.0),
        ci_high=(frame["survival"] + critical() * se).clip(0.0, 1.0),
    )
    if frame.empty or frame["time"].iloc[0] > 0:
        start = {"group": label, "time": 0.0, "survival": 1.0, "std_error": 0.0}
        start |= {"ci_low": 1.0, "ci_high": 1.0, "at_risk": pd.NA, "events": 0}
        frame = pd.concat([pd.DataFrame([start]), frame], ignore_index=True)
    return frame[CURVE_COLUMNS]


def kaplan_meier_tables(result: Mapping[str, Any], _: Mapping[str, Any]) -> Tables:
    curves = [curve_frame(label, curve) for label, curve in result["groups"].items()]
    frame = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame(columns=CURVE_COLUMNS)
    frame = frame.astype({"time": float, "survival": float, "at_risk": "Int64", "events": "Int64"})
    merged = pd.DataFrame(result.get("merged_points", []), columns=MERGED_COLUMNS)
    return frame, {"merged_points": merged}


def logrank_tables(result: Mapping[str, Any], _: Mapping[str, Any]) -> Tables:
    frame = pd.DataFrame.from_dict(result["groups"], orient="index")
    frame = frame.assign(observed_minus_expected=frame["observed"] - np.asarray(frame["expected"]))
    return named(frame, result["group"]), {}


class Survival(Asking):
    """Kaplan–Meier curves and the log-rank test."""

    def kaplan_meier(
        self,
        time: str,
        event: str,
        grid: Sequence[float],
        group: str | None = None,
        **options: Any,
    ) -> Result:
        """Survival curves as one tidy frame, ready to plot: ``group`` (the level, ``all``
        when ungrouped), ``time``, ``survival``, ``std_error`` (Greenwood), the 95 %
        interval ``ci_low``, ``ci_high``, ``at_risk`` and ``events`` (in the interval up to
        ``time``). Each curve starts at time 0 with survival 1 (``at_risk`` unknown there)
        and then has a row per kept grid time; ``.merged_points`` lists each grid time
        left out, with the rule's code and the sites whose rule required it.

        Sends::

            {"analysis": "kaplan_meier", "time": "time_to_rehospitalization",
             "event": "rehospitalization", "grid": [90, 180, 365], "group": "trs"}
        """
        return self._ask(
            "kaplan_meier",
            kaplan_meier_tables,
            time=time,
            event=event,
            grid=grid,
            group=group,
            **options,
        )

    def logrank(self, time: str, event: str, group: str, **options: Any) -> Result:
        """The k-sample log-rank test: ``table`` indexed by level with ``n``, ``observed``,
        ``expected`` and ``observed_minus_expected``; ``.statistic``, ``.df``, ``.p_value``.

        Sends::

            {"analysis": "logrank", "time": "time_to_rehospitalization",
             "event": "rehospitalization", "group": "trs"}
        """
        return self._ask("logrank", logrank_tables, time=time, event=event, group=group, **options)


TABLES: dict[str, Convert] = {
    "kaplan_meier": kaplan_meier_tables,
    "logrank": logrank_tables,
}
"""Each analysis of this module with its conversion."""
