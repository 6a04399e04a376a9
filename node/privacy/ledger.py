"""The node's differential privacy ledger: every noisy release and the ε it spent.

Spending is checked and recorded in one write-locked transaction (``node.store.locking``), so
two requests answered at once can never overspend the budget together. Accounting is
basic composition: the ε (and δ) of the releases add up (Dwork & Roth, *The Algorithmic
Foundations of Differential Privacy*, 2014, Thm. 3.16) — conservative, and simple for a
site to check against its ``policy.toml``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import Engine, func, insert, select

from node.store.locking import locked
from node.store.tables import dp_ledger
from schemas.errors import ErrorCode, FedpsyError

SLACK = 1e-9  # relative: ten releases of 0.1 fit a budget of 1.0 despite float rounding


@dataclass(frozen=True)
class Spent:
    epsilon: float
    delta: float
    releases: int


class PrivacyLedger:
    """The ``dp_ledger`` table of one node store."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def spent(self) -> Spent:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(
                    func.coalesce(func.sum(dp_ledger.c.epsilon), 0.0),
                    func.coalesce(func.sum(dp_ledger.c.delta), 0.0),
                    func.count(),
                )
            ).one()
        return Spent(float(row[0]), float(row[1]), int(row[2]))

    def charge(
        self,
        task_id: str,
        *,
        epsilon: float,
        delta: float,
        sigma: float,
        sensitivity: float,
        budget: float,
        mechanism: str = "gaussian",
    ) -> float:
        """Record a release of (ε, δ); returns ε spent so far. Refuses past ``budget``."""
        with locked(self._engine, dp_ledger) as conn:
            used = float(
                conn.execute(select(func.coalesce(func.sum(dp_ledger.c.epsilon), 0.0))).scalar_one()
            )
            if used + epsilon > budget * (1 + SLACK):
                raise FedpsyError(
                    f"this site's differential privacy budget is spent: epsilon {used:.4g} of "
                    f"{budget:.4g} used, and this step needs {epsilon:.4g}; the site can raise "
                    "dp.epsilon_total in policy.toml",
                    code=ErrorCode.DP_BUDGET_EXHAUSTED,
                )
            conn.execute(
                insert(dp_ledger).values(
                    task_id=task_id,
                    at=time.time(),
                    mechanism=mechanism,
                    epsilon=epsilon,
                    delta=delta,
                    sigma=sigma,
                    sensitivity=sensitivity,
                )
            )
        return used + epsilon
