"""Command-line start-up: ``fedpsy --help``, ``fedpsy node status DIR`` and
``fedpsy run --help`` against ``python -c "import typer"``, in the same run.

Each command runs as its own process (the installed ``fedpsy`` script, stdout to a pipe,
as a script would call it), rounds interleaved so that a machine getting busier slows
every command alike; the first rounds warm the file cache and are not counted. The node
is a 200-person synthetic site on SQLite. The table gives each command's median wall
time and its ratio to the median of ``import typer``. Target: ≤ 4× for ``--help`` and
``node status`` (the CLI imports heavy modules only in the commands that need them).
``FEDPSY_BENCH_CLI_ROUNDS`` (default 15) sets the counted rounds.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.report import emit
from fedpsy.synth import generate
from node.site import NodeSite

ROUNDS = int(os.environ.get("FEDPSY_BENCH_CLI_ROUNDS", "15"))
WARMUP = 2
TARGET = 4.0
BASELINE = "python -c 'import typer'"


def _commands(node: Path) -> dict[str, list[str]]:
    fedpsy = str(Path(sys.executable).with_name("fedpsy"))
    return {
        BASELINE: [sys.executable, "-c", "import typer"],
        "fedpsy --help": [fedpsy, "--help"],
        "fedpsy node status DIR": [fedpsy, "node", "status", str(node)],
        "fedpsy run --help": [fedpsy, "run", "--help"],
    }


def _seconds(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def run() -> None:
    with tempfile.TemporaryDirectory(prefix="fedpsy-bench-cli-") as tmp:
        root = Path(tmp)
        folder = next(iter(generate(1, 200, 7, root / "data", None).values()))
        with NodeSite.create(root / "node", "oslo", None) as node:
            node.ingest(folder)
        commands = _commands(root / "node")
        times: dict[str, list[float]] = {name: [] for name in commands}
        for round_ in range(WARMUP + ROUNDS):
            for name, command in commands.items():
                seconds = _seconds(command)
                if round_ >= WARMUP:
                    times[name].append(seconds)
    base = statistics.median(times[BASELINE])
    rows = []
    for name, seen in times.items():
        median = statistics.median(seen)
        ratio = median / base
        targeted = name in ("fedpsy --help", "fedpsy node status DIR")
        rows.append(
            {
                "command": name,
                "median s": median,
                "ratio": ratio,
                f"≤ {TARGET:g}×": ("yes" if ratio <= TARGET else "NO") if targeted else "",
            }
        )
    emit(
        "cli",
        "CLI start-up (wall time of a process, median)",
        ["command", "median s", "ratio", f"≤ {TARGET:g}×"],
        rows,
        [
            f"median of {ROUNDS} interleaved rounds after {WARMUP} warm-up rounds",
            f"ratio = command ÷ {BASELINE} (target ≤ {TARGET:g} for --help and node status)",
        ],
    )
