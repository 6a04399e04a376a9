"""Before anything is sent: the researcher's mistakes, found from public definitions.

A variable that neither the shipped dictionary nor any site defines is ``unknown_variable``
with the closest codes ("did you mean panss_total?"). A cohort value that is not a category
of a categorical variable (not 0/1 of a binary one, text for a number), an order comparison
(``<`` …) of a categorical variable, and levels (``levels``, ``row_levels``,
``column_levels``) that are not categories are ``request_invalid``, naming the categories.
Values are checked where every site defines the variable as the shipped dictionary does
(the coordinator knows no other definition); each node checks cohort values against its own
dictionary too (:mod:`schemas.values`), so a site's own variables are checked there.
Only the request and the dictionary decide, never a row, so these messages disclose
nothing; without them the nodes would answer such a request with a privacy refusal (an
empty cohort is too small).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping
from functools import cache

from coordinator.jobs.compat import PSEUDO
from schemas.analyses import AnalysisBase
from schemas.dictionary import Dictionary, Variable, load_dictionary
from schemas.errors import ErrorCode, FedpsyError
from schemas.values import cohort_problems, not_a_value

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


def _cohort_problems(request: AnalysisBase, hashes: Hashes) -> Iterator[str]:
    return cohort_problems(request.cohort, lambda code: _shared(code, hashes))


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
