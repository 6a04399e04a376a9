"""Dictionary variables and the data dictionary that holds them (CDM v1).

A :class:`Variable` is one harmonized variable: its code, label, type, unit, range,
categories, level (person or visit) and source (person table, observation file or
derived at the node), and optionally soft plausibility bounds (``plausible_min``,
``plausible_max``: values outside them are loaded, and counted by the data-quality report).
Its :attr:`Variable.content_hash` is the sha256 of the canonical JSON of its definition
(the plausibility bounds only when declared, so a variable without them hashes as before),
so two sites can prove they mean the same thing by a name. A
:class:`Dictionary` is a versioned set of variables with a hash over all of them.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import numbers
from collections.abc import Mapping
from functools import cached_property
from typing import Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    field_validator,
    model_validator,
)

from schemas.errors import DictionaryError, ErrorCode, FedpsyError

DICTIONARY_VERSION: Literal["cdm-v1"] = "cdm-v1"
CODE_PATTERN = r"^[a-z][a-z0-9_]*$"
CODE_MAX_LENGTH = 64

VariableType = Literal["numeric", "integer", "binary", "categorical"]
Level = Literal["person", "visit"]
Source = Literal["person", "observation", "derived"]


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: the form every content hash is taken of."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def sha256_hex(text: str) -> str:
    """The sha256 hex digest of ``text`` encoded as UTF-8."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _is_missing(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
        return math.isnan(float(value))
    return False


def _format_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _shown(value: object) -> str:
    """A definition field's value as a message shows it (``unset`` for None)."""
    if value is None:
        return "unset"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(str(item) for item in value) + "]"
    return repr(value)


