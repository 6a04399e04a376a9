"""Large node stores written in bulk, for the benchmarks that scale to a million persons.

``fedpsy synth`` and ``fedpsy node ingest`` validate every cell, which a benchmark of the
analyses need not wait for at a million persons. :func:`bulk_site` writes a node's store
tables directly — persons, their baseline visit, the observations the benchmarked
analyses read (``age``, ``panss_total``, ``madrs_total`` at baseline; ``trs``,
``relapse`` and ``time_to_relapse`` per person) — as one batch of ``ingest_batch``, then
builds the node's columnar layer as an ingest would. Values follow the dictionary's ranges;
``trs`` depends on age and PANSS through a logistic model, so a binomial GLM has something
to find; the first relapse comes after an exponential number of days (a yearly hazard of
0.3, higher with PANSS) and is censored at a follow-up of 30 days to 5 years (so every
interval of a Kaplan–Meier grid holds censored rows as well as events): ``relapse`` is
its event indicator and ``time_to_relapse`` the day of the relapse or of the end of
follow-up, as the node derives them from an event table.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Connection, Table, insert

from bench.consortium import Site
from node.data.columnar import refresh_columnar
from node.site import NodeSite
from node.store import tables as t
from node.store.tables import PERSON_LEVEL

CHUNK = 200_000
"""Rows per insert statement batch."""


def _values(persons: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    age = rng.uniform(18, 80, persons).round(1)
    panss = np.clip(rng.normal(75, 15, persons), 30, 210).round()
    madrs = np.clip(rng.normal(22 + 0.05 * age, 7), 0, 60).round()
    madrs[rng.random(persons) < 0.1] = np.nan
    risk = 1.0 / (1.0 + np.exp(-(-2.0 + 0.015 * (age - 45) + 0.03 * (panss - 75))))
    hazard = 0.3 / 365.25 * np.exp(0.02 * (panss - 75))
    relapse_day = 1.0 + np.floor(rng.exponential(1.0, persons) / hazard)
    followup = rng.integers(30, 1826, persons).astype(float)
    return {
        "age": age,
        "panss_total": panss,
        "madrs_total": madrs,
        "trs": (rng.random(persons) < risk).astype(float),
        "relapse": (relapse_day <= followup).astype(float),
        "time_to_relapse": np.minimum(relapse_day, followup),
        "sex": rng.choice(np.array(["F", "M"]), persons),
        "birth_year": rng.integers(1945, 2007, persons),
        "primary_diagnosis": rng.choice(np.array(["F20", "F25", "F31", "F32"]), persons),
    }


def _insert(
    conn: Connection, table: Table, columns: list[str], rows: list[tuple[Any, ...]]
) -> None:
    """Insert ``rows`` through the driver (SQLite's ``executemany``), chunk by chunk."""
    statement = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    )
    for start in range(0, len(rows), CHUNK):
        conn.exec_driver_sql(statement, rows[start : start + CHUNK])


def bulk_site(root: Path, name: str, persons: int, seed: int = 7) -> tuple[Site, float, float]:
    """A node directory under ``root`` holding ``persons`` persons; returns the site, the
    seconds writing the store and the seconds building the columnar layer."""
    values = _values(persons, seed)
    ids = [f"{name[:3].upper()}-{i:07d}" for i in range(persons)]
    node = NodeSite.create(root / name, name, None)  # SQLite
    try:
        start = time.perf_counter()
        with node.engine.begin() as conn:
            conn.execute(
                insert(t.ingest_batch).values(
                    batch_id=1,
                    file_name="bulk",
                    sha256="0" * 64,
                    table_name="observations",
                    rows=persons,
                    outcome="loaded",
                    loaded_at="2026-01-01T00:00:00+00:00",
                    report="",
                )
            )
            person_rows = [
                (pid, str(s), int(b), str(d), i, 1)
                for i, (pid, s, b, d) in enumerate(
                    zip(
                        ids,
                        values["sex"],
                        values["birth_year"],
                        values["primary_diagnosis"],
                        strict=True,
                    )
                )
            ]
            person_cols = ["person_id", "sex", "birth_year", "primary_diagnosis", "row_id"]
            _insert(conn, t.person, [*person_cols, "batch_id"], person_rows)
            _insert(
                conn,
                t.visit,
                ["person_id", "label", "day", "batch_id"],
                [(pid, "baseline", 0, 1) for pid in ids],
            )
            columns = ["variable", "visit", "person_id", "value_num", "value_text", "batch_id"]
            for code, visit in (
                ("age", "baseline"),
                ("madrs_total", "baseline"),
                ("panss_total", "baseline"),
                ("trs", PERSON_LEVEL),
                ("relapse", PERSON_LEVEL),
                ("time_to_relapse", PERSON_LEVEL),
            ):
                column = values[code]
                rows = [
                    (code, visit, pid, float(v), None, 1)
                    for pid, v in zip(ids, column, strict=True)
                    if not np.isnan(v)
                ]
                _insert(conn, t.observation, columns, rows)
        stored = time.perf_counter() - start
        start = time.perf_counter()
        refresh_columnar(node.engine, name, node.dictionary, node.dir.columnar)
        built = time.perf_counter() - start
    finally:
        node.close()
    return Site(name, root / name, persons), stored, built


__all__ = ["bulk_site"]
