"""Which values a variable takes, and the cohort conditions that name others.

A cohort value that is not a category of a categorical variable (not 0/1 of a binary one,
text for a number), or an order comparison (``<`` …) of a categorical variable, is the
researcher's mistake. The coordinator checks requests against the definitions it knows
(:mod:`coordinator.jobs.checks`) and each node against its own dictionary, so a site's own
variables are checked too. Only the request and the definitions decide, never a row: the
message names the valid values and discloses nothing about the data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from schemas.cohort import All, Any_, Cohort, Condition, Scalar, label
from schemas.dictionary import Dictionary, Variable
from schemas.errors import ErrorCode, FedpsyError

Definition = Callable[[str], Variable | None]
"""The definition a check holds a code to (None: not checked)."""


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


def cohort_problems(cohort: Cohort | None, definition: Definition) -> Iterator[str]:
    """What is wrong with the values ``cohort``'s conditions name, one sentence each."""
    if cohort is None:
        return
    for cond in _conditions(cohort):
        variable = definition(cond.var)
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


def check_cohort_values(cohort: Cohort | None, dictionary: Dictionary) -> None:
    """``request_invalid`` naming the valid values when ``cohort`` names others."""
    problems = list(cohort_problems(cohort, dictionary.variables.get))
    if problems:
        raise FedpsyError("; ".join(problems), code=ErrorCode.REQUEST_INVALID)
