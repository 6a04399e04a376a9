"""Cohort filters: nestable ``{"all": [...]}`` / ``{"any": [...]}`` of conditions.

A condition is ``{"var", "op", "value"}`` with ``op`` one of ``==, !=, <, <=, >, >=, in,
not_in, is_null, not_null``; categorical values compare as strings. The node evaluates a
cohort on its own rows (``node.data.cohort``); the coordinator only reads which variables it
names and which sites a top-level ``site`` condition selects.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

Op = Literal["==", "!=", "<", "<=", ">", ">=", "in", "not_in", "is_null", "not_null"]
Scalar = Union[float, int, str, bool]  # noqa: UP007 (pydantic union order matters)


class Condition(BaseModel):
    """One comparison of a variable with a value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    var: str
    op: Op
    value: Scalar | list[Scalar] | None = None

    @model_validator(mode="after")
    def _value_fits_op(self) -> Condition:
        if self.op in ("is_null", "not_null"):
            if self.value is not None:
                raise ValueError(f"condition on {self.var!r}: op {self.op} takes no value")
        elif self.op in ("in", "not_in"):
            if not isinstance(self.value, list) or not self.value:
                raise ValueError(f"condition on {self.var!r}: op {self.op} needs a non-empty list")
        elif self.value is None or isinstance(self.value, list):
            raise ValueError(f"condition on {self.var!r}: op {self.op} needs a single value")
        return self

    def variables(self) -> set[str]:
        return {self.var}


class All(BaseModel):
    """Every member must hold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    all: list[Node]

    def variables(self) -> set[str]:
        return set().union(*(m.variables() for m in self.all)) if self.all else set()


class Any_(BaseModel):
    """At least one member must hold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    any: list[Node] = Field(min_length=1)

    def variables(self) -> set[str]:
        return set().union(*(m.variables() for m in self.any))


Node = Annotated[Union[Condition, All, Any_], Field(union_mode="left_to_right")]  # noqa: UP007
Cohort = Union[All, Any_]  # noqa: UP007
All.model_rebuild()
Any_.model_rebuild()


def selected_sites(cohort: Cohort | None, sites: list[str]) -> list[str]:
    """The sites a top-level ``site`` condition (``==`` or ``in``) selects; all otherwise."""
    if not isinstance(cohort, All):
        return list(sites)
    chosen = set(sites)
    for member in cohort.all:
        if isinstance(member, Condition) and member.var == "site":
            if member.op == "==":
                chosen &= {str(member.value)}
            elif member.op == "in" and isinstance(member.value, list):
                chosen &= {str(v) for v in member.value}
    return [s for s in sites if s in chosen]
