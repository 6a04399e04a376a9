"""A cohort may not test a variable whose values the same step reads.

Otherwise one request isolates a person: a cohort such as ``madrs_total in [18, 34] or
cgi_s == 7`` pads the one person with ``cgi_s == 7`` with persons whose ``madrs_total`` the
cohort fixes to two known values, and the released n, mean and SD of ``madrs_total`` are
then two equations in the padding's split and the person's value; a level table of a
variable the cohort selects levels of does the same for a category. So the node refuses
(``cohort_on_released``) a frame whose cohort tests any variable it reads, counting a
ComBat-harmonized variable (``<code>_combat``, an affine map of ``<code>`` per site) as the
variable it was made from. ``site`` is constant at a node and exempt, and so are
``not_null`` / ``is_null`` conditions: they fix no value (a study's analysis cohort of
``not_null`` conditions stays usable).
"""

from __future__ import annotations

from collections.abc import Sequence

from node.data.source import WrappedSource
from schemas.analyses.combat import SUFFIX as COMBAT
from schemas.cohort import All, Any_, Cohort, Condition
from schemas.errors import ErrorCode, Refused

EXEMPT = frozenset({"site"})


PRESENCE = ("is_null", "not_null")


def _tested(member: All | Any_ | Condition) -> set[str]:
    """Variables whose values some condition of ``member`` compares with a value."""
    if isinstance(member, Condition):
        return set() if member.op in PRESENCE else {member.var}
    parts = member.all if isinstance(member, All) else member.any
    return set().union(*(_tested(m) for m in parts)) if parts else set()


def _base(code: str) -> str:
    """The variable whose values ``code`` holds up to a known map."""
    return code.removesuffix(COMBAT)


class SeparatedSource(WrappedSource):
    """The node's rows as a step may read them: never a variable its cohort tests."""

    def check(self, variables: Sequence[str], cohort: Cohort | None) -> None:
        if cohort is None:
            return
        tested = {_base(v) for v in _tested(cohort) - EXEMPT}
        both = sorted(v for v in set(variables) - EXEMPT if _base(v) in tested)
        if both:
            raise Refused(
                f"the cohort tests {', '.join(both)}, whose values this request releases: "
                "select the rows by other variables",
                code=ErrorCode.COHORT_ON_RELEASED,
            )


__all__ = ["SeparatedSource"]
