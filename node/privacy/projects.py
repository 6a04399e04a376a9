"""Which projects a site answers, kept in ``DIR/approved_projects``, and the variables a
project may use at this site.

With ``project_approval = "manual"`` in ``policy.toml`` the node answers only tasks of a
project the site approved (``fedpsy node approve-project DIR NAME``; one project name per
line, ``#`` starts a comment); every other task is refused with ``project_not_approved``,
naming the project. With ``"auto"`` (the default) every project is answered. Either way
``[project_variables]`` may restrict a project to variable codes or dictionary sections:
a step of that project reading any other variable is refused the same way.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from functools import cache
from pathlib import Path

from node.data.source import FrameSource, WrappedSource
from node.privacy.policy import Policy
from schemas.cohort import Cohort
from schemas.dictionary.loader import shipped_sections
from schemas.errors import ErrorCode, FedpsyError, Refused

logger = logging.getLogger(__name__)

FILE = "approved_projects"
NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
PSEUDO = frozenset({"site"})


def projects_path(node_dir: Path) -> Path:
    return node_dir / FILE


def approved_projects(node_dir: Path) -> list[str]:
    """The approved project names, in the order approved (none when the file is absent)."""
    path = projects_path(node_dir)
    if not path.is_file():
        return []
    found: list[str] = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if not NAME.fullmatch(line):
            raise FedpsyError(
                f"{path}:{number}: not a project name (1-64 letters, digits, '-', '_')",
                code=ErrorCode.CONFIG_INVALID,
            )
        if line not in found:
            found.append(line)
    return found


def _check_name(name: str) -> None:
    if not NAME.fullmatch(name):
        raise FedpsyError(
            f"project name {name!r}: use 1-64 letters, digits, '-' or '_'",
            code=ErrorCode.BAD_INPUT,
        )


def approve_project(node_dir: Path, name: str) -> bool:
    """Approve ``name``; False when it already was."""
    _check_name(name)
    if name in approved_projects(node_dir):
        return False
    with projects_path(node_dir).open("a", encoding="utf-8") as fh:
        fh.write(f"{name}\n")
    logger.info("approved project %s", name)
    return True


def revoke_project(node_dir: Path, name: str) -> None:
    """Withdraw the approval of ``name`` (``not_found`` when it was not approved)."""
    _check_name(name)
    kept = approved_projects(node_dir)
    if name not in kept:
        raise FedpsyError(f"project {name!r} is not approved here", code=ErrorCode.NOT_FOUND)
    kept.remove(name)
    projects_path(node_dir).write_text("".join(f"{p}\n" for p in kept), encoding="utf-8")
    logger.info("revoked project %s", name)


def check_project(node_dir: Path, policy: Policy, project: str | None) -> None:
    """Refuse (``project_not_approved``) a task of a project the site has not approved
    when its policy says ``project_approval = "manual"``."""
    if policy.project_approval == "auto" or (
        project is not None and project in approved_projects(node_dir)
    ):
        return
    what = f"project {project!r}" if project is not None else "a task naming no project"
    raise Refused(
        f"{what} is not approved at this site; the site approves it with "
        "`fedpsy node approve-project DIR NAME`",
        code=ErrorCode.PROJECT_NOT_APPROVED,
    )


@cache
def _sections() -> dict[str, frozenset[str]]:
    return shipped_sections()


def project_codes(policy: Policy, project: str | None) -> frozenset[str] | None:
    """The variables the policy lets ``project`` use here (None: no restriction)."""
    listed = policy.project_variables.get(project or "")
    if listed is None:
        return None
    codes: set[str] = set(PSEUDO)
    for entry in listed:
        codes |= _sections().get(entry, {entry})
    return frozenset(codes)


class ProjectSource(WrappedSource):
    """The node's rows as a project may read them: only the variables its policy allows."""

    def __init__(self, inner: FrameSource, project: str | None, allowed: frozenset[str]) -> None:
        super().__init__(inner)
        self.project = project
        self.allowed = allowed

    def check(self, variables: Sequence[str], cohort: Cohort | None) -> None:
        used = set(variables) | (cohort.variables() if cohort is not None else set())
        outside = sorted(used - self.allowed)
        if outside:
            raise Refused(
                f"project {self.project!r} may not use {', '.join(outside)} at this site "
                "(its [project_variables] in policy.toml)",
                code=ErrorCode.PROJECT_NOT_APPROVED,
            )


def project_source(source: FrameSource, policy: Policy, project: str | None) -> FrameSource:
    """``source`` as ``project`` may read it under ``policy``."""
    allowed = project_codes(policy, project)
    return source if allowed is None else ProjectSource(source, project, allowed)


__all__ = [
    "approve_project",
    "approved_projects",
    "check_project",
    "project_source",
    "projects_path",
    "revoke_project",
]