def _binary_bound_problem(bound: str, value: object) -> str | None:
    """Why ``value`` cannot be bound ``bound`` of a binary variable, or None when the bound
    holds both 0 and 1 (a min at most 0, a max at least 1)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None  # not a number: the field's own check says so
    if bound == "min" and value > 0:
        return (
            f"min: {_format_number(value)} excludes 0, but a binary variable takes the "
            "values 0 and 1 (give min 0 and max 1, or leave the bounds out)"
        )
    if bound == "max" and value < 1:
        return (
            f"max: {_format_number(value)} excludes 1, but a binary variable takes the "
            "values 0 and 1 (give min 0 and max 1, or leave the bounds out)"
        )
    return None


class Variable(BaseModel):
    """One variable of the data dictionary; the fields are those of CDM v1."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: StrictStr = Field(pattern=CODE_PATTERN, max_length=CODE_MAX_LENGTH)
    label: StrictStr = Field(min_length=1)
    type: VariableType
    unit: StrictStr | None = None
    min: int | float | None = None
    max: int | float | None = None
    categories: tuple[StrictStr, ...] | None = None
    open: StrictBool = False
    level: Level = "visit"
    source: Source = "observation"
    derived: StrictStr | None = None
    description: StrictStr | None = None
    plausible_min: int | float | None = None
    plausible_max: int | float | None = None

    @model_validator(mode="before")
    @classmethod
    def _drop_binary_bounds(cls, data: object) -> object:
        """A binary variable's values are 0 and 1 whatever its bounds say: bounds holding
        both (``min: 0``, ``max: 1`` as REDCap-style dictionaries give them) are dropped, so
        that they change neither how the variable is treated nor its content hash.
        Contradictory bounds are kept, for :meth:`_consistent` to reject."""
        if not isinstance(data, dict) or data.get("type") != "binary":
            return data
        bounds = {b: data[b] for b in ("min", "max") if data.get(b) is not None}
        numbers_only = all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            for v in bounds.values()
        )
        if not numbers_only or any(_binary_bound_problem(b, v) for b, v in bounds.items()):
            return data
        return {key: value for key, value in data.items() if key not in ("min", "max")}

    @field_validator("min", "max", "plausible_min", "plausible_max", mode="before")
    @classmethod
    def _number_only(cls, value: object) -> object:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"must be a finite number, got {value!r}")
        # 1 and 1.0 are the same bound; store it one way so the content hash agrees
        return int(value) if float(value).is_integer() else float(value)

    @field_validator("categories", mode="before")
    @classmethod
    def _categories_are_strings(cls, value: object) -> object:
        if value is None:
            return None
        if not isinstance(value, list | tuple):
            raise ValueError(f"must be a list of strings, got {type(value).__name__}")
        if not value:
            raise ValueError("must list at least one category")
        for item in value:
            if not isinstance(item, str) or not item:
                raise ValueError(
                    f"every category must be a non-empty string, got {item!r} "
                    "(quote values such as '1' or 'yes' in YAML)"
                )
        seen: set[str] = set()
        for item in value:
            if item in seen:
                raise ValueError(f"category {item!r} is listed twice")
            seen.add(item)
        return tuple(value)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems: list[str] = []
        if self.type == "categorical":
            if self.categories is None and not self.open:
                problems.append("categories: required for a categorical variable unless open: true")
            for bound in ("min", "max"):
                if getattr(self, bound) is not None:
                    problems.append(f"{bound}: not allowed for a categorical variable")
        else:
            if self.categories is not None:
                problems.append(
                    f"categories: not allowed for type {self.type} "
                    "(only categorical variables have categories)"
                )
            if self.open:
                problems.append("open: only a categorical variable can be open")
        if self.type == "binary":
            for bound in ("min", "max"):
                problem = _binary_bound_problem(bound, getattr(self, bound))
                if problem is not None:
                    problems.append(problem)
        if self.type == "integer":
            for bound in ("min", "max"):
                limit = getattr(self, bound)
                if limit is not None and not float(limit).is_integer():
                    problems.append(f"{bound}: {limit} is not a whole number (type integer)")
        if self.min is not None and self.max is not None and self.min > self.max:
            problems.append(f"min {_format_number(self.min)} > max {_format_number(self.max)}")
        problems.extend(self._plausibility_problems())
        if self.source == "derived" and not (self.derived and self.derived.strip()):
            problems.append("derived: a rule text is required when source is derived")
        if self.source != "derived" and self.derived is not None:
            problems.append(
                f"derived: only allowed when source is derived (source is {self.source})"
            )
        if self.source == "person" and self.level != "person":
            problems.append("level: must be person when source is person")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _plausibility_problems(self) -> list[str]:
        """Soft bounds belong to numbers and lie inside the hard range."""
        soft = {b: getattr(self, f"plausible_{b}") for b in ("min", "max")}
        given = {b: v for b, v in soft.items() if v is not None}
        if not given:
            return []
        if self.type not in ("numeric", "integer"):
            return [f"plausible_{b}: only numeric and integer variables have one" for b in given]
        problems = []
        low, high = soft["min"], soft["max"]
        if low is not None and high is not None and low > high:
            problems.append(
                f"plausible_min {_format_number(low)} > plausible_max {_format_number(high)}"
            )
        for bound, value in given.items():
            if (self.min is not None and value < self.min) or (
                self.max is not None and value > self.max
            ):
                problems.append(
                    f"plausible_{bound}: {_format_number(value)} lies outside the range "
                    f"[{_shown(self.min)}, {_shown(self.max)}]"
                )
        return problems

    def definition(self) -> dict[str, Any]:
        """Every field of the definition as JSON-ready values (what the hash covers); the
        plausibility bounds only when declared."""
        out = self.model_dump(mode="json")
        for bound in ("plausible_min", "plausible_max"):
            if out[bound] is None:
                del out[bound]
        return out

    def implausible(self, value: float) -> bool:
        """Whether a present number lies outside the soft bounds (never for a variable
        without them)."""
        return (self.plausible_min is not None and value < self.plausible_min) or (
            self.plausible_max is not None and value > self.plausible_max
        )

    @property
    def content_hash(self) -> str:
        """sha256 hex of the canonical JSON of :meth:`definition`."""
        return sha256_hex(canonical_json(self.definition()))

    def differences(self, new: Variable) -> str:
        """What ``new`` changes of this definition, field by field, e.g.
        ``max 10 → 20, label 'Score' → 'Site score'`` (empty when they are identical)."""
        old_fields, new_fields = self.model_dump(mode="json"), new.model_dump(mode="json")
        return ", ".join(
            f"{name} {_shown(old_fields[name])} → {_shown(new_fields[name])}"
            for name in old_fields
            if old_fields[name] != new_fields[name]
        )

    def check_value(self, value: object) -> str | None:
        """The rule ``value`` breaks (e.g. ``"max 7"``), or None when it is allowed.

        A missing value (None or NaN) breaks no rule here; whether a value may be missing
        is decided by the caller. Values must already be parsed: numbers for numeric,
        integer and binary variables, strings for categorical ones.
        """
        if _is_missing(value):
            return None
        if self.type == "binary":
            if isinstance(value, bool | numbers.Real) and value in (0, 1):
                return None
            return "binary 0|1"
        if self.type == "categorical":
            if not isinstance(value, str):
                return "type categorical"
            if self.open or self.categories is None or value in self.categories:
                return None
            return "categories " + "|".join(self.categories)
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return f"type {self.type}"
        number = float(value)
        if not math.isfinite(number):
            return f"type {self.type}"
        if self.type == "integer" and not number.is_integer():
            return "type integer"
        if self.min is not None and number < self.min:
            return f"min {_format_number(self.min)}"
        if self.max is not None and number > self.max:
            return f"max {_format_number(self.max)}"
        return None


