"""``fedpsy pki …``: the consortium's certificate authority and TLS certificates."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from fedpsy.errors import cli_errors

app = typer.Typer(
    help="Consortium CA and TLS certificates for nodes and the coordinator.", no_args_is_help=True
)
out = Console(highlight=False)
PkiDir = Annotated[
    Path, typer.Argument(help="The CA directory (ca.pem, ca.key, issued certificates).")
]


@app.command()
@cli_errors
def init(
    directory: PkiDir,
    common_name: Annotated[
        str, typer.Option("--name", help="The CA's common name.")
    ] = "fedpsy consortium CA",
    days: Annotated[int, typer.Option(min=1, help="Validity in days.")] = 3650,
) -> None:
    """Create the consortium CA: DIR/ca.pem (give it to everyone) and DIR/ca.key (0600)."""
    # deferred: X.509 code loads only in the commands that write certificates
    from schemas.pki import init_ca

    ca = init_ca(directory, common_name, days)
    out.print(f"CA created: {ca.cert} (key {ca.key}, keep it offline)")
    out.print(f"subject {ca.subject}, valid until {ca.not_after:%Y-%m-%d}")
    out.print(f"SHA-256 fingerprint {ca.fingerprint}")


@app.command()
@cli_errors
def issue(
    directory: PkiDir,
    name: Annotated[
        str,
        typer.Option(
            help="Certificate name: the site id or 'coordinator'; "
            "files DIR/NAME.pem and DIR/NAME.key."
        ),
    ],
    dns: Annotated[
        list[str] | None, typer.Option(help="A DNS name the host is reached by (repeatable).")
    ] = None,
    ip: Annotated[
        list[str] | None, typer.Option(help="An IP address the host is reached by (repeatable).")
    ] = None,
    days: Annotated[int, typer.Option(min=1, help="Validity in days.")] = 825,
) -> None:
    """Issue a TLS certificate (server and client use) signed by the consortium CA."""
    # deferred: X.509 code loads only in the commands that write certificates
    from schemas.pki import issue_certificate

    cert = issue_certificate(directory, name, dns or [], ip or [], days)
    out.print(f"issued {cert.cert} (key {cert.key}, 0600) for {', '.join(cert.names)}")
    out.print(f"valid until {cert.not_after:%Y-%m-%d}; SHA-256 fingerprint {cert.fingerprint}")
