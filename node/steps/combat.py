"""Handlers of the distributed ComBat steps (see :mod:`schemas.steps.combat`).

Every step builds the same complete-case design: the variables to harmonize ``Y``, one
indicator column per batch level and the covariates (numeric as they are, categorical as
one indicator per category). Harmonized values are staged at the node (never returned).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from node.data.source import FrameSource
from node.data.staging import derived_values, stage
from node.data.watch import note_rows
from node.steps.base import READ, USED, Computed, Query
from node.steps.disclosure import (
    Rows,
    binary_cells,
    dominance_ratios,
    max_leverage,
    row_ids,
    support,
    uses,
)
from node.steps.levels import codes_of, is_categorical, levels_of, numeric_values
from node.steps.math.combat_eb import estimate_batch
from schemas.errors import ErrorCode, FedpsyError
from schemas.steps.base import Disclosure, StepResult
from schemas.steps.combat import (
    BatchFit,
    CombatAdjustResult,
    CombatAdjustStep,
    CombatBatchesResult,
    CombatBatchesStep,
    CombatDesignStep,
    CombatFitResult,
    CombatFitStep,
    CombatResidualsResult,
    CombatResidualsStep,
)

logger = logging.getLogger(__name__)

Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class CombatRows:
    """The complete-case rows of a ComBat design at one site."""

    index: pd.Index  # row ids
    read: Rows  # row ids of every row read (their count leaves as n + missing)
    variables: tuple[str, ...]  # the measures and covariates summed over the rows
    y: Array  # rows × variables
    x: Array  # rows × design columns
    batch: npt.NDArray[np.int64]  # level index per row
    columns: list[str]
    levels: list[str]
    missing: int

    @property
    def n(self) -> int:
        return len(self.index)

    def counts(self) -> dict[str, int]:
        """Rows per batch level present here."""
        found = np.bincount(self.batch, minlength=len(self.levels))
        return {lv: int(k) for lv, k in zip(self.levels, found, strict=True) if k > 0}

    def computed(
        self,
        result: StepResult,
        cells: tuple[int, ...],
        sums: Array,
        design: Array | None = None,
    ) -> Computed:
        """``result`` with its disclosure (rows, ``cells``, the dominance of every column
        of ``sums`` within each batch, and for a released ``design`` its parameters,
        support and leverage) and usage (each variable's rows and each batch's)."""
        each = [self.batch == code for code in range(len(self.levels))]
        ratios = tuple(r for mine in each for r in dominance_ratios(sums[mine]))
        revealed = Disclosure(rows=self.n, cells=cells + binary_cells(self.y), dominance=ratios)
        if design is not None:
            revealed = revealed.model_copy(
                update={
                    "parameters": int(np.sum(np.any(design != 0.0, axis=0))),
                    "support": support(design),
                    "leverage": max_leverage(design),
                }
            )
        rows = row_ids(self.index)
        used = ((READ, self.read), (USED, rows), *uses(self.variables, rows, each))
        queries = tuple(Query(v, rows, self.x) for v in self.variables)
        return Computed(result, revealed, used=used, queries=queries)


def _covariates(frame: pd.DataFrame, covariates: list[str]) -> tuple[Array, list[str]]:
    blocks: list[Array] = []
    columns: list[str] = []
    for code in covariates:
        column = frame[code]
        if is_categorical(column):
            cats = [str(c) for c in column.cat.categories]
            raw = column.cat.codes.to_numpy()
            block = (raw[:, None] == np.arange(len(cats))[None, :]).astype(np.float64)
            block[raw < 0] = np.nan
            blocks.append(block)
            columns.extend(f"{code}[{c}]" for c in cats)
        else:
            blocks.append(numeric_values(frame, [code]))
            columns.append(code)
    if not blocks:
        return np.zeros((len(frame), 0)), columns
    return np.hstack(blocks), columns


def combat_rows(
    step: CombatDesignStep | CombatBatchesStep, source: FrameSource, levels: list[str] | None
) -> CombatRows:
    """The design of ``step`` on ``source``'s complete cases; ``levels`` None: the batch
    variable's own (public or local) levels."""
    if step.batch in step.variables or step.batch in step.covariates:
        raise FedpsyError(
            f"ComBat: the batch {step.batch!r} cannot also be a variable or covariate",
            code=ErrorCode.REQUEST_INVALID,
        )
    wanted = list(dict.fromkeys([*step.variables, step.batch, *step.covariates]))
    frame = source.frame(wanted, step.visit, step.cohort)
    y = numeric_values(frame, list(step.variables))
    if levels is None:
        levels = levels_of(frame[step.batch], step.batch, step.levels)
    codes = codes_of(frame[step.batch], levels)
    cov, cov_columns = _covariates(frame, list(step.covariates))
    complete = ~np.isnan(y).any(axis=1) & (codes >= 0) & ~np.isnan(cov).any(axis=1)
    note_rows(int(complete.sum()))
    batch = codes[complete]
    indicators = (batch[:, None] == np.arange(len(levels))[None, :]).astype(np.float64)
    return CombatRows(
        index=frame.index[complete],
        read=row_ids(frame.index),
        variables=(*step.variables, *step.covariates),
        y=y[complete],
        x=np.hstack([indicators, cov[complete]]),
        batch=batch,
        columns=[f"batch[{lv}]" for lv in levels] + cov_columns,
        levels=list(levels),
        missing=int(np.sum(~complete)),
    )


