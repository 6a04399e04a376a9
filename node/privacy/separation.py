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
* with ``==``, ``!=``, ``in`` or ``not_in``, for a numeric variable (a list of values
  makes the released moments a frequency table of those values).

Conditions every row meets (the top-level ``all``) may narrow a categorical or binary
variable to levels (the counts per level that then leave are cells the gate checks) and a
numeric one to a range (``age >= 18`` in a model of age: a range fixes no value). A
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
RANGES = ("<", "<=", ">", ">=")
LEVELLED = ("categorical", "binary")


def _base(code: str) -> str:
    """The variable whose values ``code`` holds up to a known map."""
    return code.removesuffix(COMBAT)


Comparison = tuple[bool, bool]
"""Of one variable in a cohort: (compared inside an ``any``, compared by value)."""


def compared(member: All | Any_ | Condition, within_any: bool = False) -> dict[str, Comparison]:
    """Variables some condition of ``member`` compares with a value: whether one such
    comparison lies inside an ``any``, and whether one is by value (not a range)."""
    if isinstance(member, Condition):
        if member.op in PRESENCE:
            return {}
        return {_base(member.var): (within_any, member.op not in RANGES)}
    inside = within_any or isinstance(member, Any_)
    found: dict[str, Comparison] = {}
    for part in member.all if isinstance(member, All) else member.any:
        for code, (disjunctive, by_value) in compared(part, inside).items():
            was = found.get(code, (False, False))
            found[code] = (was[0] or disjunctive, was[1] or by_value)
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

    def _selects(self, code: str, tested: dict[str, Comparison]) -> bool:
        """Whether the cohort selects rows by values of ``code`` in a way it may not."""
        if _base(code) not in tested:
            return False
        disjunctive, by_value = tested[_base(code)]
        return disjunctive or (by_value and not self._levelled(code))

    def check(self, variables: Sequence[str], cohort: Cohort | None) -> None:
        if cohort is None:
            return
        tested = compared(cohort)
        both = sorted(v for v in set(variables) - EXEMPT if self._selects(v, tested))
        if both:
            raise Refused(
                f"the cohort compares {', '.join(both)} with a value and this request "
                "releases its values: select the rows by other variables (outside any 'any', a "
                "categorical variable may be narrowed to levels and a numeric one to a range)",
                code=ErrorCode.COHORT_ON_RELEASED,
            )


__all__ = ["SeparatedSource", "compared"]
