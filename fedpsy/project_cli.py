"""``fedpsy coordinator add-project|projects|add-user|revoke``: projects and their
researchers at the coordinator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from fedpsy.errors import cli_errors

if TYPE_CHECKING:
    from coordinator.store.projects import Project

out = Console(highlight=False)
DirArg = Annotated[Path, typer.Argument(help="The coordinator directory.")]


def _names(value: str | None) -> list[str] | None:
    """A comma-separated option as a list (None when not given)."""
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


@cli_errors
def add_project(
    directory: DirArg,
    name: Annotated[str, typer.Argument(help="The project's name.")],
    analyses: Annotated[
        str | None, typer.Option(help="Allowed analyses, comma-separated (default: all).")
    ] = None,
    variables: Annotated[
        str | None,
        typer.Option(
            help="Allowed variables, comma-separated codes or dictionary sections such as "
            "psychosis (default: all)."
        ),
    ] = None,
    sites: Annotated[
        str | None, typer.Option(help="Allowed sites, comma-separated (default: all).")
    ] = None,
    description: Annotated[str, typer.Option(help="What the project studies.")] = "",
) -> None:
    """Create a project: the analyses, variables and sites its researchers may use."""
    # deferred: the coordinator's store loads only in the commands that open it
    from coordinator.service import Coordinator
    from coordinator.store import projects as store

    with Coordinator.open(directory) as coord:
        project = store.add_project(
            coord.engine,
            name,
            description=description,
            analyses=_names(analyses),
            variables=_names(variables),
            sites=_names(sites),
        )
    out.print(f"project {project.name} created ({_scope(project)})")


def _scope(project: Project) -> str:
    parts = [
        f"{kind}: {', '.join(values) if values is not None else 'all'}"
        for kind, values in (
            ("analyses", project.analyses),
            ("variables", project.variables),
            ("sites", project.sites),
        )
    ]
    return "; ".join(parts)


@cli_errors
def projects(
    directory: DirArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the projects with their scopes and members."""
    # deferred: the coordinator's store loads only in the commands that open it
    from coordinator.service import Coordinator
    from coordinator.store import projects as store

    with Coordinator.open(directory) as coord:
        found = store.list_projects(coord.engine)
    if as_json:
        typer.echo(json.dumps([p.to_dict() for p in found], indent=2))
        return
    table = Table("project", "analyses", "variables", "sites", "members", "description")
    for p in found:
        table.add_row(
            p.name,
            *(", ".join(v) if v is not None else "all" for v in (p.analyses, p.variables, p.sites)),
            ", ".join(p.members),
            p.description,
        )
    out.print(table)


@cli_errors
def add_user(
    directory: DirArg,
    name: Annotated[str, typer.Argument(help="The researcher's name.")],
    project: Annotated[
        list[str] | None,
        typer.Option(help="A project the researcher joins (repeatable; default: default)."),
    ] = None,
) -> None:
    """Create a researcher and print their API token (shown once); an existing researcher
    joins the projects given, with no new token."""
    # deferred: the coordinator's store loads only in the commands that open it
    from coordinator.service import Coordinator
    from coordinator.store import projects as store
    from coordinator.store import registry

    wanted = project or [store.DEFAULT]
    with Coordinator.open(directory) as coord:
        for each in wanted:
            store.get_project(coord.engine, each)
        with coord.engine.connect() as conn:
            exists = registry.user_exists(conn, name)
        token = None if exists else registry.add_user(coord.engine, name, wanted[0])
        joined = [p for p in wanted if store.add_member(coord.engine, p, name)]
    if token is not None:
        typer.echo(token)
    else:
        out.print(f"user {name} joined {', '.join(joined) or 'no new project'}")


@cli_errors
def revoke(
    directory: DirArg,
    name: Annotated[str, typer.Argument(help="The researcher's name.")],
    project: Annotated[str, typer.Option(help="The project the researcher leaves.")],
) -> None:
    """Take a researcher out of a project."""
    # deferred: the coordinator's store loads only in the commands that open it
    from coordinator.service import Coordinator
    from coordinator.store import projects as store

    with Coordinator.open(directory) as coord:
        store.remove_member(coord.engine, project, name)
    out.print(f"user {name} removed from project {project}")


__all__ = ["add_project", "add_user", "projects", "revoke"]