def _coefficients(step: CombatResidualsStep | CombatAdjustStep, rows: CombatRows) -> Array:
    b = np.asarray(step.coefficients, dtype=np.float64)
    if b.shape != (len(rows.columns), len(step.variables)):
        raise FedpsyError(
            f"ComBat: coefficients have shape {b.shape}, expected "
            f"({len(rows.columns)}, {len(step.variables)})",
            code=ErrorCode.REQUEST_INVALID,
        )
    return b


def combat_batches(step: CombatBatchesStep, source: FrameSource) -> Computed:
    """Batch labels present here and their complete-case rows."""
    rows = combat_rows(step, source, None)
    counts = rows.counts()
    result = CombatBatchesResult(counts=counts, missing=rows.missing)
    return rows.computed(result, tuple(counts.values()), np.zeros((rows.n, 0)))


def combat_fit(step: CombatFitStep, source: FrameSource) -> Computed:
    """``XᵀX`` and ``XᵀY`` of the ComBat design."""
    rows = combat_rows(step, source, step.levels)
    x = rows.x
    result = CombatFitResult(
        columns=rows.columns,
        n=rows.n,
        missing=rows.missing,
        xtx=[[float(v) for v in r] for r in x.T @ x],
        xty=[[float(v) for v in r] for r in x.T @ rows.y],
    )
    cells = tuple(rows.counts().values()) + binary_cells(x)
    return rows.computed(result, cells, np.column_stack([x, rows.y]), design=x)


def combat_residuals(step: CombatResidualsStep, source: FrameSource) -> Computed:
    """Residual sums of squares per variable (all rows or one batch's)."""
    rows = combat_rows(step, source, step.levels)
    resid = rows.y - rows.x @ _coefficients(step, rows)
    cells: tuple[int, ...] = ()
    chosen = np.ones(rows.n, dtype=bool)
    if step.only_batch is not None:
        if step.only_batch not in rows.levels:
            raise FedpsyError(
                f"ComBat: batch {step.only_batch!r} is not one of the levels",
                code=ErrorCode.REQUEST_INVALID,
            )
        chosen = rows.batch == rows.levels.index(step.only_batch)
        cells = (int(chosen.sum()),)
    result = CombatResidualsResult(
        n=int(chosen.sum()), ssr=[float(v) for v in (resid[chosen] ** 2).sum(axis=0)]
    )
    return rows.computed(result, cells, np.where(chosen[:, None], resid, 0.0))


def combat_adjust(step: CombatAdjustStep, source: FrameSource) -> Computed:
    """Standardize, estimate each local batch's ``γ*`` and ``δ*``, adjust, stage."""
    rows = combat_rows(step, source, step.levels)
    b = _coefficients(step, rows)
    k = len(rows.levels)
    grand = np.asarray(step.grand_mean, dtype=np.float64)
    var_pooled = np.asarray(step.var_pooled, dtype=np.float64)
    if grand.shape != (len(step.variables),) or var_pooled.shape != grand.shape:
        raise FedpsyError(
            "ComBat: grand_mean and var_pooled need one value per variable",
            code=ErrorCode.REQUEST_INVALID,
        )
    if not np.all(var_pooled > 0.0):
        raise FedpsyError("ComBat: var_pooled must be positive", code=ErrorCode.REQUEST_INVALID)
    sd = np.sqrt(var_pooled)
    stand = grand + rows.x[:, k:] @ b[k:, :]
    s = (rows.y - stand) / sd
    adjusted = np.empty_like(rows.y)
    batches: dict[str, BatchFit] = {}
    for code, label in enumerate(rows.levels):
        mine = rows.batch == code
        if not mine.any():
            continue
        if label == step.ref_batch:
            adjusted[mine] = rows.y[mine]
            nv = len(step.variables)
            batches[label] = BatchFit(
                n=int(mine.sum()), gamma=[0.0] * nv, delta=[1.0] * nv, iterations=0
            )
            continue
        est = estimate_batch(s[mine], eb=step.eb, tolerance=step.tolerance, max_iter=step.max_iter)
        adjusted[mine] = (s[mine] - est.gamma) / np.sqrt(est.delta) * sd + stand[mine]
        batches[label] = BatchFit(
            n=int(mine.sum()),
            gamma=[float(v) for v in est.gamma],
            delta=[float(v) for v in est.delta],
            iterations=est.iterations,
        )
    if step.derive is not None:
        if len(step.derive.variables) != len(step.variables):
            raise FedpsyError(
                "ComBat: one new variable per variable is needed", code=ErrorCode.REQUEST_INVALID
            )
        values = pd.DataFrame(adjusted, index=rows.index, columns=step.derive.codes)
        stage(source, derived_values(step.derive, step.visit, values))
    counts = tuple(f.n for f in batches.values())
    return rows.computed(CombatAdjustResult(batches=batches), counts, s)


__all__ = ["combat_adjust", "combat_batches", "combat_fit", "combat_residuals", "combat_rows"]
