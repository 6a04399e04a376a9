"""Result envelopes as tables: what the result page shows and what the CSV downloads hold.

Tables are derived from the shape of the ``result`` object, so an analysis added later
gets sensible tables without code here: top-level scalars (and small nested objects such
as ``chi2``) form one ``result`` table of statistic/value pairs; a list of objects
(``coefficients``, ``per_site``, ``history``) is a table of its own; an object of objects
(``variables``, ``groups``, ``batches``) is a table keyed by its member names, in long form
when the members hold lists (Kaplan–Meier curves); a list of lists is a matrix labelled
from its siblings (``rows``/``columns``, ``variables``); lists of numbers of one length
side by side (``probabilities`` and ``values``). Histograms get their bins as one table.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

Cell = str | int | float | bool | None


@dataclass(frozen=True)
class Table:
    name: str
    title: str
    columns: list[str]
    rows: list[list[Cell]]

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self.columns)
        writer.writerows(self.rows)
        return out.getvalue()


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


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


def _long_rows(
    label: str, inner: Mapping[str, Any], variables: Sequence[str], columns: list[str]
) -> list[list[Cell]]:
    lists = {k: v for k, v in inner.items() if isinstance(v, list)}
    scalars = {k: v for k, v in inner.items() if _scalar(v)}
    length = max((len(v) for v in lists.values()), default=0)
    index = list(variables) if len(variables) == length else list(range(1, length + 1))
    rows = []
    for i in range(length):
        row: dict[str, Any] = {"": label, "index": index[i], **scalars}
        row.update({k: v[i] if i < len(v) and _scalar(v[i]) else None for k, v in lists.items()})
        rows.append([row.get(c) for c in columns])
    return rows


def _keyed_table(key: str, members: Mapping[str, Any], variables: Sequence[str]) -> Table:
    inner_keys: list[str] = []
    for inner in members.values():
        inner_keys += [k for k in inner if k not in inner_keys]
    head = key[:-1] if key.endswith("s") else key
    has_lists = any(isinstance(v, list) for inner in members.values() for v in inner.values())
    if not has_lists:
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


def tables_for(envelope: Mapping[str, Any], request: Mapping[str, Any]) -> list[Table]:
    """The tables of an ``ok`` envelope, plus a ``sites`` table of rows used per site."""
    result = envelope.get("result")
    if envelope.get("status") != "ok" or not isinstance(result, Mapping):
        return []
    variables = [
        str(v)
        for v in result.get("variables") or request.get("variables") or []
        if isinstance(v, str)
    ]
    pairs: list[list[Cell]] = []
    out: list[Table] = []
    by_length: dict[int, list[str]] = {}
    if envelope.get("analysis") == "histogram" and "edges" in result:
        rows = [
            [a, b, c]
            for (a, b), c in zip(pairwise(result["edges"]), result["counts"], strict=False)
        ]
        out.append(Table("bins", "Bins", ["from", "to", "count"], rows))
    for key, value in result.items():
        if _scalar(value):
            pairs.append([key, value])
        elif isinstance(value, Mapping) and all(_scalar(v) for v in value.values()):
            pairs += [[f"{key} {k}", v] for k, v in value.items()]
        elif isinstance(value, Mapping) and all(isinstance(v, Mapping) for v in value.values()):
            out.append(_keyed_table(key, value, variables))
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            columns: list[str] = []
            for item in value:
                columns += [k for k in item if k not in columns]
            out.append(
                Table(
                    key,
                    _title(key),
                    columns,
                    [
                        [item.get(c) if _scalar(item.get(c)) else None for c in columns]
                        for item in value
                    ],
                )
            )
        elif isinstance(value, list) and value and all(isinstance(v, list) for v in value):
            labels, cols = _matrix_labels(key, result, variables, (len(value), len(value[0])))
            out.append(
                Table(
                    key,
                    _title(key),
                    ["", *cols],
                    [[label, *line] for label, line in zip(labels, value, strict=True)],
                )
            )
        elif isinstance(value, list) and value and all(_scalar(v) for v in value):
            if key in ("edges", "counts") and envelope.get("analysis") == "histogram":
                continue
            if key in ("variables", "rows", "columns") and all(isinstance(v, str) for v in value):
                pairs.append([key, ", ".join(value)])
                continue
            by_length.setdefault(len(value), []).append(key)
    for length, keys in by_length.items():
        rows = [[result[k][i] for k in keys] for i in range(length)]
        out.append(Table(keys[0], ", ".join(_title(k) for k in keys), keys, rows))
    out.insert(0, Table("result", "Result", ["statistic", "value"], pairs))
    sites = envelope.get("sites") or {}
    out.append(
        Table(
            "sites",
            "Rows used per site",
            ["site", "n"],
            [[s, (v or {}).get("n")] for s, v in sites.items()],
        )
    )
    return out


def find_table(envelope: Mapping[str, Any], request: Mapping[str, Any], name: str) -> Table | None:
    return next((t for t in tables_for(envelope, request) if t.name == name), None)
