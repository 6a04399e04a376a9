"""``fedpsy node approve-project``: the projects a site answers under
``project_approval = "manual"``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from fedpsy.errors import cli_errors
from node.audit import AuditLog
from node.privacy import projects
from node.privacy.policy import load_policy
from node.site import NodeSite

out = Console(highlight=False)


@cli_errors
def approve_project(
    directory: Annotated[Path, typer.Argument(help="The node directory.")],
    name: Annotated[
        str | None, typer.Argument(help="The project to approve.", show_default=False)
    ] = None,
    list_approved: Annotated[
        bool, typer.Option("--list", help="Only list the approved projects.")
    ] = False,
    revoke: Annotated[
        str | None, typer.Option(metavar="NAME", help="Withdraw the approval of NAME.")
    ] = None,
) -> None:
    """Approve a project (DIR/approved_projects): with project_approval = "manual" in
    policy.toml the site answers tasks of approved projects only. Each change is audited."""
    with NodeSite.open(directory) as node:
        root = node.dir.root
        log = AuditLog(node.engine)
        if revoke is not None:
            projects.revoke_project(root, revoke)
            log.append("project.revoked", None, {"name": revoke})
            out.print(f"project {revoke} no longer approved")
        elif name is not None and not list_approved:
            if projects.approve_project(root, name):
                log.append("project.approved", None, {"name": name})
            out.print(f"project {name} approved")
        mode = load_policy(node.dir.policy).project_approval
    approved = projects.approved_projects(root)
    out.print(f"project_approval = {mode!r}; approved: {', '.join(approved) or 'none'}")


__all__ = ["approve_project"]
