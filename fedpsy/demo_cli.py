"""``fedpsy demo``: the command; the story itself is :mod:`fedpsy.demo`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fedpsy.errors import cli_errors


@cli_errors
def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="Working folder for the demo.")] = Path(
        "demo-consortium"
    ),
    persons: Annotated[int, typer.Option(min=50, help="Average persons per site.")] = 400,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
    serve: Annotated[
        bool, typer.Option("--serve", help="After the tour, serve the dashboard until Ctrl-C.")
    ] = False,
    port: Annotated[int, typer.Option(help="Dashboard port (with --serve).")] = 8700,
) -> None:
    """The whole local story: 3 synthetic sites, 3 nodes, a coordinator, a tour."""
    # deferred: the demo loads every part of fedpsy; other commands need not
    from fedpsy.demo import run_demo

    run_demo(out_dir, persons, seed, serve, port)
