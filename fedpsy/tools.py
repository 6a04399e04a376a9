"""``fedpsy synth``: write a synthetic multi-site consortium in the ingest formats."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from fedpsy.errors import cli_errors

out = Console(highlight=False)


@cli_errors
def synth(
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder (one subfolder a site).")],
    sites: Annotated[int, typer.Option(min=1, max=50, help="Number of sites.")] = 3,
    persons: Annotated[int, typer.Option(min=10, help="Average persons per site.")] = 400,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same files).")] = 7,
) -> None:
    """Write a realistic synthetic multi-site consortium in the ingest formats."""
    # deferred: the generator (numpy, pandas) loads only in the command that runs it
    from fedpsy.progress import progress_bar
    from fedpsy.synth import generate

    with progress_bar("synthesizing persons", sites * persons) as tick:
        folders = generate(sites, persons, seed, out_dir, tick)
    for site, folder in folders.items():
        out.print(f"{site}: {folder}")
