"""Ingestion, end to end as a site runs it, versus a plain pandas load of the same file.

A synthetic site (``fedpsy synth --sites 1 --persons N``) has its flat
``observations.csv`` loaded by ``fedpsy node ingest NODE_DIR observations.csv`` — the
console script in its own process, timed from start to exit: start-up, every cell
validated, the rows written, derived variables recomputed, the transaction committed, the
columnar layer built — into a fresh store, on SQLite and PostgreSQL. The baseline, in its
own process too, is the plain pandas load of the same file: ``read_csv``, ``melt`` to the
long table (person, visit, variable, value; empty cells dropped) and ``to_sql`` into a new
SQLite file, without validation, keys or derivations. ratio = fedpsy's values/s ÷ the
baseline's, wall clock; the CPU seconds of each process are listed too (on a shared
machine they move less than wall time). Peak RSS of the ingest process at two file sizes
shows whether memory grows with the file.

:func:`ingest_persons` times the ingest of a whole synthetic site of N persons (every
table) the same way, for tables that relate cost to site size.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from bench.report import emit

PERSONS = int(os.environ.get("FEDPSY_BENCH_PERSONS", "20000"))
PG_URL = os.environ.get("FEDPSY_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
FEDPSY = str(Path(sys.executable).parent / "fedpsy")

BASELINE = """
import sys
import pandas as pd
from sqlalchemy import create_engine
frame = pd.read_csv(sys.argv[1])
long = frame.melt(id_vars=["person_id", "visit"], var_name="variable", value_name="value")
long = long.dropna(subset=["value"])
long.to_sql("observation", create_engine(sys.argv[2]), if_exists="append", index=False)
print(len(long))
"""


@dataclass(frozen=True)
class Run:
    """One process: wall and CPU seconds, peak RSS, what it printed."""

    seconds: float
    cpu_seconds: float
    peak_mb: float
    stdout: str


POLL = 0.01
"""Seconds between two readings of a child's peak RSS."""


def _peak_kb(pid: int) -> int | None:
    """The process's own peak resident memory so far (``VmHWM``), None once it exited."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    line = next((x for x in status.splitlines() if x.startswith("VmHWM:")), None)
    return None if line is None else int(line.split()[1])


def measure(args: list[str]) -> Run:
    """Run ``args`` as a child process; its wall time, CPU time and peak RSS.

    The peak is the child's ``VmHWM``, read every :data:`POLL` seconds until it exits,
    not ``ru_maxrss``: Linux carries the high-water mark of the memory a process had
    before its ``exec`` into ``ru_maxrss``, which for a child of this process is this
    process's own peak (a bench that generated a large site would see it in every child).
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(args, stdout=out, stderr=err, text=True)  # returns after exec
        peak_kb = 0
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid != 0:
                break
            peak_kb = max(peak_kb, _peak_kb(proc.pid) or 0)
            time.sleep(POLL)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        printed, problem = out.read(), err.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): {problem[-500:]}")
    peak = peak_kb / 1024 if peak_kb else float("nan")  # NaN: it exited before a reading
    return Run(seconds, usage.ru_utime + usage.ru_stime, peak, printed)


def fresh_store(backend: str, tmp: Path) -> tuple[str | None, Callable[[], None]]:
    """A store URL for a new node (None = SQLite in its directory) and how to drop it."""
    if backend == "sqlite":
        return None, lambda: None
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))

    def drop() -> None:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()

    return f"{PG_URL}?options=-csearch_path%3D{schema}", drop


def synth_site(root: Path, persons: int, seed: int = 11) -> Path:
    """The folder of one synthetic site of ``persons`` persons."""
    out = root / f"synth{persons}"
    args = ["synth", "--sites", "1", "--persons", str(persons), "--seed", str(seed)]
    subprocess.run(
        [FEDPSY, *args, "--out", str(out)],
        check=True,
        capture_output=True,
    )
    return next(p for p in out.iterdir() if p.is_dir())


def baseline_site(root: Path, persons: int, seed: int = 11) -> Path:
    """A folder holding the person table and the baseline visit's observations of one
    synthetic site of ``persons`` persons (:data:`bench.consortium.BASELINE_COLUMNS` and the
    PANSS items, as :func:`bench.consortium._slim` keeps them): generated chunk by chunk
    with :func:`fedpsy.synth.tables.make_chunk` from the random streams ``fedpsy synth
    --sites 1`` uses (the same persons and values as its site's baseline rows) and appended
    to the CSV files, so memory stays that of one chunk and no other table or visit is
    written. Valid ingest input."""
    # deferred: only this helper needs the generator
    import numpy as np

    from bench.consortium import BASELINE_COLUMNS
    from fedpsy.synth import CHUNK_PERSONS
    from fedpsy.synth.panss import ITEMS
    from fedpsy.synth.sites import make_sites
    from fedpsy.synth.tables import make_chunk
    from fedpsy.synth.writer import TABLES, TableWriter

    (site,) = make_sites(1, persons, seed)
    out = root / f"baseline{persons}"
    out.mkdir(parents=True)
    columns = (*BASELINE_COLUMNS, *ITEMS)
    person = TableWriter(out / "person.csv", TABLES["person"])
    observations = TableWriter(out / "observations.csv", columns)
    try:
        for index, start in enumerate(range(0, persons, CHUNK_PERSONS)):
            n = min(CHUNK_PERSONS, persons - start)
            chunk = make_chunk(np.random.default_rng([seed, site.index, index]), site, start, n)
            person.append(chunk.tables["person"])
            flat = chunk.tables["observations"]
            baseline = flat["visit"] == "baseline"
            observations.append({c: flat[c][baseline] for c in columns})
    finally:
        person.close()
        observations.close()
    return out


