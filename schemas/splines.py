"""Spline terms of a formula: their public knots and bounds, checked the same on both sides.

A spline basis built from a site's own rows (knots at its quantiles, bounds at its minimum
and maximum) would differ between sites, so every knot and bound is part of the formula:

* ``lspline(x, [k1, …, kK])`` — a linear spline (piecewise linear, continuous) with knots
  ``k1 < … < kK``, in the basis of R's ``lspline`` package with ``marginal = FALSE``
  (Stata's ``mkspline``): ``K + 1`` columns ``[1] … [K+1]``, ``[1] = min(x, k1)``,
  ``[j] = clip(x, k_{j−1}, k_j) − k_{j−1}``, ``[K+1] = max(x, kK) − kK``, so that each
  coefficient is the slope within its segment.
* ``bs(x, knots=[…], lower_bound=a, upper_bound=b, degree=3)`` — the B-spline basis of
  the given degree on the knot sequence with ``a`` and ``b`` repeated ``degree + 1`` times
  around the interior knots, without its first column (no intercept column), as patsy's and
  formulaic's ``bs`` (and R's ``splines::bs``) with explicit knots and bounds:
  ``len(knots) + degree`` columns ``[1] …``. It is defined on ``[a, b]``: the node refuses
  it when a variable's declared range reaches outside (:mod:`node.data.domain`).

:func:`linear_spline` and :func:`b_spline` raise ``request_invalid`` naming the fix; the
formula parser (:mod:`schemas.formula`) calls them on the literal arguments, and the node
again on the values it evaluates.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from schemas.errors import ErrorCode, FedpsyError

SPLINES: frozenset[str] = frozenset({"lspline", "bs"})
"""Functions whose arguments after the first are public numbers (knots and bounds)."""

MAX_KNOTS = 50
MAX_DEGREE = 5
LSPLINE_EXAMPLE = "lspline(x, [15, 25, 35])"
BS_EXAMPLE = "bs(x, knots=[20, 40], lower_bound=0, upper_bound=100)"


@dataclass(frozen=True)
class BSplineBasis:
    """A B-spline basis: interior ``knots``, the boundary ``lower`` and ``upper``, ``degree``."""

    knots: tuple[float, ...]
    lower: float
    upper: float
    degree: int = 3

    @property
    def columns(self) -> int:
        return len(self.knots) + self.degree


def _invalid(why: str) -> FedpsyError:
    return FedpsyError(why, code=ErrorCode.REQUEST_INVALID)


def _number(value: object, what: str, example: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _invalid(f"{what} must be a finite number, as in {example}")
    return float(value)


def _knots(value: object, name: str, example: str, *, empty: bool) -> tuple[float, ...]:
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise _invalid(f"the knots of {name} must be a list of numbers in [ ], as in {example}")
    knots = tuple(_number(k, f"every knot of {name}", example) for k in value)
    if not knots and not empty:
        raise _invalid(f"{name} needs at least one knot, as in {example}")
    if len(knots) > MAX_KNOTS:
        raise _invalid(f"{name} has {len(knots)} knots; at most {MAX_KNOTS} are allowed")
    if any(b <= a for a, b in itertools.pairwise(knots)):
        raise _invalid(f"the knots of {name} must be strictly increasing, as in {example}")
    return knots


def linear_spline(knots: object) -> tuple[float, ...]:
    """The knots of ``lspline(x, knots)``, checked: increasing finite numbers, at least one."""
    return _knots(knots, "lspline", LSPLINE_EXAMPLE, empty=False)


def b_spline(
    knots: object = None,
    lower_bound: object = None,
    upper_bound: object = None,
    degree: object = 3,
) -> BSplineBasis:
    """The basis of ``bs(x, knots=…, lower_bound=…, upper_bound=…, degree=…)``, checked:
    every knot and both bounds given (data-independent), knots strictly inside the bounds."""
    missing = [
        name
        for name, value in (
            ("knots", knots),
            ("lower_bound", lower_bound),
            ("upper_bound", upper_bound),
        )
        if value is None
    ]
    if missing:
        raise _invalid(
            f"bs needs {', '.join(missing)}: give the knots and both bounds, as in "
            f"{BS_EXAMPLE} (knots or bounds taken from a site's own rows would differ "
            "between sites)"
        )
    inner = _knots(knots, "bs", BS_EXAMPLE, empty=True)
    lower = _number(lower_bound, "lower_bound of bs", BS_EXAMPLE)
    upper = _number(upper_bound, "upper_bound of bs", BS_EXAMPLE)
    if not lower < upper:
        raise _invalid(f"bs needs lower_bound < upper_bound, as in {BS_EXAMPLE}")
    if inner and not (lower < inner[0] and inner[-1] < upper):
        raise _invalid(
            "the knots of bs must lie strictly between lower_bound and upper_bound, as in "
            f"{BS_EXAMPLE}"
        )
    if isinstance(degree, bool) or not isinstance(degree, int) or not 1 <= degree <= MAX_DEGREE:
        raise _invalid(f"the degree of bs must be a whole number from 1 to {MAX_DEGREE}")
    return BSplineBasis(knots=inner, lower=lower, upper=upper, degree=degree)


Token = tuple[str, str]
"""A formula token: its kind (``number``, ``name``, ``op``) and text."""

Literal = float | int | list[float | int]
_PUNCTUATION = frozenset({"[", "]", "=", ","})


def _in_formula(formula: str, why: str) -> FedpsyError:
    return _invalid(f"formula {formula!r}: {why}")


def literal_arguments(formula: str, tokens: Sequence[Token]) -> set[int]:
    """The positions of the tokens that are literal arguments of spline calls (all but
    their first argument, with the commas between arguments), each call checked with
    :func:`linear_spline` or :func:`b_spline`. A spline inside another call is refused."""
    literal: set[int] = set()
    calls: list[bool] = []  # per open '(': whether it opens a function call
    for i, (kind, text) in enumerate(tokens):
        if i in literal:
            continue
        if text == "(":
            calls.append(i > 0 and tokens[i - 1][0] == "name")
        elif text == ")":
            if calls:
                calls.pop()
        elif kind == "name" and text in SPLINES and tokens[i + 1 : i + 2] == [("op", "(")]:
            if any(calls):
                raise _in_formula(
                    formula, f"{text}(…) must be a term of its own, not inside a call"
                )
            literal |= _spline_call(formula, tokens, i)
    return literal


def _spline_call(formula: str, tokens: Sequence[Token], at: int) -> set[int]:
    name = tokens[at][1]
    example = LSPLINE_EXAMPLE if name == "lspline" else BS_EXAMPLE
    parts, commas = _arguments(formula, tokens, at + 2)
    first = parts[0]
    if first[0] == first[1] or any(tokens[j][1] in _PUNCTUATION for j in range(*first)):
        raise _in_formula(
            formula, f"{name} takes a variable (or a transform of one) first, as in {example}"
        )
    positional: list[Literal] = []
    keywords: dict[str, Literal] = {}
    for start, end in parts[1:]:
        part = tokens[start:end]
        if len(part) >= 2 and part[0][0] == "name" and part[1] == ("op", "="):
            if part[0][1] in keywords:
                raise _in_formula(formula, f"{name} is given {part[0][1]} twice")
            keywords[part[0][1]] = _literal(formula, part[2:], name, example)
        elif keywords:
            raise _in_formula(
                formula, f"{name}: a number follows a named argument, as in {example}"
            )
        else:
            positional.append(_literal(formula, part, name, example))
    try:
        _check_call(name, positional, keywords)
    except FedpsyError as exc:
        raise _in_formula(formula, exc.detail) from None
    return set(commas).union(*(range(a, b) for a, b in parts[1:]))


def _arguments(
    formula: str, tokens: Sequence[Token], start: int
) -> tuple[list[tuple[int, int]], list[int]]:
    """The ``[start, end)`` token ranges of a call's arguments and its commas' positions."""
    parts: list[tuple[int, int]] = []
    commas: list[int] = []
    depth, begin = 0, start
    for j in range(start, len(tokens)):
        text = tokens[j][1]
        if text in ("(", "["):
            depth += 1
        elif text in (")", "]"):
            if depth == 0 and text == ")":
                parts.append((begin, j))
                return parts, commas
            depth -= 1
        elif text == "," and depth == 0:
            parts.append((begin, j))
            commas.append(j)
            begin = j + 1
    raise _in_formula(formula, "has an unmatched '('")


def _literal(formula: str, part: Sequence[Token], name: str, example: str) -> Literal:
    """A signed number, or a list of them in ``[ ]``."""
    texts = [text for _, text in part]
    if texts[:1] == ["["] and texts[-1:] == ["]"]:
        inner = list(part[1:-1])
        if not inner:
            return []
        items: list[list[Token]] = [[]]
        for token in inner:
            if token == ("op", ","):
                items.append([])
            else:
                items[-1].append(token)
        return [_signed(formula, item, name, example) for item in items]
    return _signed(formula, list(part), name, example)


def _signed(formula: str, part: list[Token], name: str, example: str) -> float | int:
    sign = -1 if part[:1] == [("op", "-")] else 1
    rest = part[1:] if part[:1] in ([("op", "-")], [("op", "+")]) else part
    if len(rest) != 1 or rest[0][0] != "number":
        raise _in_formula(
            formula, f"the knots and bounds of {name} must be numbers, as in {example}"
        )
    text = rest[0][1]
    return sign * (int(text) if text.isdigit() else float(text))


def _check_call(name: str, positional: list[Literal], keywords: dict[str, Literal]) -> None:
    if name == "lspline":
        if set(keywords) - {"knots"} or len(positional) + len(keywords) != 1:
            raise _invalid(f"lspline takes a variable and its knots, as in {LSPLINE_EXAMPLE}")
        linear_spline(positional[0] if positional else keywords["knots"])
        return
    if positional:
        raise _invalid(f"give the knots and bounds of bs by name, as in {BS_EXAMPLE}")
    if "df" in keywords:
        raise _invalid(
            "bs(df=…) would place knots at each site's own quantiles, which differ between "
            f"sites; give knots=[…], lower_bound and upper_bound instead, as in {BS_EXAMPLE}"
        )
    if "include_intercept" in keywords:
        raise _invalid("bs has no intercept column (the model's intercept is a term of its own)")
    unknown = sorted(set(keywords) - {"knots", "lower_bound", "upper_bound", "degree"})
    if unknown:
        raise _invalid(
            f"bs has no argument {', '.join(unknown)}; it takes knots, lower_bound, "
            f"upper_bound and degree, as in {BS_EXAMPLE}"
        )
    b_spline(**keywords)


__all__ = ["SPLINES", "BSplineBasis", "Token", "b_spline", "linear_spline", "literal_arguments"]