class Dictionary(BaseModel):
    """A versioned set of variables, keyed by code in definition order."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal["cdm-v1"] = DICTIONARY_VERSION
    variables: dict[str, Variable] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _keys_are_codes(self) -> Self:
        for key, variable in self.variables.items():
            if key != variable.code:
                raise ValueError(f"variables: key {key!r} holds variable {variable.code!r}")
        return self

    @classmethod
    def from_variables(cls, variables: list[Variable]) -> Dictionary:
        """A dictionary of ``variables``; a code given twice is a ``dictionary_clash``."""
        by_code: dict[str, Variable] = {}
        for variable in variables:
            if variable.code in by_code:
                raise DictionaryError(
                    f"variable {variable.code!r} is defined twice", code=ErrorCode.DICTIONARY_CLASH
                )
            by_code[variable.code] = variable
        return cls(variables=by_code)

    def __contains__(self, code: object) -> bool:
        return code in self.variables

    def __len__(self) -> int:
        return len(self.variables)

    def variable_hashes(self) -> dict[str, str]:
        """Each variable's content hash, by code."""
        return {code: variable.content_hash for code, variable in self.variables.items()}

    @cached_property
    def hash(self) -> str:
        """sha256 hex of canonical JSON ``{"variables": sorted hashes, "version": …}``
        (taken once: the dictionary is frozen, and a copy takes it anew)."""
        hashes = sorted(self.variable_hashes().values())
        return sha256_hex(canonical_json({"variables": hashes, "version": self.version}))

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        copied = super().model_copy(update=update, deep=deep)
        copied.__dict__.pop("hash", None)  # the copy's definitions may differ
        return copied

    def get(self, code: str) -> Variable:
        """The variable named ``code``; an ``unknown_variable`` error suggests close codes."""
        try:
            return self.variables[code]
        except KeyError:
            pass
        close = difflib.get_close_matches(code, list(self.variables), n=3, cutoff=0.6)
        hint = (
            "did you mean " + ", ".join(repr(c) for c in close) + "?"
            if close
            else "see the variable catalog for the defined codes"
        )
        raise FedpsyError(
            f"variable {code!r} is not defined in dictionary {self.version}; {hint}",
            code=ErrorCode.UNKNOWN_VARIABLE,
            extra={"variable": code, "suggestions": close},
        )

    def extend(self, other: Dictionary) -> Dictionary:
        """A new dictionary with ``other``'s variables added. A variable defined here
        identically is no change; one defined differently is a ``dictionary_clash``."""
        clashes = {
            code: self.variables[code].differences(variable)
            for code, variable in other.variables.items()
            if code in self.variables and self.variables[code].content_hash != variable.content_hash
        }
        if clashes:
            described = "; ".join(f"{code!r}: {diff}" for code, diff in clashes.items())
            raise DictionaryError(
                f"variable(s) already defined differently (old → new): {described}; "
                "use new codes for new variables",
                code=ErrorCode.DICTIONARY_CLASH,
                extra={"variables": list(clashes)},
            )
        return Dictionary(version=self.version, variables={**self.variables, **other.variables})

    def codes(
        self,
        *,
        source: Source | None = None,
        level: Level | None = None,
        type: VariableType | None = None,
    ) -> list[str]:
        """Codes in definition order, filtered by source, level and type when given."""
        return [
            code
            for code, variable in self.variables.items()
            if (source is None or variable.source == source)
            and (level is None or variable.level == level)
            and (type is None or variable.type == type)
        ]
