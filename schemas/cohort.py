"""Cohort filters: nestable ``{"all": [...]}`` / ``{"any": [...]}`` of conditions.

A condition is ``{"var", "op", "value"}`` with ``op`` one of ``==, !=, <, <=, >, >=, in,
not_in, is_null, not_null``; categorical values compare as strings. The node evaluates a
cohort on its own rows (``node.data.cohort``); the coordinator only reads which variables it
names and which sites a top-level ``site`` condition selects.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

Op = Literal["==", "!=", "<", "<=", ">", ">=", "in", "not_in", "is_null", "not_null"]
OPS: tuple[str, ...] = get_args(Op)
Scalar = Union[float, int, str, bool]  # noqa: UP007 (pydantic union order matters)
SHAPE = 'a cohort is {"all": [...]} or {"any": [...]} of conditions {"var", "op", "value"}'


def label(value: Scalar) -> str:
    """The string a value compares as against a categorical variable (``1.0`` is ``"1"``)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


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


def cohort_levels(cohort: Cohort | None, variable: str) -> list[str] | None:
    """The labels of ``variable`` the cohort's conjunctive ``==`` / ``in`` conditions keep
    (top level and nested ``all``; ``!=`` / ``not_in`` remove), in the order the first such
    condition lists them; ``None`` when no ``==`` / ``in`` condition names it."""
    kept: list[str] | None = None
    removed: set[str] = set()
    pending = list(cohort.all) if isinstance(cohort, All) else []
    while pending:
        member = pending.pop(0)
        if isinstance(member, All):
            pending.extend(member.all)
            continue
        if not isinstance(member, Condition) or member.var != variable:
            continue
        values = member.value if isinstance(member.value, list) else [member.value]
        labels = [label(v) for v in values if v is not None]
        if member.op in ("==", "in"):
            kept = labels if kept is None else [k for k in kept if k in labels]
        elif member.op in ("!=", "not_in"):
            removed.update(labels)
    return None if kept is None else [k for k in dict.fromkeys(kept) if k not in removed]


def cohort_problem(raw: object, where: str = "cohort") -> str | None:
    """The first mistake in a cohort as written, in one sentence (pydantic reports a union
    of condition shapes as a list of every shape's errors); ``None`` when none is found."""
    if not isinstance(raw, dict) or set(raw) not in ({"all"}, {"any"}):
        return f"{where}: {SHAPE}"
    return _member_problem(raw, where)


def _member_problem(raw: object, where: str) -> str | None:
    if isinstance(raw, dict) and len(raw) == 1 and set(raw) <= {"all", "any"}:
        (kind, members) = next(iter(raw.items()))
        if not isinstance(members, list):
            return f"{where}.{kind}: must be a list of conditions"
        if kind == "any" and not members:
            return f"{where}.any: needs at least one condition"
        for i, member in enumerate(members):
            problem = _member_problem(member, f"{where}.{kind}[{i}]")
            if problem is not None:
                return problem
        return None
    if not isinstance(raw, dict) or not ({"var", "op"} & set(raw)):
        return f'{where}: expected a condition {{"var", "op", "value"}} or a nested "all" / "any"'
    extra = sorted(set(raw) - {"var", "op", "value"})
    if extra:
        return f"{where}: unknown key(s) {', '.join(extra)}; a condition has var, op, value"
    var = raw.get("var")
    if not isinstance(var, str):
        return f'{where}: a condition needs "var", a variable code'
    op = raw.get("op")
    if op not in OPS:
        return (
            f"{where}: condition on {var!r}: {op!r} is not an operator; "
            f"the operators are {', '.join(OPS)}"
        )
    try:
        Condition.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        if first["loc"] and first["loc"][0] == "value":
            return f"{where}: condition on {var!r}: a value is a number, text, true/false or a list"
        return f"{where}: {first['msg'].removeprefix('Value error, ')}"
    return None
