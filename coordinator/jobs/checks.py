"""Before anything is sent: the researcher's mistakes, found from public definitions.

A variable that neither the shipped dictionary nor any site defines is ``unknown_variable``
with the closest codes ("did you mean panss_total?"). A cohort value that is not a category
of a categorical variable (not 0/1 of a binary one, text for a number), an order comparison
(``<`` …) of a categorical variable, and levels (``levels``, ``row_levels``,
``column_levels``) that are not categories are ``request_invalid``, naming the categories.
Values are checked where every site defines the variable as the shipped dictionary does
(the coordinator knows no other definition: a site's own variables are not checked here).
Only the request and the dictionary decide, never a row, so these messages disclose
nothing; without them the nodes would answer such a request with a privacy refusal (an
empty cohort is too small).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import cache

from coordinator.jobs.compat import PSEUDO
from schemas.analyses import AnalysisBase
from schemas.cohort import All, Any_, Condition, Scalar, label
from schemas.dictionary import Dictionary, Variable, load_dictionary
from schemas.errors import ErrorCode, FedpsyError

LEVEL_FIELDS = {"levels": "group", "row_levels": "row", "column_levels": "column"}
"""Request fields naming levels, and the field naming the variable they are levels of."""
Hashes = Mapping[str, Mapping[str, str]]


@cache
def _shipped() -> Dictionary:
    return load_dictionary()


def check_request(request: AnalysisBase, hashes: Hashes) -> None:
    """Raise on the first kind of mistake found: unknown variables, then values.

    ``hashes`` maps site → {variable code → content hash} as the nodes reported them.
    """
    check_known(request.used_variables(), hashes)
    problems = [*_cohort_problems(request, hashes), *_level_problems(request, hashes)]
    if problems:
        raise FedpsyError("; ".join(problems), code=ErrorCode.REQUEST_INVALID)


def check_known(used: Iterable[str], hashes: Hashes) -> None:
    """``unknown_variable`` for codes neither the dictionary nor any site defines."""
    known = set(_shipped().variables) | PSEUDO | {c for h in hashes.values() for c in h}
    unknown = sorted(set(used) - known)
    if not unknown:
        return
    parts = []
    suggestions: dict[str, list[str]] = {}
    for code in unknown:
        close = difflib.get_close_matches(code, sorted(known), n=3, cutoff=0.6)
        suggestions[code] = close
        hint = f"did you mean {_either(close)}?" if close else "see the variable catalog"
        parts.append(f"{code!r} is not a variable of the dictionary or of any site; {hint}")
    raise FedpsyError(
        "; ".join(parts),
        code=ErrorCode.UNKNOWN_VARIABLE,
        extra={"variables": unknown, "suggestions": suggestions},
    )


def _either(codes: list[str]) -> str:
    return codes[0] if len(codes) == 1 else f"{', '.join(codes[:-1])} or {codes[-1]}"


def _shared(code: str, hashes: Hashes) -> Variable | None:
    """The shipped definition of ``code`` when no site defines it otherwise."""
    variable = _shipped().variables.get(code)
    if variable is None:
        return None
    same = variable.content_hash
    return variable if all(h.get(code, same) == same for h in hashes.values()) else None


def _values_of(variable: Variable) -> tuple[str, str, list[str]] | None:
    """(a value's name, its plural, the labels) of a variable with a fixed set of values."""
    if variable.type == "categorical" and variable.categories and not variable.open:
        return "category", "categories", list(variable.categories)
    if variable.type == "binary":
        return "value", "values", ["0", "1"]
    return None


def not_a_value(variable: Variable, values: Sequence[Scalar]) -> str | None:
    """Why ``values`` are not all values of ``variable`` (None when they are, or when it
    has no fixed set of values)."""
    allowed = _values_of(variable)
    if allowed is None:
        text = [v for v in values if isinstance(v, str)]
        return f"{text[0]!r} is not a number; {variable.code} is {variable.type}" if text else None
    one, many, labels = allowed
    bad = list(dict.fromkeys(label(v) for v in values if label(v) not in labels))
    if not bad:
        return None
    names = ", ".join(repr(b) for b in bad)
    said = f"is not a {one}" if len(bad) == 1 else f"are not {many}"
    return f"{names} {said} of {variable.code}; its {many} are {', '.join(labels)}"


def _conditions(node: Condition | All | Any_) -> Iterator[Condition]:
    if isinstance(node, Condition):
        yield node
        return
    for member in node.all if isinstance(node, All) else node.any:
        yield from _conditions(member)


def _cohort_problems(request: AnalysisBase, hashes: Hashes) -> Iterator[str]:
    if request.cohort is None:
        return
    for cond in _conditions(request.cohort):
        variable = _shared(cond.var, hashes)
        if variable is None or cond.op in ("is_null", "not_null"):
            continue
        if cond.op in ("<", "<=", ">", ">=") and variable.type == "categorical":
            yield (
                f"cohort: {cond.op} cannot compare the categorical variable {cond.var}; "
                "use ==, !=, in or not_in"
            )
            continue
        values = cond.value if isinstance(cond.value, list) else [cond.value]
        problem = not_a_value(variable, [v for v in values if v is not None])
        if problem is not None:
            yield f"cohort: {problem}"


def _level_problems(request: AnalysisBase, hashes: Hashes) -> Iterator[str]:
    for field, of in LEVEL_FIELDS.items():
        levels = getattr(request, field, None)
        code = getattr(request, of, None)
        if not levels or not isinstance(code, str):
            continue
        variable = _shared(code, hashes)
        problem = not_a_value(variable, levels) if variable is not None else None
        if problem is not None:
            yield f"{field}: {problem}"
