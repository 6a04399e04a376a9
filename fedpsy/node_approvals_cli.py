"""``fedpsy node approve|approve-app|approve-project``: what a site lets leave (the approval
queue), the training apps it runs, and the projects it answers under
``project_approval = "manual"``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from fedpsy.errors import cli_errors

out = Console(highlight=False)
DirArg = Annotated[Path, typer.Argument(help="The node directory.")]


@cli_errors
def approve(
    directory: DirArg,
    task_id: Annotated[str | None, typer.Argument(help="Task to approve.")] = None,
    list_pending: Annotated[
        bool, typer.Option("--list", help="Show pending tasks and exactly what each would release.")
    ] = False,
    reject: Annotated[str | None, typer.Option(help="Task to reject.")] = None,
) -> None:
    """The approval queue: list pending tasks, approve one, or reject one."""
    # deferred: the node's service (its gate and task queue) loads only in this command
    from node.service import NodeService
    from node.site import NodeSite

    del list_pending  # listing is what happens without TASK_ID or --reject
    with NodeSite.open(directory) as node:
        service = NodeService(node)
        if reject:
            service.decide(reject, approve=False)
            out.print(f"task {reject} rejected")
            return
        if task_id:
            service.decide(task_id, approve=True)
            out.print(f"task {task_id} approved: its result will be released")
            return
        pending = service.tasks.pending()
    if not pending:
        out.print("no pending tasks")
    for item in pending:
        out.print(
            f"[bold]{item['task_id']}[/]  analysis {item['request']['analysis']}  "
            f"step {item['step']}"
        )
        out.print(json.dumps(item["would_leave"], indent=2), markup=False)


@cli_errors
def approve_app(
    directory: DirArg,
    app_hash: Annotated[
        str | None,
        typer.Argument(
            help="The training app's hash (default: the app of this fedpsy version).",
            show_default=False,
        ),
    ] = None,
    list_approved: Annotated[
        bool, typer.Option("--list", help="Only list the approved app hashes.")
    ] = False,
) -> None:
    """Approve a training app by its hash (DIR/approved_apps): the site then takes part in
    training runs of that app, through its API or its SuperNode, and no other."""
    # deferred: the approvals and the training bundle's hash load only in this command
    from node.privacy import approvals
    from node.site import NodeSite
    from schemas.training.bundle import app_hash as installed_hash

    with NodeSite.open(directory) as node:
        root = node.dir.root
    if not list_approved:
        digest = app_hash or installed_hash()
        note = "" if app_hash else "fedpsy training app of this version"
        approvals.approve_app(root, digest, note)
        out.print(f"approved training app {digest}")
    for digest in sorted(approvals.approved_apps(root)):
        out.print(digest)


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
    # deferred: the node's store, audit log and policy load only in this command
    from node.audit import AuditLog
    from node.privacy import projects
    from node.privacy.policy import load_policy
    from node.site import NodeSite

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


__all__ = ["approve", "approve_app", "approve_project"]
