"""Result envelopes as tables: what the result page shows and what the CSV downloads hold.

Tables are derived from the shape of the ``result`` object, so an analysis added later
gets sensible tables without code here: top-level scalars (and small nested objects such
as ``chi2``) form one ``result`` table of statistic/value pairs; a list of objects
(``coefficients``, ``per_site``, ``history``) is a table of its own; an object of objects
(``variables``, ``groups``, ``batches``) is a table keyed by its member names, in long form
when the members hold lists (Kaplan–Meier curves); a list of lists is a matrix labelled
from its siblings (``rows``/``columns``, ``variables``); lists of numbers of one length
side by side (``probabilities`` and ``values``). Histograms get their bins as one table;
a trained model gets tables of its own (:mod:`coordinator.web.tables_train`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from coordinator.web.table import Cell, Table
from coordinator.web.tables_train import training_tables

NAME_LISTS = ("variables", "new_variables", "rows", "columns")


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _singular(key: str) -> str:
    if key.endswith(("ches", "shes", "sses", "xes")):
        return key[:-2]
    return key[:-1] if key.endswith("s") else key


def _title(key: str) -> str:
    return key.replace("_", " ").capitalize()


def _matrix_labels(
    key: str, result: Mapping[str, Any], variables: Sequence[str], shape: tuple[int, int]
) -> tuple[list[str], list[str]]:
    n, m = shape
    if key == "counts" and len(result.get("rows", [])) == n:
        return [str(r) for r in result["rows"]], [str(c) for c in result["columns"]]
    cols = list(variables) if len(variables) == m else [str(j + 1) for j in range(m)]
    if key == "matrix" and len(variables) == n:
        return list(variables), cols
    prefix = {"components": "PC", "centers": "cluster "}.get(key, "")
    return [f"{prefix}{i + 1}" for i in range(n)], cols


def _as_lists(inner: Mapping[str, Any]) -> tuple[list[Any], dict[str, list[Any]]]:
    """An index and aligned lists for a member's list fields, or its per-key objects."""
    lists = {k: v for k, v in inner.items() if isinstance(v, list)}
    if lists:
        return list(range(1, max(len(v) for v in lists.values()) + 1)), lists
    keyed = {k: v for k, v in inner.items() if isinstance(v, Mapping)}
    index: list[Any] = []
    for v in keyed.values():
        index += [k for k in v if k not in index]
    return index, {k: [v.get(i) for i in index] for k, v in keyed.items()}


def _long_rows(
    label: str, inner: Mapping[str, Any], variables: Sequence[str], columns: list[str]
) -> list[list[Cell]]:
    index, lists = _as_lists(inner)
    if len(variables) == len(index) and all(isinstance(i, int) for i in index):
        index = list(variables)
    scalars = {k: v for k, v in inner.items() if _scalar(v)}
    rows = []
    for i, name in enumerate(index):
        row: dict[str, Any] = {"": label, "index": name, **scalars}
        row.update({k: v[i] if i < len(v) and _scalar(v[i]) else None for k, v in lists.items()})
        rows.append([row.get(c) for c in columns])
    return rows


def _keyed_table(key: str, members: Mapping[str, Any], variables: Sequence[str]) -> Table:
    inner_keys: list[str] = []
    for inner in members.values():
        inner_keys += [k for k in inner if k not in inner_keys]
    head = _singular(key)
    nested = any(
        isinstance(v, list | Mapping) for inner in members.values() for v in inner.values()
    )
    if not nested:
        rows = [
            [label, *(inner.get(k) if _scalar(inner.get(k)) else None for k in inner_keys)]
            for label, inner in members.items()
        ]
        return Table(key, _title(key), [head, *inner_keys], rows)
    columns = ["", "index", *inner_keys]
    rows = [
        r
        for label, inner in members.items()
        for r in _long_rows(str(label), inner, variables, columns)
    ]
    return Table(key, _title(key), [head, "index", *inner_keys], rows)


def _record_cell(value: Any) -> Cell:
    """A record's field as a cell: a scalar, or a list of names joined (a merged point's
    ``sites``); anything else stays in the JSON."""
    if _scalar(value):
        return value  # type: ignore[no-any-return]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ", ".join(value)
    return None


