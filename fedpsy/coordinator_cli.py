"""``fedpsy coordinator …``: what the consortium's coordinator runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from coordinator.service import Coordinator
from coordinator.store import registry
from fedpsy.errors import cli_errors

app = typer.Typer(help="Run the coordinator: register nodes and researchers, serve the API.",
                  no_args_is_help=True)
out = Console(highlight=False)
DirArg = Annotated[Path, typer.Argument(help="The coordinator directory.")]


@app.command()
@cli_errors
def init(
    directory: DirArg,
    database_url: Annotated[str | None, typer.Option(
        help="State store URL (default: SQLite in DIR).")] = None,
) -> None:
    """Create a coordinator: config, state store and its Ed25519 signing key."""
    with Coordinator.create(directory, database_url) as coord:
        public_key = coord.dir.public_key
    out.print(f"coordinator created in {directory}")
    out.print(f"public key: {public_key}  (give it to every site: "
              "`fedpsy node trust NODE_DIR --coordinator-key coordinator.pub`)")


@app.command("add-node")
@cli_errors
def add_node(
    directory: DirArg,
    site: Annotated[str, typer.Option(help="The site id the node was created with.")],
    url: Annotated[str, typer.Option(help="The node's base URL, e.g. https://node.site:8701")],
) -> None:
    """Register a node: fetch its /v1/info and pin its key and dictionary."""
    with Coordinator.open(directory) as coord:
        record = coord.add_node(site, url)
    out.print(f"node {record.site} at {record.url} registered (key {record.fingerprint[:16]}…)")


@app.command("add-user")
@cli_errors
def add_user(
    directory: DirArg,
    name: Annotated[str, typer.Argument(help="The researcher's name.")],
) -> None:
    """Create a researcher and print their API token (shown once)."""
    with Coordinator.open(directory) as coord:
        token = registry.add_user(coord.engine, name)
    typer.echo(token)


@app.command()
@cli_errors
def nodes(directory: DirArg) -> None:
    """List registered nodes."""
    table = Table("site", "url", "key", "dictionary", "last seen")
    with Coordinator.open(directory) as coord:
        records = registry.list_nodes(coord.engine)
    for n in records:
        table.add_row(n.site, n.url, n.fingerprint[:16], n.dictionary_hash[:12],
                      f"{n.last_seen:.0f}" if n.last_seen else "")
    out.print(table)


@app.command()
@cli_errors
def serve(
    directory: DirArg,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8700,
) -> None:
    """Serve the researcher API."""
    import uvicorn

    from coordinator.api import create_app
    from schemas.logs import configure_json_logs

    coord = Coordinator.open(directory)
    configure_json_logs()
    out.print(f"coordinator serving on http://{host}:{port}")
    uvicorn.run(create_app(coord), host=host, port=port, log_config=None, access_log=False,
                ws="none")
