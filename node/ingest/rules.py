"""Vectorized cell rules: each turns a column of strings into typed values plus the cells
that break the rule, so a whole chunk is validated without a Python loop per cell."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from schemas.dictionary import Variable

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
LABEL_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")


@dataclass(frozen=True)
class Checked:
    """Parsed values (NaN/None where missing) and a mask of cells breaking ``rule``."""

    values: pd.Series
    bad: np.ndarray
    rule: str


Rule = Callable[[pd.Series], Checked]


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def number_rule(
    integer: bool = False, lo: float | None = None, hi: float | None = None, required: bool = False
) -> Rule:
    """Numbers (integers if ``integer``) within [lo, hi]; empty = missing unless required."""

    def check(col: pd.Series) -> Checked:
        empty = (col == "").to_numpy()
        nums = pd.to_numeric(col.where(~empty), errors="coerce").astype("float64")
        arr = nums.to_numpy()
        notnum = ~empty & np.isnan(arr)
        if notnum.any():
            return Checked(nums, notnum, "type integer" if integer else "type numeric")
        finite = ~np.isnan(arr)  # present (infinities are refused next)
        infinite = np.isinf(arr)
        if infinite.any():
            return Checked(nums, infinite, "finite number")
        if integer:
            frac = finite & (np.floor(arr) != arr)
            if frac.any():
                return Checked(nums, frac, "type integer")
        if lo is not None and (finite & (arr < lo)).any():
            return Checked(nums, finite & (arr < lo), f"min {_fmt(lo)}")
        if hi is not None and (finite & (arr > hi)).any():
            return Checked(nums, finite & (arr > hi), f"max {_fmt(hi)}")
        if required and empty.any():
            return Checked(nums, empty, "required (empty cell)")
        return Checked(nums, np.zeros(len(col), dtype=bool), "")

    return check


def choice_rule(choices: Sequence[str], required: bool = False, fold_case: bool = False) -> Rule:
    """One of ``choices`` (returned in their canonical spelling)."""
    canon = {(c.lower() if fold_case else c): c for c in choices}
    listed = "|".join(choices)

    def check(col: pd.Series) -> Checked:
        empty = (col == "").to_numpy()
        keys = col.str.strip().str.lower() if fold_case else col.str.strip()
        mapped = keys.map(canon)
        bad = ~empty & mapped.isna().to_numpy()
        if bad.any():
            return Checked(mapped, bad, f"categories {listed}")
        if required and empty.any():
            return Checked(mapped, empty, "required (empty cell)")
        return Checked(mapped.where(~empty, None), bad, "")

    return check


def pattern_rule(pattern: re.Pattern[str], what: str, required: bool = True) -> Rule:
    """Identifiers and labels: non-empty strings matching ``pattern``."""

    def check(col: pd.Series) -> Checked:
        stripped = col.str.strip()
        empty = (stripped == "").to_numpy()
        ok = stripped.str.fullmatch(pattern.pattern).fillna(False).to_numpy(dtype=bool)
        bad = ~ok & ~empty
        if bad.any():
            return Checked(stripped, bad, what)
        if required and empty.any():
            return Checked(stripped, empty, "required (empty cell)")
        return Checked(stripped.where(~empty, None), bad, "")

    return check


def variable_rule(var: Variable) -> Rule:
    """The rule a dictionary variable's cells must satisfy."""
    if var.type == "categorical":
        if var.categories is None:  # open categorical: any label
            return pattern_rule(
                re.compile(r"^.{1,64}$"), "text of at most 64 characters", required=False
            )
        return choice_rule(var.categories)
    if var.type == "binary":
        inner = number_rule(integer=True)

        def binary(col: pd.Series) -> Checked:
            got = inner(col)
            if got.bad.any():
                return Checked(got.values, got.bad, "binary 0|1")
            arr = got.values.to_numpy()
            bad = ~np.isnan(arr) & (arr != 0) & (arr != 1)
            return Checked(got.values, bad, "binary 0|1" if bad.any() else "")

        return binary
    return number_rule(integer=var.type == "integer", lo=var.min, hi=var.max)
