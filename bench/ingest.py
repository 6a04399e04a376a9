"""Ingestion throughput versus a plain ``DataFrame.to_sql`` of the same rows, same run.

A 100,000-person synthetic site (``fedpsy synth --sites 1 --persons 100000``) is loaded
from its flat ``observations.csv`` into a fresh store, validating every cell, on SQLite and
PostgreSQL. The baseline reads the same file with pandas, melts it to the same long
observation rows and writes them with ``to_sql`` (no validation). The ratio is
fedpsy's values/s over the baseline's. Peak memory is measured in a child process for two
file sizes to show that it does not grow with the file (rows are streamed in chunks).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from bench.report import emit

PERSONS = int(os.environ.get("FEDPSY_BENCH_PERSONS", "100000"))
PG_URL = os.environ.get("FEDPSY_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _fresh_url(backend: str, tmp: Path) -> tuple[str, Any]:
    if backend == "sqlite":
        return f"sqlite:///{tmp / f'{uuid.uuid4().hex}.sqlite'}", None
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))

    def drop() -> None:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))

    return f"{PG_URL}?options=-csearch_path%3D{schema}", drop


def _child(code: str, *args: str) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter; it prints one JSON line (with peak RSS)."""
    prog = (
        code + "\nimport resource, json\nRESULT['max_rss_mb'] = resource.getrusage("
        "resource.RUSAGE_SELF).ru_maxrss / 1024\nprint(json.dumps(RESULT))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", prog, *args], check=True, capture_output=True, text=True
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


FEDPSY = """
import sys, time
from pathlib import Path
from node.store.engine import open_engine
from node.store.schema import upgrade
from node.ingest import ingest
from schemas.dictionary import load_dictionary
url, csv = sys.argv[1], Path(sys.argv[2])
engine = open_engine(url); upgrade(engine)
start = time.perf_counter()
report = ingest(engine, load_dictionary(), csv, derive=False)
RESULT = {"seconds": time.perf_counter() - start, "values": report.files[0].values}
"""

BASELINE = """
import sys, time
import pandas as pd
from sqlalchemy import create_engine
url, csv = sys.argv[1], sys.argv[2]
engine = create_engine(url)
start = time.perf_counter()
values = 0
for chunk in pd.read_csv(csv, chunksize=50000):
    long = chunk.melt(id_vars=["person_id", "visit"], var_name="variable",
                      value_name="value").dropna(subset=["value"])
    num = pd.to_numeric(long["value"], errors="coerce")
    long = long.assign(value_num=num, value_text=long["value"].where(num.isna()))
    long = long.drop(columns="value")
    long.to_sql("observation", engine, if_exists="append", index=False, chunksize=5000)
    values += len(long)
RESULT = {"seconds": time.perf_counter() - start, "values": values}
"""


def _site(tmp: Path, persons: int) -> Path:
    from fedpsy.synth import generate

    folder = generate(1, persons, 11, tmp / f"synth{persons}", None)
    return next(iter(folder.values())) / "observations.csv"


def run() -> None:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        csv = _site(tmp, PERSONS)
        for backend in ("sqlite", "postgresql"):
            url, drop = _fresh_url(backend, tmp)
            ours = _child(FEDPSY, url, str(csv))
            if drop:
                drop()
            url, drop = _fresh_url(backend, tmp)
            base = _child(BASELINE, url, str(csv))
            if drop:
                drop()
            ours_rate = ours["values"] / ours["seconds"]
            base_rate = base["values"] / base["seconds"]
            rows.append(
                {
                    "backend": backend,
                    "persons": PERSONS,
                    "values": ours["values"],
                    "fedpsy values/s": ours_rate,
                    "to_sql values/s": base_rate,
                    "ratio": ours_rate / base_rate,
                    "fedpsy peak MB": ours["max_rss_mb"],
                }
            )
        small = _site(tmp, PERSONS // 4)
        url, _ = _fresh_url("sqlite", tmp)
        quarter = _child(FEDPSY, url, str(small))
        rows.append(
            {
                "backend": "sqlite",
                "persons": PERSONS // 4,
                "values": quarter["values"],
                "fedpsy values/s": quarter["values"] / quarter["seconds"],
                "fedpsy peak MB": quarter["max_rss_mb"],
            }
        )
    emit(
        "ingest",
        "Ingestion throughput (validated) vs DataFrame.to_sql, same run",
        [
            "backend",
            "persons",
            "values",
            "fedpsy values/s",
            "to_sql values/s",
            "ratio",
            "fedpsy peak MB",
        ],
        rows,
        [
            "ratio = fedpsy values/s ÷ to_sql values/s (target ≥ 0.5)",
            "peak MB at ¼ of the persons vs full size shows memory does not grow with the file",
        ],
    )
