"""``fedpsy run`` and ``fedpsy sandbox``: run analysis requests and print their results.

``fedpsy run`` prints readable tables (:mod:`fedpsy.show`) when its stdout is a terminal
and the result envelope as one JSON object when it is not, so scripts and pipes keep
getting JSON; ``--json`` and ``--table`` choose explicitly. Tables printed to something
other than a terminal are laid out on a wide page: no line is wrapped or cut at 80
columns. ``fedpsy sandbox`` prints one envelope per line (JSON Lines).

The coordinator, nodes and HTTP client load inside the commands: ``fedpsy --help`` and
``fedpsy run --help`` import none of them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from fedpsy.errors import cli_errors
from fedpsy.json_files import read_object
from schemas.errors import ErrorCode, FedpsyError

if TYPE_CHECKING:
    from schemas.envelope import Envelope

WIDE = 1000
"""Columns of the page tables are laid out on when stdout is not a terminal."""


def read_request(path: Path) -> dict[str, Any]:
    return read_object(path, "a request", ErrorCode.REQUEST_INVALID)


def run_remote(url: str, token: str | None, request: dict[str, Any], poll: float = 0.5) -> Envelope:
    """Submit to a running coordinator and wait for the job to finish."""
    # deferred: the HTTP client and the envelope's model (pydantic) load only for a URL
    from coordinator.http.remote import CoordinatorSession

    if not token:
        raise FedpsyError(
            "a coordinator URL needs a researcher token: give --token or set FEDPSY_TOKEN",
            code=ErrorCode.BAD_INPUT,
        )
    with CoordinatorSession(url, token, poll=poll) as session:
        return session.run(request)


def run_local(directory: Path, request: dict[str, Any]) -> Envelope:
    """Run in this process, on the coordinator in ``directory``."""
    import asyncio

    # deferred: the coordinator (analyses, federation, store) loads only for a local run
    from coordinator.service import Coordinator

    with Coordinator.open(directory) as coord:
        return asyncio.run(coord.run(request))


def print_tables(envelope: Envelope, request: dict[str, Any]) -> None:
    """The envelope as tables on stdout: the terminal's width on a terminal, else a wide
    page (nothing wrapped or cut)."""
    from rich.console import Console

    # deferred: the tables' layout code loads only when tables are printed
    from fedpsy.show import show_result

    terminal = sys.stdout.isatty()
    out = Console(highlight=False, width=None if terminal else WIDE, soft_wrap=not terminal)
    show_result(out, envelope, request)


@cli_errors
def run(
    request: Annotated[Path, typer.Argument(help="The analysis request (JSON).")],
    coordinator: Annotated[str, typer.Option(help="Coordinator directory or URL.")],
    token: Annotated[
        str | None, typer.Option(envvar="FEDPSY_TOKEN", help="Researcher token (URL only).")
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print the result envelope as one JSON object (the default when stdout "
            "is not a terminal).",
        ),
    ] = False,
    as_table: Annotated[
        bool,
        typer.Option(
            "--table",
            help="Print readable tables (the default on a terminal), also into a pipe or file.",
        ),
    ] = False,
    methods: Annotated[
        bool, typer.Option("--methods", help="Also print a methods paragraph for a paper.")
    ] = False,
) -> None:
    """Run one analysis request: tables on a terminal, JSON into a pipe or file.

    The tables show the result (estimates with 95 % CIs, odds, rate or hazard ratios),
    the rows each site used, what was left out and why, and the privacy line; a refusal
    names each refusing site and its rule. Into a pipe or file the result envelope is
    printed as one JSON object (as --json does). Exit 0 ok, 1 error, 2 bad input or
    usage, 3 refused by a site's privacy policy."""
    # deferred: the envelope's model (pydantic) loads in the commands that read envelopes
    from schemas.envelope import exit_status

    if as_json and as_table:
        raise FedpsyError("give --json or --table, not both", code=ErrorCode.BAD_INPUT)
    data = read_request(request)
    if coordinator.startswith(("http://", "https://")):
        result = run_remote(coordinator, token, data)
    else:
        result = run_local(Path(coordinator), data)
    if as_table or (not as_json and sys.stdout.isatty()):
        print_tables(result, data)
    else:
        typer.echo(json.dumps(result.to_dict()))
    if methods:
        # deferred: the methods paragraph's code loads only when it is asked for
        from fedpsy.methods_cli import methods_text

        typer.echo("\n" + methods_text(coordinator, token, data, result))
    raise typer.Exit(exit_status(result))


def parse_site(spec: str) -> tuple[str, Path]:
    name, sep, file = spec.partition("=")
    if not sep or not name or not file:
        raise FedpsyError(f"--site {spec!r}: use NAME=FILE.csv", code=ErrorCode.BAD_INPUT)
    return name, Path(file)


@cli_errors
def sandbox(
    requests: Annotated[list[Path], typer.Argument(help="Request JSON files, run in order.")],
    site: Annotated[list[str], typer.Option(help="NAME=FILE.csv (repeat per site).")],
    dictionary: Annotated[
        list[Path] | None, typer.Option(help="Extension dictionary for every site.")
    ] = None,
) -> None:
    """Real nodes on loopback ports and a coordinator; prints one result per line."""
    import asyncio
    import tempfile
    from contextlib import ExitStack

    # deferred: nodes, a coordinator and their servers load only in the sandbox
    from coordinator.service import Coordinator
    from fedpsy.serving import BackgroundServer
    from node.auth.trust import add_trusted_key
    from node.http.api import create_app
    from node.privacy.approvals import approve_app
    from node.service import NodeService
    from node.site import NodeSite
    from schemas.envelope import exit_status
    from schemas.training.bundle import app_hash

    data = [read_request(r) for r in requests]
    worst = 0
    with tempfile.TemporaryDirectory(prefix="fedpsy-sandbox-") as tmp, ExitStack() as stack:
        root = Path(tmp)
        coord = stack.enter_context(Coordinator.create(root / "coordinator"))
        for name, file in map(parse_site, site):
            NodeSite.create(root / name, name, None).close()
            node = stack.enter_context(NodeSite.open(root / name, tuple(dictionary or ())))
            node.ingest(file)
            add_trusted_key(node.dir.root, coord.dir.public_key)
            approve_app(node.dir.root, app_hash(), "sandbox: this fedpsy's training app")
            token = node.dir.admin_token.read_text().strip()
            server = stack.enter_context(BackgroundServer(create_app(NodeService(node), token)))
            coord.add_node(name, server.url)
        for request in data:
            result = asyncio.run(coord.run(request))
            typer.echo(json.dumps(result.to_dict()))
            worst = max(worst, exit_status(result))
    raise typer.Exit(worst)
