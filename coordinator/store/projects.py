"""Projects: each study's scope (analyses, variables, sites) and its researchers.

A scope left unset (``None``) allows everything of its kind. Variables are listed as
variable codes or as whole sections of the dictionary (``psychosis``, ``depression``…).
Every coordinator has the project ``default``, open to everything; a researcher added
without a project joins it.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select

from coordinator.store import tables as t
from schemas.errors import ErrorCode, FedpsyError

DEFAULT = "default"
NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class Project:
    """A project and its members; ``None`` scopes allow everything of their kind."""

    name: str
    description: str = ""
    analyses: tuple[str, ...] | None = None
    variables: tuple[str, ...] | None = None
    sites: tuple[str, ...] | None = None
    members: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def _scope(values: Sequence[str] | None) -> str | None:
    return None if values is None else json.dumps(sorted(set(values)))


def _unscope(raw: object) -> tuple[str, ...] | None:
    return None if raw is None else tuple(json.loads(str(raw)))


def add_project(
    engine: Engine,
    name: str,
    *,
    description: str = "",
    analyses: Sequence[str] | None = None,
    variables: Sequence[str] | None = None,
    sites: Sequence[str] | None = None,
) -> Project:
    """Create a project (``bad_input`` when the name is taken)."""
    if not NAME.fullmatch(name):
        raise FedpsyError(
            f"project name {name!r}: use 1-64 letters, digits, '-' or '_'",
            code=ErrorCode.BAD_INPUT,
        )
    with engine.begin() as conn:
        if _row(conn, name) is not None:
            raise FedpsyError(f"project {name!r} already exists", code=ErrorCode.BAD_INPUT)
        conn.execute(
            insert(t.project).values(
                name=name,
                description=description,
                analyses=_scope(analyses),
                variables=_scope(variables),
                sites=_scope(sites),
                created_at=time.time(),
            )
        )
    return get_project(engine, name)


def _row(conn: Connection, name: str) -> Any:
    return conn.execute(select(t.project).where(t.project.c.name == name)).mappings().first()


def _members(conn: Connection) -> dict[str, list[str]]:
    rows = conn.execute(
        select(t.project_member.c.project, t.project_member.c.user_name).order_by(
            t.project_member.c.user_name
        )
    ).all()
    members: dict[str, list[str]] = {}
    for project, user in rows:
        members.setdefault(str(project), []).append(str(user))
    return members


def _project(row: Any, members: dict[str, list[str]]) -> Project:
    return Project(
        name=str(row["name"]),
        description=str(row["description"] or ""),
        analyses=_unscope(row["analyses"]),
        variables=_unscope(row["variables"]),
        sites=_unscope(row["sites"]),
        members=tuple(members.get(str(row["name"]), [])),
    )


def list_projects(engine: Engine) -> list[Project]:
    with engine.connect() as conn:
        rows = conn.execute(select(t.project).order_by(t.project.c.name)).mappings().all()
        members = _members(conn)
    return [_project(r, members) for r in rows]


def get_project(engine: Engine, name: str) -> Project:
    """The project ``name`` (``not_found`` naming the projects there are)."""
    with engine.connect() as conn:
        row = _row(conn, name)
        members = _members(conn)
    if row is None:
        names = ", ".join(p.name for p in list_projects(engine)) or "none"
        raise FedpsyError(
            f"no project {name!r} (projects: {names}); create it with "
            "`fedpsy coordinator add-project DIR NAME`",
            code=ErrorCode.NOT_FOUND,
        )
    return _project(row, members)


def projects_of(engine: Engine, user: str) -> list[Project]:
    """The projects ``user`` is a member of, by name."""
    return [p for p in list_projects(engine) if user in p.members]


def add_member(engine: Engine, project: str, user: str) -> bool:
    """Add ``user`` to ``project``; False when they already were a member."""
    get_project(engine, project)
    with engine.begin() as conn:
        found = conn.execute(
            select(t.project_member.c.user_name).where(
                t.project_member.c.project == project, t.project_member.c.user_name == user
            )
        ).first()
        if found is not None:
            return False
        conn.execute(
            insert(t.project_member).values(project=project, user_name=user, added_at=time.time())
        )
    return True


def remove_member(engine: Engine, project: str, user: str) -> None:
    """Take ``user`` out of ``project`` (``not_found`` when they are not a member)."""
    if user not in get_project(engine, project).members:
        raise FedpsyError(
            f"user {user!r} is not a member of project {project!r}", code=ErrorCode.NOT_FOUND
        )
    with engine.begin() as conn:
        conn.execute(
            delete(t.project_member).where(
                t.project_member.c.project == project, t.project_member.c.user_name == user
            )
        )


__all__ = [
    "DEFAULT",
    "Project",
    "add_member",
    "add_project",
    "get_project",
    "list_projects",
    "projects_of",
    "remove_member",
]
