"""``fedpsy run`` and ``fedpsy sandbox``: run analysis requests and print result JSON."""

from __future__ import annotations

import asyncio
import json
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any

import typer

from coordinator.http.remote import CoordinatorSession
from coordinator.jobs.runner import exit_status
from coordinator.service import Coordinator
from fedpsy.errors import cli_errors
from fedpsy.serving import BackgroundServer
from node.auth.trust import add_trusted_key
from node.http.api import create_app
from node.privacy.approvals import approve_app
from node.service import NodeService
from node.site import NodeSite
from schemas.envelope import Envelope
from schemas.errors import ErrorCode, FedpsyError
from schemas.training.bundle import app_hash


def read_request(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise FedpsyError(f"{path}: {exc}", code=ErrorCode.REQUEST_INVALID) from None
    if not isinstance(data, dict):
        raise FedpsyError(f"{path}: a request is a JSON object", code=ErrorCode.REQUEST_INVALID)
    return data


def run_remote(url: str, token: str | None, request: dict[str, Any], poll: float = 0.5) -> Envelope:
    """Submit to a running coordinator and wait for the job to finish."""
    if not token:
        raise FedpsyError(
            "a coordinator URL needs a researcher token: give --token or set FEDPSY_TOKEN",
            code=ErrorCode.BAD_INPUT,
        )
    with CoordinatorSession(url, token, poll=poll) as session:
        return session.run(request)


@cli_errors
def run(
    request: Annotated[Path, typer.Argument(help="The analysis request (JSON).")],
    coordinator: Annotated[str, typer.Option(help="Coordinator directory or URL.")],
    token: Annotated[
        str | None, typer.Option(envvar="FEDPSY_TOKEN", help="Researcher token (URL only).")
    ] = None,
    methods: Annotated[
        bool, typer.Option("--methods", help="Also print a methods paragraph for a paper.")
    ] = False,
) -> None:
    """Run one analysis request; print the result JSON on stdout."""
    data = read_request(request)
    if coordinator.startswith(("http://", "https://")):
        result = run_remote(coordinator, token, data)
    else:
        with Coordinator.open(Path(coordinator)) as coord:
            result = asyncio.run(coord.run(data))
    typer.echo(json.dumps(result.to_dict()))
    if methods:
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
