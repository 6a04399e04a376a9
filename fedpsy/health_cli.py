"""``fedpsy health node|coordinator DIR``: is the local server up? (container healthcheck)

Asks the server's ``/health`` on the address its settings name, over HTTPS when TLS is
configured (verifying the chain against the configured CA and presenting the server's
own certificate where mutual TLS is required). Exit 0 when it answers, 1 otherwise.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from fedpsy.errors import cli_errors

if TYPE_CHECKING:
    import ssl

    from schemas.settings import ServeSettings

app = typer.Typer(
    help="Check that a local node or coordinator answers (exit 0/1).", no_args_is_help=True
)
DirArg = Annotated[Path, typer.Argument(help="The node or coordinator directory.")]
Timeout = Annotated[float, typer.Option(help="Seconds to wait for the answer.")]


def _probe(url: str, verify: ssl.SSLContext | bool, timeout: float) -> None:
    import httpx

    try:
        response = httpx.get(url + "/health", verify=verify, timeout=timeout)
    except httpx.HTTPError as exc:
        typer.echo(f"unhealthy: {url}/health: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(1) from None
    if response.status_code != 200:
        typer.echo(f"unhealthy: {url}/health answered HTTP {response.status_code}", err=True)
        raise typer.Exit(1)
    typer.echo(json.dumps({"url": url, **response.json()}))


def _probe_served(settings: ServeSettings, timeout: float) -> None:
    """Probe the side these settings serve, with its own TLS identity when it has one."""
    # deferred: TLS contexts load only when a server is probed
    from schemas.tls import health_context

    tls = settings.server_tls
    verify: ssl.SSLContext | bool = True
    if tls is not None:
        verify = health_context(tls.ca_certs, tls.certfile, tls.keyfile, tls.key_password)
    _probe(settings.url, verify, timeout)


@app.command()
@cli_errors
def node(directory: DirArg, timeout: Timeout = 5.0) -> None:
    """Ask the node served from DIR (its settings: env, node.toml [serve]) for /health."""
    # deferred: settings (pydantic-settings) load only in the command that reads them
    from node.settings import node_settings

    _probe_served(node_settings(directory), timeout)


@app.command()
@cli_errors
def coordinator(directory: DirArg, timeout: Timeout = 5.0) -> None:
    """Ask the coordinator served from DIR for /health."""
    # deferred: settings (pydantic-settings) load only in the command that reads them
    from coordinator.settings import coordinator_settings

    _probe_served(coordinator_settings(directory), timeout)