def ingest_cli(node_dir: Path, path: Path, database_url: str | None = None) -> Run:
    """``fedpsy node init`` (untimed), then ``fedpsy node ingest`` of ``path``, timed."""
    init = [FEDPSY, "node", "init", str(node_dir), "--site", "bench"]
    subprocess.run(
        init + ([] if database_url is None else ["--database-url", database_url]),
        check=True,
        capture_output=True,
    )
    return measure([FEDPSY, "node", "ingest", str(node_dir), str(path)])


def ingest_persons(persons: int, root: Path, backend: str = "sqlite") -> dict[str, Any]:
    """Ingest a whole synthetic site of ``persons`` persons (every table, one transaction)
    through the CLI: seconds, CPU seconds, peak RSS (MB) and the node directory, whose
    store stays for what is measured next (on PostgreSQL its schema stays too)."""
    folder = synth_site(root, persons)
    url, _ = fresh_store(backend, root)
    node_dir = root / f"node{persons}-{backend}"
    run = ingest_cli(node_dir, folder, url)
    return {
        "persons": persons,
        "backend": backend,
        "ingest s": run.seconds,
        "ingest cpu s": run.cpu_seconds,
        "ingest peak MB": run.peak_mb,
        "node_dir": node_dir,
    }


def loaded_values(stdout: str) -> int:
    """The value count ``fedpsy node ingest`` prints for a flat file."""
    line = next(x for x in stdout.splitlines() if " values from " in x)
    return int(line.split(": ", 1)[1].split(" values", 1)[0].replace(",", ""))


def derived_values(stdout: str) -> int:
    """The derived values ``fedpsy node ingest`` says it recomputed."""
    line = next(x for x in stdout.splitlines() if x.startswith("derived values recomputed"))
    return int(line.rsplit(": ", 1)[1].replace(",", ""))


def _compare(tmp: Path, csv: Path, backend: str) -> dict[str, Any]:
    url, drop = fresh_store(backend, tmp)
    try:
        ours = ingest_cli(tmp / f"node-{uuid.uuid4().hex[:8]}", csv, url)
    finally:
        drop()
    base_url = f"sqlite:///{tmp / f'{uuid.uuid4().hex}.sqlite'}"
    base = measure([sys.executable, "-c", BASELINE, str(csv), base_url])
    values = loaded_values(ours.stdout)
    base_values = int(base.stdout.strip().splitlines()[-1])
    return {
        "backend": backend,
        "values": values,
        "fedpsy s": ours.seconds,
        "pandas s": base.seconds,
        "ratio": (values / ours.seconds) / (base_values / base.seconds),
        "fedpsy cpu s": ours.cpu_seconds,
        "pandas cpu s": base.cpu_seconds,
        "cpu ratio": (values / ours.cpu_seconds) / (base_values / base.cpu_seconds),
        "fedpsy peak MB": ours.peak_mb,
        "pandas peak MB": base.peak_mb,
    }


def run() -> None:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        for persons in (PERSONS // 2, PERSONS):
            csv = synth_site(tmp, persons) / "observations.csv"
            backends = ("sqlite", "postgresql") if persons == PERSONS else ("sqlite",)
            for backend in backends:
                rows.append({"persons": persons, **_compare(tmp, csv, backend)})
    small, large = rows[0], rows[1]
    emit(
        "ingest",
        "Ingestion end to end (fedpsy node ingest) vs a plain pandas load, same run",
        [
            "persons",
            "backend",
            "values",
            "fedpsy s",
            "pandas s",
            "ratio",
            "fedpsy cpu s",
            "pandas cpu s",
            "cpu ratio",
            "fedpsy peak MB",
            "pandas peak MB",
        ],
        rows,
        [
            "ratio = fedpsy values/s ÷ pandas values/s, wall clock of each process "
            "(start-up included); target ≥ 1",
            "pandas = read_csv + melt + to_sql into SQLite, no validation, keys or derivations",
            f"peak RSS {small['fedpsy peak MB']:.0f} MB at {small['values']:,} values, "
            f"{large['fedpsy peak MB']:.0f} MB at {large['values']:,} "
            f"({large['values'] / small['values']:.1f}× the values)",
        ],
    )
