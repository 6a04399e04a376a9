"""A cohort may not select rows by the values a step reads.

Otherwise one request isolates a person: a cohort such as ``madrs_total in [18, 34] or
cgi_s == 7`` pads the one person with ``cgi_s == 7`` with persons whose ``madrs_total`` the
cohort fixes to two known values, and the released n, mean and SD of ``madrs_total`` are
then two equations in the padding's split and the person's value; ``primary_diagnosis ==
F20 or age == 41`` does the same for a category, and ``ketamine == 1 and (age < 40 or age
>= 45 or age == 41)`` leaves a histogram of age one bin that holds the target or nobody.
So the node refuses (``cohort_on_released``) a frame whose cohort compares a variable it
reads with a value

* anywhere inside an ``any`` (a disjunction can add persons the comparison does not
  cover), or
* at all, for a numeric variable (``in`` lists and ranges make the released moments a
  frequency table of the listed values, and a range a histogram edge off the public grid).

A categorical or binary variable may be narrowed to levels by conditions every row meets
(the top-level ``all``): the counts per level that then leave are cells the gate checks. A
ComBat-harmonized variable (``<code>_combat``, an affine map of ``<code>`` per site) counts
as the variable it was made from; ``site`` is constant at a node; ``not_null`` and
``is_null`` fix no value (a study cohort of ``not_null`` conditions stays usable).
"""

from __future__ import annotations

from collections.abc import Sequence

from node.data.source import FrameSource, WrappedSource
from schemas.analyses.combat import SUFFIX as COMBAT
from schemas.cohort import All, Any_, Cohort, Condition
from schemas.dictionary import Dictionary
from schemas.errors import ErrorCode, FedpsyError, Refused

EXEMPT = frozenset({"site"})
PRESENCE = ("is_null", "not_null")
LEVELLED = ("categorical", "binary")


def _base(code: str) -> str:
    """The variable whose values ``code`` holds up to a known map."""
    return code.removesuffix(COMBAT)


def compared(member: All | Any_ | Condition, within_any: bool = False) -> dict[str, bool]:
    """Variables some condition of ``member`` compares with a value, each with whether one
    such comparison lies inside an ``any``."""
    if isinstance(member, Condition):
        return {} if member.op in PRESENCE else {_base(member.var): within_any}
    inside = within_any or isinstance(member, Any_)
    found: dict[str, bool] = {}
    for part in member.all if isinstance(member, All) else member.any:
        for code, disjunctive in compared(part, inside).items():
            found[code] = found.get(code, False) or disjunctive
    return found


class SeparatedSource(WrappedSource):
    """The node's rows as a step may read them: never selected by the values it reads."""

    def __init__(self, inner: FrameSource, dictionary: Dictionary) -> None:
        super().__init__(inner)
        self.dictionary = dictionary

    def _levelled(self, code: str) -> bool:
        try:
            return self.dictionary.get(code).type in LEVELLED
        except FedpsyError:
            return False

    def check(self, variables: Sequence[str], cohort: Cohort | None) -> None:
        if cohort is None:
            return
        tested = compared(cohort)
        both = sorted(
            v
            for v in set(variables) - EXEMPT
            if _base(v) in tested and (tested[_base(v)] or not self._levelled(v))
        )
        if both:
            raise Refused(
                f"the cohort compares {', '.join(both)} with a value and this request "
                "releases its values: select the rows by other variables (a categorical "
                "variable may be narrowed to levels by conditions outside any 'any')",
                code=ErrorCode.COHORT_ON_RELEASED,
            )


__all__ = ["SeparatedSource", "compared"]
