"""Keeping derived values in the node's store: observation rows plus their definitions.

A committed run (see :mod:`node.data.staging`) becomes ordinary data of the node:

1. :func:`save_harmonized` writes one ``observation`` row per person and new variable
   (``<code>_combat``, ``<prefix>_pc1``, ``<prefix>_cluster``, …) at the run's visit,
   replacing earlier values of those variables at that visit (an earlier run's rows that
   this run did not cover are removed, so one variable never mixes two runs), as one
   batch of ``ingest_batch`` (table ``derived``, outcome ``derived``): the store's version
   changes, so the columnar layer (:mod:`node.data.columnar`) is rebuilt;
2. :func:`write_derived_dictionary` writes the variables' definitions into the extension
   file ``derived.yaml`` of the node's ``dictionary/`` folder (replacing earlier
   definitions of the same codes), checked against the shipped dictionary and the node's
   other extensions.

How the node service uses them — it wraps its store frame source so that staged runs can be
committed, and keeps each committed run::

    self.frames = DerivedFrameSource(StoreFrameSource(engine, site, dictionary), self._keep)

    def _keep(self, derived: DerivedValues) -> None:
        save_harmonized(self.node.engine, derived.run_id, derived.values,
                        visit=derived.visit, variables=derived.variables)
        path = write_derived_dictionary(self.node.dir.dictionary, derived.variables,
                                        others=<the node's other extension files>)
        # record path.name in node.toml's dictionary_extensions (once), reload the node's
        # dictionary and rebuild the StoreFrameSource with it, so /v1/info reports the new
        # variables' hashes and later steps can read them.

The definitions carry the run id in their description and are identical at every site of
the run (the coordinator wrote them), so the coordinator's compatibility check accepts the
new variables in later analyses once it has refreshed the nodes' variable hashes. They are
declared ``source: observation`` so that re-deriving after an ingest leaves them alone; a
later ingest of raw values does not update them (run the analysis again).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from sqlalchemy import Connection, Engine, delete, func, insert, select, update

from node.store import tables as t
from node.store.locking import locked
from schemas.dictionary import load_dictionary
from schemas.dictionary.loader import parse_dictionary_text
from schemas.dictionary.model import Variable
from schemas.errors import ErrorCode, FedpsyError

logger = logging.getLogger(__name__)

DERIVED_FILE = "derived.yaml"
"""The extension file (in the node's ``dictionary/`` folder) holding derived variables."""


def save_harmonized(
    engine: Engine,
    run_id: str,
    values: pd.DataFrame,
    *,
    visit: str,
    variables: Sequence[Variable],
) -> int:
    """Write ``values`` (index ``row_id``, a column per variable) as observations at
    ``visit``; returns the number of values written (missing values are not written).

    Earlier values of these variables at ``visit`` are replaced in the same transaction.
    """
    kinds = {v.code: v.type for v in variables}
    unknown = [c for c in values.columns if c not in kinds]
    if unknown:
        raise FedpsyError(
            f"run {run_id}: columns {unknown} have no definition", code=ErrorCode.INTERNAL
        )
    codes = [str(c) for c in values.columns]
    records: list[dict[str, object]] = []
    with locked(engine, t.observation) as conn:
        batch_id = _derived_batch(conn, run_id)
        found = conn.execute(select(t.person.c.row_id, t.person.c.person_id))
        ids = {int(row_id): str(person_id) for row_id, person_id in found}
        missing_ids = [int(i) for i in values.index if int(i) not in ids]
        if missing_ids:
            raise FedpsyError(
                f"run {run_id}: {len(missing_ids)} rows are not persons of this store",
                code=ErrorCode.INTERNAL,
            )
        for code in codes:
            column = values[code]
            for row_id, value in zip(values.index, column.to_numpy(dtype=object), strict=True):
                if value is None or (isinstance(value, float) and np.isnan(value)):
                    continue
                text = kinds[code] == "categorical"
                records.append(
                    {
                        "person_id": ids[int(row_id)],
                        "visit": visit,
                        "variable": code,
                        "value_num": None if text else float(value),
                        "value_text": str(value) if text else None,
                        "batch_id": batch_id,
                    }
                )
        conn.execute(
            delete(t.observation).where(
                t.observation.c.variable.in_(codes), t.observation.c.visit == visit
            )
        )
        if records:
            conn.execute(insert(t.observation), records)
        conn.execute(
            update(t.ingest_batch)
            .where(t.ingest_batch.c.batch_id == batch_id)
            .values(rows=len(records))
        )
    logger.info("run %s: kept %d values of %s at visit %s", run_id, len(records), codes, visit)
    return len(records)


def _derived_batch(conn: Connection, run_id: str) -> int:
    """A new ``ingest_batch`` row for the values of run ``run_id``; returns its id."""
    b = t.ingest_batch.c
    batch_id = int(conn.execute(select(func.max(b.batch_id))).scalar() or 0) + 1
    conn.execute(
        insert(t.ingest_batch).values(
            batch_id=batch_id,
            file_name=f"derived run {run_id}",
            sha256=hashlib.sha256(run_id.encode("utf-8")).hexdigest(),
            table_name="derived",
            rows=0,
            outcome="derived",
            loaded_at=datetime.now(UTC).isoformat(timespec="seconds"),
            report="",
        )
    )
    return batch_id


def write_derived_dictionary(
    folder: Path, variables: Sequence[Variable], *, others: Sequence[Path] = ()
) -> Path:
    """Add (or replace) ``variables`` in ``folder/derived.yaml``; returns the file's path.

    The result is loaded with the shipped dictionary and ``others`` (the node's other
    extension files) before it replaces the old file, so a code that clashes with any of
    them is refused (``dictionary_clash``) and the old file is left as it was.
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / DERIVED_FILE
    kept: dict[str, dict[str, object]] = {}
    if path.exists():
        for old in load_derived(path):
            kept[old.code] = _entry(old)
    for variable in variables:
        kept[variable.code] = _entry(variable)
    text = yaml.safe_dump(
        {"group": "derived", "variables": list(kept.values())},
        sort_keys=False,
        allow_unicode=True,
    )
    staged = folder / f".{DERIVED_FILE}.new"
    staged.write_text(text, encoding="utf-8")
    try:
        load_dictionary([*others, staged])
    except FedpsyError:
        staged.unlink()
        raise
    staged.replace(path)
    return path


def load_derived(path: Path) -> list[Variable]:
    """The variables of a ``derived.yaml`` file."""
    return parse_dictionary_text(path.read_text(encoding="utf-8"), str(path))


def _entry(variable: Variable) -> dict[str, object]:
    data = variable.model_dump(mode="json", exclude_defaults=True)
    data["code"] = variable.code
    data["label"] = variable.label
    data["type"] = variable.type
    return data


__all__ = ["DERIVED_FILE", "load_derived", "save_harmonized", "write_derived_dictionary"]
