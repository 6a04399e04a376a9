"""The node's rows as frames, read from its columnar layer (:mod:`node.data.columnar`).

The same frames as :class:`~node.data.frame_store.StoreFrameSource` gives — one row per
person at the visit in the cohort, indexed by ``row_id``, typed as the
:class:`~node.data.source.FrameSource` protocol says — but read column by column from the
visit's memory-mapped Arrow table: only the variables a step asks for and those its
cohort tests are touched, the cohort is one vectorized mask, and nothing is read row by
row. Each read first compares the store's version with the layer's (one small query),
so a layer older than the store is never read; a process keeps the current layer of each
visit in memory (the file's pages, and the columns it converted) until the store changes.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from node.data.checks import StoreChecks
from node.data.cohort import cohort_mask
from node.data.columnar import Layer, open_layer, refresh_columnar
from node.data.domain import site_probe
from node.data.watch import note_rows
from schemas.cohort import Cohort
from schemas.dictionary import Dictionary

KEPT_PROBES = 64
"""Probe frames a source keeps (one per set of variables asked for)."""


class ColumnarFrameSource(StoreChecks):
    """A FrameSource over the node's columnar layer, kept current with its store."""

    def __init__(
        self,
        engine: Engine,
        site: str,
        dictionary: Dictionary,
        folder: Path,
        min_label_count: int = 1,
        split_salt: bytes = b"",
        dominance_percent: float = 0.0,
    ) -> None:
        super().__init__(engine, site, dictionary, min_label_count, split_salt, dominance_percent)
        self._folder = folder
        self._layers: dict[str, Layer] = {}
        self._probes: dict[tuple[str, ...], pd.DataFrame] = {}
        self._lock = threading.Lock()

    def frame(self, variables: Sequence[str], visit: str, cohort: Cohort | None) -> pd.DataFrame:
        wanted = list(dict.fromkeys(variables))
        needed = set(wanted) | (cohort.variables() if cohort is not None else set())
        needed.discard("site")
        for code in sorted(needed):
            self._dictionary.get(code)  # unknown variables: a clear error naming them
        layer = self.layer(visit)
        columns = {code: self._column(layer, code) for code in sorted(needed)}
        index = pd.Index(layer.row_ids, name="row_id")
        rows = pd.DataFrame(columns, index=index)
        if "site" in wanted or "site" in (cohort.variables() if cohort is not None else ()):
            site = np.zeros(len(rows), dtype=np.int8)
            rows["site"] = pd.Categorical.from_codes(site, dtype=pd.CategoricalDtype([self._site]))
        selected = rows[cohort_mask(rows, cohort).to_numpy()]
        note_rows(len(selected))
        return selected.loc[:, wanted].copy()

    def domain(self, variables: Sequence[str]) -> pd.DataFrame:
        """A probe frame over the dictionary's declared ranges of ``variables`` (made once
        per set of variables: it depends on their definitions only)."""
        key = tuple(dict.fromkeys(variables))
        if key not in self._probes:
            if len(self._probes) >= KEPT_PROBES:  # the oldest goes
                del self._probes[next(iter(self._probes))]
            self._probes[key] = site_probe(self._dictionary, self._site, key)
        return self._probes[key].copy()

    def version(self, visit: str) -> str | None:
        """The store's version and the dictionary hash the current layer of ``visit`` was
        built under (None while the store keeps changing under the builder)."""
        layer = self.layer(visit)
        return f"{layer.version} {layer.dictionary_hash}" if layer.version else None

    def layer(self, visit: str) -> Layer:
        """The current layer of ``visit`` (built when the store has changed since)."""
        with self._lock:
            layer = open_layer(
                self._engine,
                self._site,
                self._dictionary,
                visit,
                self._folder,
                self._layers.get(visit),
            )
            if layer.version:  # a layer the store changed under is used once, not kept
                self._layers[visit] = layer
            return layer

    def refresh(self, visits: list[str] | None = None) -> None:
        """Build the layer of ``visits`` (all when None) now, after the store changed."""
        with self._lock:
            self._layers.clear()
            refresh_columnar(self._engine, self._site, self._dictionary, self._folder, visits)

    def _column(self, layer: Layer, code: str) -> pd.Series:
        if code in layer.converted:
            return layer.converted[code]
        var = self._dictionary.get(code)
        index = pd.Index(layer.row_ids, name="row_id")
        column: pd.Series
        if var.type != "categorical":
            column = pd.Series(layer.numeric(code), index=index, name=code)
        else:
            codes, labels = layer.labels(code)
            if var.categories is None:  # open: labels held by too few persons are withheld
                held = np.bincount(codes[codes >= 0], minlength=len(labels))
                keep = sorted(
                    (lab, i) for i, lab in enumerate(labels) if held[i] >= self._min_label_count
                )
                categories = [lab for lab, _ in keep]
                recode = np.full(len(labels) + 1, -1, dtype=np.int64)
                for new, (_, old) in enumerate(keep):
                    recode[old] = new
                codes = recode[codes]  # -1 indexes the final -1
            else:
                categories = [str(c) for c in var.categories]
                position = {lab: i for i, lab in enumerate(categories)}
                recode = np.array([position[lab] for lab in labels] + [-1], dtype=np.int64)
                codes = recode[codes]
            column = pd.Series(
                pd.Categorical.from_codes(codes, dtype=pd.CategoricalDtype(categories)),
                index=index,
                name=code,
            )
        layer.converted[code] = column
        return column


__all__ = ["ColumnarFrameSource"]
