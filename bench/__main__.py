"""Run every benchmark (or those named): ``python -m bench [ingest secagg …]``."""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = [
    "ingest",
    "node_steps",
    "coordinator",
    "scale",
    "harmonization",
    "secagg",
    "round_trips",
    "training",
    "load",
    "cli",
]


def main(names: list[str]) -> None:
    for name in names or BENCHMARKS:
        importlib.import_module(f"bench.{name}").run()


if __name__ == "__main__":
    main(sys.argv[1:])
