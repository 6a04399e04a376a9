"""The ``fedpsy`` console script.

``fedpsy node …`` loads only the node's commands: a site's ``ingest`` or ``status`` then
starts without importing the coordinator, its analyses and the training stack (seconds of
start-up the whole CLI costs). Every other command goes to :mod:`fedpsy.cli`.
"""

from __future__ import annotations

import sys

import typer


def main() -> None:
    if sys.argv[1:2] == ["node"]:
        # deferred: only the node's commands, so a node command starts fast
        from fedpsy.node_cli import app as node_app

        root = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)
        root.add_typer(node_app, name="node")
        root(prog_name="fedpsy")
        return
    # deferred: the whole CLI, for every other command
    from fedpsy.cli import main as everything

    everything()
