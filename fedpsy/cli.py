"""The ``fedpsy`` command: one entry point wiring the node, coordinator and tools."""

from __future__ import annotations

import typer

from fedpsy.coordinator_cli import app as coordinator_app
from fedpsy.demo_cli import demo
from fedpsy.health_cli import app as health_app
from fedpsy.node_cli import app as node_app
from fedpsy.pki_cli import app as pki_app
from fedpsy.run import run, sandbox
from fedpsy.tools import synth
from fedpsy.verify_cli import verify

app = typer.Typer(
    help="fedpsy: federated analysis for psychiatric research consortia.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(node_app, name="node")
app.add_typer(coordinator_app, name="coordinator")
app.add_typer(pki_app, name="pki")
app.add_typer(health_app, name="health")
app.command()(synth)
app.command()(demo)
app.command()(run)
app.command()(sandbox)
app.command()(verify)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
