"""Field-wise addition of step results, through one flat float vector.

An additive step result (counts, sums, cross-products, scores) is summed over sites by
adding its numeric fields. :func:`flatten` turns a result into a float64 vector plus a
:class:`Layout` that says where each field's numbers sit; secure aggregation masks and sums
that vector (Bonawitz et al., CCS 2017) and :func:`unflatten` turns the sum back into a
result. :func:`add_results` does the plain (unmasked) sum.

Which fields are summed is decided by value: a field is *summable* when it holds an ``int``
or ``float`` (not ``bool``), or a list / ``str``-keyed dict nested to any depth (ragged
allowed) whose leaves are all ints or floats. Every other field — labels, level lists,
flags, ``None`` — is *carried*: it must be equal at every site (it describes the shape or
meaning of the numbers, e.g. the category labels of a contingency table) and is copied into
the sum unchanged; a difference raises ``ValueError``. Integer fields stay integers (the
sum is rounded back after decoding).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import numpy as np
import numpy.typing as npt

from schemas.steps.base import StepResult

R = TypeVar("R", bound=StepResult)

Kind = Literal["int", "float"]
# A skeleton mirrors a summable value: a leaf kind, a list of skeletons or a dict of them.
Skeleton = Any


@dataclass(frozen=True)
class FieldLayout:
    """Where one field lives: summable (``skeleton`` + ``size`` numbers) or carried."""

    name: str
    summable: bool
    skeleton: Skeleton = None
    size: int = 0
    carried: str = ""  # canonical JSON of a carried value


@dataclass(frozen=True)
class Layout:
    """The fields of a result type in order; equal layouts can be summed."""

    result: str
    fields: tuple[FieldLayout, ...]

    @property
    def size(self) -> int:
        return sum(f.size for f in self.fields)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _skeleton(value: object) -> Skeleton | None:
    """The skeleton of a summable value, or None when the value is not summable."""
    if _is_number(value):
        return "int" if isinstance(value, int) else "float"
    if isinstance(value, list):
        parts = [_skeleton(v) for v in value]
        return None if any(p is None for p in parts) else parts
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        inner = {k: _skeleton(v) for k, v in value.items()}
        return None if any(p is None for p in inner.values()) else inner
    return None


def _leaves(value: object, out: list[float]) -> None:
    if isinstance(value, list):
        for v in value:
            _leaves(v, out)
    elif isinstance(value, dict):
        for k in value:
            _leaves(value[k], out)
    else:
        out.append(float(value))  # type: ignore[arg-type]


def _rebuild(skeleton: Skeleton, values: npt.NDArray[np.float64], pos: int) -> tuple[Any, int]:
    if isinstance(skeleton, list):
        items = []
        for s in skeleton:
            item, pos = _rebuild(s, values, pos)
            items.append(item)
        return items, pos
    if isinstance(skeleton, dict):
        mapping = {}
        for k, s in skeleton.items():
            mapping[k], pos = _rebuild(s, values, pos)
        return mapping, pos
    x = float(values[pos])
    return (round(x) if skeleton == "int" else x), pos + 1


def flatten(result: StepResult) -> tuple[npt.NDArray[np.float64], Layout]:
    """The summable numbers of ``result`` as one float64 vector, and their layout."""
    fields: list[FieldLayout] = []
    numbers: list[float] = []
    for name in type(result).model_fields:
        value = getattr(result, name)
        plain = value.model_dump(mode="json") if hasattr(value, "model_dump") else value
        skeleton = _skeleton(plain)
        if skeleton is None:
            carried = json.dumps(_jsonable(plain), sort_keys=True, separators=(",", ":"))
            fields.append(FieldLayout(name=name, summable=False, carried=carried))
            continue
        start = len(numbers)
        _leaves(plain, numbers)
        fields.append(
            FieldLayout(
                name=name, summable=True, skeleton=_freeze(skeleton), size=len(numbers) - start
            )
        )
    layout = Layout(result=type(result).__name__, fields=tuple(fields))
    return np.asarray(numbers, dtype=np.float64), layout


def unflatten(vector: npt.NDArray[np.float64], layout: Layout, result_type: type[R]) -> R:
    """Rebuild a ``result_type`` from a (summed) vector laid out as ``layout``."""
    values = np.asarray(vector, dtype=np.float64)
    if values.shape != (layout.size,):
        raise ValueError(
            f"vector of shape {values.shape} does not fit a layout of {layout.size} numbers"
        )
    data: dict[str, Any] = {}
    pos = 0
    for field in layout.fields:
        if field.summable:
            data[field.name], pos = _rebuild(_thaw(field.skeleton), values, pos)
        else:
            data[field.name] = json.loads(field.carried)
    return result_type.model_validate(data)


def add_results(results: Sequence[R]) -> R:
    """The field-wise sum of same-typed results (carried fields must be equal)."""
    if not results:
        raise ValueError("add_results needs at least one result")
    result_type = type(results[0])
    vectors = []
    layout: Layout | None = None
    for r in results:
        if type(r) is not result_type:
            raise ValueError(f"cannot add a {type(r).__name__} to a {result_type.__name__}")
        vector, this = flatten(r)
        if layout is None:
            layout = this
        elif this != layout:
            raise ValueError(
                f"{result_type.__name__} results differ in shape or in a "
                f"non-summable field ({_difference(layout, this)})"
            )
        vectors.append(vector)
    assert layout is not None
    total = np.sum(np.vstack(vectors), axis=0) if layout.size else np.zeros(0)
    return unflatten(total, layout, result_type)


def _difference(a: Layout, b: Layout) -> str:
    for fa, fb in zip(a.fields, b.fields, strict=True):
        if fa != fb:
            return f"field {fa.name!r}"
    return "layout"


def _jsonable(value: object) -> object:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def _freeze(skeleton: Skeleton) -> Skeleton:
    """A hashable form of a skeleton (tuples for lists, sorted item tuples for dicts)."""
    if isinstance(skeleton, list):
        return ("list", tuple(_freeze(s) for s in skeleton))
    if isinstance(skeleton, dict):
        return ("dict", tuple((k, _freeze(s)) for k, s in skeleton.items()))
    return skeleton


def _thaw(frozen: Skeleton) -> Skeleton:
    if isinstance(frozen, tuple):
        tag, items = frozen
        if tag == "list":
            return [_thaw(s) for s in items]
        return {k: _thaw(s) for k, s in items}
    return frozen


__all__ = ["FieldLayout", "Layout", "add_results", "flatten", "unflatten"]