def _records(key: str, value: list[Mapping[str, Any]]) -> Table:
    columns: list[str] = []
    for item in value:
        columns += [k for k in item if k not in columns]
    rows = [[_record_cell(item.get(c)) for c in columns] for item in value]
    return Table(key, _title(key), columns, rows)


def _matrix(
    key: str, value: list[Any], result: Mapping[str, Any], variables: Sequence[str]
) -> Table:
    width = max(len(line) for line in value if isinstance(line, list))
    labels, cols = _matrix_labels(key, result, variables, (len(value), width))
    rows = [
        [label, *(line if isinstance(line, list) else [None] * width)]
        for label, line in zip(labels, value, strict=True)
    ]
    return Table(key, _title(key), ["", *cols], rows)


@dataclass
class _Collected:
    pairs: list[list[Cell]]
    tables: list[Table]
    by_length: dict[int, list[str]]


def _collect(
    key: str,
    value: Any,
    result: Mapping[str, Any],
    variables: Sequence[str],
    into: _Collected,
    nested: bool = False,
) -> None:
    """File one field of the result under the pairs, a table, or the side-by-side lists."""
    if _scalar(value):
        into.pairs.append([key, value])
    elif isinstance(value, Mapping):
        if all(_scalar(v) for v in value.values()):
            into.pairs += [[f"{key} {k}", v] for k, v in value.items()]
        elif value and all(isinstance(v, Mapping) for v in value.values()):
            into.tables.append(_keyed_table(key, value, variables))
        elif not nested:  # one level down (``metrics.per_site``); deeper is in the JSON
            for k, v in value.items():
                if not isinstance(v, list):
                    _collect(f"{key}_{k}", v, result, variables, into, nested=True)
    elif not isinstance(value, list) or not value or nested:
        return
    elif all(isinstance(v, Mapping) for v in value):
        into.tables.append(_records(key, value))
    elif all(isinstance(v, list) or v is None for v in value) and any(value):
        into.tables.append(_matrix(key, value, result, variables))
    elif all(_scalar(v) for v in value):
        if all(isinstance(v, str) for v in value) and key in NAME_LISTS:
            into.pairs.append([key, ", ".join(value)])
        else:
            into.by_length.setdefault(len(value), []).append(key)


def tables_for(envelope: Mapping[str, Any], request: Mapping[str, Any]) -> list[Table]:
    """The tables of an ``ok`` envelope, plus a ``sites`` table of rows used per site."""
    result = envelope.get("result")
    if envelope.get("status") != "ok" or not isinstance(result, Mapping):
        return []
    if envelope.get("analysis") == "train":
        return training_tables(envelope, request)
    listed = result.get("variables") or request.get("variables") or []
    variables = [str(v) for v in listed if isinstance(v, str)]
    into = _Collected([], [], {})
    histogram = envelope.get("analysis") == "histogram" and "edges" in result
    if histogram:
        bins = zip(pairwise(result["edges"]), result["counts"], strict=False)
        into.tables.append(
            Table("bins", "Bins", ["from", "to", "count"], [[a, b, c] for (a, b), c in bins])
        )
    for key, value in result.items():
        if not (histogram and key in ("edges", "counts")):
            _collect(key, value, result, variables, into)
    for length, keys in into.by_length.items():
        rows = [[result[k][i] for k in keys] for i in range(length)]
        into.tables.append(Table(keys[0], ", ".join(_title(k) for k in keys), keys, rows))
    sites = envelope.get("sites") or {}
    site_rows: list[list[Cell]] = [[s, (v or {}).get("n")] for s, v in sites.items()]
    summary = [Table("result", "Result", ["statistic", "value"], into.pairs)] if into.pairs else []
    return [
        *summary,
        *into.tables,
        Table("sites", "Rows used per site", ["site", "n"], site_rows),
    ]


def find_table(envelope: Mapping[str, Any], request: Mapping[str, Any], name: str) -> Table | None:
    return next((t for t in tables_for(envelope, request) if t.name == name), None)
