"""``fedpsy synth`` and ``fedpsy demo``: tools that are neither node nor coordinator."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from fedpsy.errors import cli_errors
from fedpsy.progress import progress_bar
from fedpsy.synth import generate
from node.site import NodeSite

out = Console(highlight=False)


@cli_errors
def synth(
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder (one subfolder a site).")],
    sites: Annotated[int, typer.Option(min=1, max=50, help="Number of sites.")] = 3,
    persons: Annotated[int, typer.Option(min=10, help="Average persons per site.")] = 400,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same files).")] = 7,
) -> None:
    """Write a realistic synthetic multi-site consortium in the ingest formats."""
    with progress_bar("synthesizing persons", sites * persons) as tick:
        folders = generate(sites, persons, seed, out_dir, tick)
    for site, folder in folders.items():
        out.print(f"{site}: {folder}")


@cli_errors
def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="Working folder for the demo.")] = Path(
        "demo-consortium"),
    persons: Annotated[int, typer.Option(min=50, help="Average persons per site.")] = 400,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
) -> None:
    """The whole local story: synthesize 3 sites, create and load 3 nodes, summarize."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out.rule("1. synthesize a 3-site consortium")
    folders = generate(3, persons, seed, out_dir / "data", None)
    out.rule("2. create one node per site and load its data")
    nodes = {}
    for site, folder in folders.items():
        node = NodeSite.create(out_dir / "nodes" / site, site, None)
        with progress_bar(f"ingest {site}", node.rows_to_ingest(folder, None)) as tick:
            node.ingest(folder, None, None, tick)
        nodes[site] = node
        out.print(f"  node {site}: {out_dir / 'nodes' / site}")
    out.rule("3. what each site holds")
    tab = Table("site", "persons", "visits", "observations", "drug exposures", "MRS", "events")
    for site, node in nodes.items():
        counts = node.status()["tables"]
        tab.add_row(site, *(str(counts[k]) for k in ("person", "visit", "observation",
                                                       "drug_exposure", "mrs_measure", "event")))
    out.print(tab)
