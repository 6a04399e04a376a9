"""Model formulas as both sides read them: validation and the variables they name.

A formula is Wilkinson–Rogers notation as implemented by formulaic (Wilkinson & Rogers,
"Symbolic description of factorial models for analysis of variance", Applied Statistics
22(3), 1973): ``outcome ~ term + term:term + …``. The node builds design matrices from it
(``node.data.formula``); the coordinator only needs the variables it names, to check their
definitions across sites and to send the public levels of the pseudo-variable ``site``.

Formulas are evaluated at the node, so only a small, data-independent vocabulary is
allowed: variable codes, numbers, the operators ``~ + - * / : ** ^ ( )`` and the
functions in :data:`FUNCTIONS`. The splines ``lspline`` and ``bs`` take their knots and
bounds as numbers written in the formula (:mod:`schemas.splines`; the only place for
``[ ] , =``). Transforms whose result depends on a site's own rows (``center``,
``scale``, ``poly``, ``bs`` with ``df``, …) would give each site a different design and
are refused, as is any other Python.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass

from schemas.errors import ErrorCode, FedpsyError
from schemas.splines import SPLINES, literal_arguments

FUNCTIONS: frozenset[str] = frozenset({"I", "log", "log1p", "exp", "sqrt", "abs"}) | SPLINES
"""Functions a formula may call: ``I(...)`` (arithmetic), elementwise numpy maps and the
splines with public knots (:mod:`schemas.splines`)."""

MAX_FORMULA_LENGTH = 2000
_LITERAL_ONLY = frozenset({"[", "]", ",", "="})
_VARIABLE = re.compile(r"^[a-z][a-z0-9_]*$")
_TOKEN = re.compile(
    r"\s*(?:(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>\*\*|[~+\-*/:^()\[\],=]))"
)


@dataclass(frozen=True)
class FormulaParts:
    """The variables of a formula: ``outcome`` (left of ``~``) and ``predictors``."""

    outcome: tuple[str, ...]
    predictors: tuple[str, ...]

    @property
    def variables(self) -> list[str]:
        """Every variable, outcome first, each once, in order of appearance."""
        return list(dict.fromkeys(self.outcome + self.predictors))


def _invalid(formula: str, why: str) -> FedpsyError:
    return FedpsyError(f"formula {formula!r}: {why}", code=ErrorCode.REQUEST_INVALID)


def _tokens(formula: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = formula.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise _invalid(
                formula, f"unexpected character {text[pos:].lstrip()[:1]!r} at position {pos}"
            )
        kind = match.lastgroup
        assert kind is not None
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


def parse_formula(formula: str, *, outcome: bool = True) -> FormulaParts:
    """Check ``formula`` against the allowed vocabulary and return its variables.

    ``outcome``: the formula must have exactly one ``~`` with a left-hand side (models);
    with ``False`` a right-hand side alone is also accepted (e.g. Cox covariates).
    Raises ``request_invalid`` naming what is wrong.
    """
    if not formula.strip():
        raise _invalid(formula, "is empty")
    if len(formula) > MAX_FORMULA_LENGTH:
        raise _invalid(formula[:40] + "…", f"is longer than {MAX_FORMULA_LENGTH} characters")
    tokens = _tokens(formula)
    tildes = [i for i, (_, text) in enumerate(tokens) if text == "~"]
    if len(tildes) > 1:
        raise _invalid(formula, "has more than one '~'")
    if outcome and (not tildes or tildes[0] == 0):
        raise _invalid(formula, "needs an outcome: write 'outcome ~ predictors'")
    if tildes and tildes[0] == len(tokens) - 1:
        raise _invalid(formula, "has nothing to the right of '~'")
    split = tildes[0] if tildes else -1
    literal = literal_arguments(formula, tokens)
    left: list[str] = []
    right: list[str] = []
    depth = 0
    for i, (kind, text) in enumerate(tokens):
        if i in literal:
            continue
        if text in _LITERAL_ONLY:
            raise _invalid(
                formula,
                f"{text!r} may appear only in the knots and bounds of lspline or bs, as in "
                "lspline(x, [15, 25, 35])",
            )
        if text == "(":
            depth += 1
        elif text == ")":
            depth -= 1
            if depth < 0:
                raise _invalid(formula, "has an unmatched ')'")
        if kind != "name":
            continue
        called = i + 1 < len(tokens) and tokens[i + 1][1] == "("
        if called:
            if text not in FUNCTIONS:
                allowed = ", ".join(sorted(FUNCTIONS))
                raise _invalid(formula, f"calls {text!r}; allowed functions: {allowed}")
            continue
        if keyword.iskeyword(text) or not _VARIABLE.match(text):
            raise _invalid(
                formula,
                f"{text!r} is not a variable code (lower case letters, "
                "digits and '_', starting with a letter)",
            )
        (left if i < split else right).append(text)
    if depth != 0:
        raise _invalid(formula, "has an unmatched '('")
    if outcome and tildes:
        _check_outcome(formula, [text for _, text in tokens[: tildes[0]]])
    return FormulaParts(outcome=tuple(dict.fromkeys(left)), predictors=tuple(dict.fromkeys(right)))


OUTCOME_FUNCTIONS: frozenset[str] = frozenset({"log", "log1p", "sqrt", "exp"})
"""What may wrap an outcome: a variable, or one of these of a variable (``log(y)``)."""


def _check_outcome(formula: str, left: list[str]) -> None:
    """The outcome is a variable or ``f(variable)`` with ``f`` in :data:`OUTCOME_FUNCTIONS`:
    an outcome built with arithmetic (``I(age + 10*exp(-((age-41)*10)**2))``,
    ``I(y*(1 - spike))``, ``I(2*flag + 1)``) could add to, remove or count single persons'
    values without any design column showing it."""
    plain = len(left) == 1
    wrapped = len(left) == 4 and left[0] in OUTCOME_FUNCTIONS and (left[1], left[3]) == ("(", ")")
    if not (plain or wrapped):
        raise _invalid(
            formula,
            "has an outcome that is not a variable or log/log1p/sqrt/exp of one variable; "
            "transforms with arithmetic belong on the right of '~'",
        )


def variables_in_formula(formula: str) -> list[str]:
    """Every variable ``formula`` names, outcome first, each once, in order of appearance."""
    return parse_formula(formula, outcome=False).variables


def formula_categories(formula: str, sites: list[str]) -> dict[str, list[str]]:
    """Public levels a request must carry for ``formula``: the site ids if it uses ``site``.

    Each node knows only its own site id as a level of ``site``; sending every site taking
    part makes every node build the same design columns.
    """
    return {"site": list(sites)} if "site" in variables_in_formula(formula) else {}


__all__ = [
    "FUNCTIONS",
    "FormulaParts",
    "formula_categories",
    "parse_formula",
    "variables_in_formula",
]
