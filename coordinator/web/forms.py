"""Form fields for the analysis builder, derived from the request models in ``schemas``.

Every member of :data:`schemas.analyses.AnalysisRequest` gets a form, so an analysis added
to the union appears in the builder without code here. A field's input follows its type
(choice for a ``Literal``, checkbox for ``bool``, number inputs, comma-separated lists) and
its name (``variable``, ``group``, ``time`` … complete from the catalog; ``formula``
completes the variable being typed). Anything more complex is entered as JSON.
"""

from __future__ import annotations

import sys
import types
import typing
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal, Union

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from schemas.analyses import AnalysisBase, AnalysisRequest

COMMON = ("analysis", "cohort", "visit", "on_refusal")
VARIABLE_FIELDS = frozenset(
    {"variable", "row", "column", "group", "time", "event", "batch", "outcome", "weight"}
)
VARIABLE_LISTS = frozenset({"variables", "covariates", "features"})
HINTS = {
    "formula": "outcome ~ predictor + predictor; categorical predictors get dummy terms",
    "edges": "increasing numbers, comma-separated (e.g. 0, 10, 20, 30)",
    "probabilities": "numbers between 0 and 1, comma-separated",
    "levels": "two levels, comma-separated",
    "row_levels": "comma-separated levels (binary and categorical variables have them)",
    "column_levels": "comma-separated levels (binary and categorical variables have them)",
    "grid": "time points, comma-separated",
    "term": "a coefficient name as in a model table, e.g. age or sex[T.M]",
    "variables": "variable codes, comma-separated",
    "covariates": "variable codes, comma-separated",
    "min_sites": "empty: every site must answer; a number: sites that fail are left out "
    "while at least this many answer",
}
Kind = Literal[
    "variable",
    "variables",
    "formula",
    "term",
    "text",
    "texts",
    "integer",
    "number",
    "numbers",
    "choice",
    "boolean",
    "json",
]


@dataclass(frozen=True)
class FormField:
    name: str
    label: str
    kind: Kind
    required: bool
    default: Any = None
    choices: tuple[str, ...] = ()
    hint: str = ""


@dataclass(frozen=True)
class AnalysisForm:
    name: str
    summary: str
    fields: list[FormField] = field(default_factory=list)
    common: list[FormField] = field(default_factory=list)
    """Options every analysis has (from ``AnalysisBase``) beyond cohort, visit, refusal."""


def _strip_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _kind(name: str, annotation: Any) -> tuple[Kind, tuple[str, ...]]:
    inner = _strip_optional(annotation)
    origin = typing.get_origin(inner)
    if origin is Literal:
        return "choice", tuple(str(a) for a in typing.get_args(inner))
    if inner is bool:
        return "boolean", ()
    if inner is int:
        return "integer", ()
    if inner is float:
        return "number", ()
    if inner is str:
        if name == "formula":
            return "formula", ()
        if name == "term":
            return "term", ()
        return ("variable" if name in VARIABLE_FIELDS else "text"), ()
    if origin is list:
        (item,) = typing.get_args(inner) or (Any,)
        if item is str:
            return ("variables" if name in VARIABLE_LISTS else "texts"), ()
        if item in (int, float):
            return "numbers", ()
    return "json", ()


def _summary(model: type[BaseModel]) -> str:
    doc = (sys.modules[model.__module__].__doc__ or "").strip().splitlines()
    return doc[0].replace("``", "") if doc else ""


def form_for(model: type[BaseModel]) -> AnalysisForm:
    fields: list[FormField] = []
    common: list[FormField] = []
    for name, info in model.model_fields.items():
        if name in COMMON:
            continue
        kind, choices = _kind(name, info.annotation)
        default = None if info.default is PydanticUndefined else info.default
        if isinstance(default, BaseModel):
            default = default.model_dump(mode="json")
        (common if name in AnalysisBase.model_fields else fields).append(
            FormField(
                name=name,
                label=name.replace("_", " ").capitalize(),
                kind=kind,
                required=info.is_required(),
                default=default,
                choices=choices,
                hint=info.description or HINTS.get(name, ""),
            )
        )
    name = str(model.model_fields["analysis"].default)
    return AnalysisForm(name, _summary(model), fields, common)


@cache
def analysis_forms() -> dict[str, AnalysisForm]:
    """A form per analysis in the request union, in the union's order."""
    union = typing.get_args(AnalysisRequest)[0]
    return {form.name: form for form in map(form_for, typing.get_args(union))}
