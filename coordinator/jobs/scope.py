"""Before anything is sent: is the request within the researcher's project?

The project is the one the request names (``"project"``), or the researcher's only
project. A researcher outside the project, an analysis, variable or site the project does
not allow is ``forbidden`` (HTTP 403), naming what is not allowed. A request that names no
site runs at the project's sites only. The coordinator's operator (a request run in
process, with no researcher) is bound only by the project the request names, if any.

What a request leaves to defaults is bounded by the project too (:func:`scoped_request`):
``data_quality`` is the one analysis whose variables may be left out (every other one
names its variables); under a project restricted to some variables it reports those
variables, and its temporal checks (which read the visit, event and drug-exposure tables)
run only for a project open to every variable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

from sqlalchemy import Engine

from coordinator.jobs.compat import PSEUDO
from coordinator.store.projects import Project, get_project, projects_of
from schemas.analyses import parse_request
from schemas.analyses.data_quality import DataQualityRequest
from schemas.cohort import All, Cohort, Condition, selected_sites
from schemas.dictionary import load_dictionary
from schemas.dictionary.loader import shipped_sections
from schemas.errors import ErrorCode, FedpsyError


@cache
def _sections() -> dict[str, frozenset[str]]:
    return shipped_sections()


def resolve_project(engine: Engine, user: str | None, data: Mapping[str, Any]) -> Project | None:
    """The project ``data`` is asked under, after checking ``user`` is one of its members."""
    name = data.get("project") if isinstance(data, Mapping) else None
    if name is not None and not isinstance(name, str):
        raise FedpsyError("project: must be a project name", code=ErrorCode.REQUEST_INVALID)
    if user is None:
        return get_project(engine, name) if name else None
    mine = projects_of(engine, user)
    names = ", ".join(p.name for p in mine)
    if name is None:
        if len(mine) == 1:
            return mine[0]
        if not mine:
            raise FedpsyError(
                f"user {user!r} is not a member of any project; ask the coordinator "
                "(`fedpsy coordinator add-user DIR USER --project NAME`)",
                code=ErrorCode.FORBIDDEN,
                extra={"project": None},
            )
        raise FedpsyError(
            f"user {user!r} is a member of several projects ({names}); name one with "
            '"project" in the request',
            code=ErrorCode.REQUEST_INVALID,
        )
    for project in mine:
        if project.name == name:
            return project
    raise FedpsyError(
        f"user {user!r} is not a member of project {name!r} (their projects: {names or 'none'})",
        code=ErrorCode.FORBIDDEN,
        extra={"project": name},
    )


def allowed_variables(project: Project) -> frozenset[str] | None:
    """The codes ``project`` allows (its codes and the codes of its sections); None: all."""
    if project.variables is None:
        return None
    sections = _sections()
    codes: set[str] = set()
    for entry in project.variables:
        codes |= sections.get(entry, {entry})
    return frozenset(codes)


def scoped_request(project: Project, data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` with its defaulted variables bounded by ``project``: a ``data_quality``
    request without ``variables`` under a project restricted to some variables asks the
    shipped variables the project allows, and leaves the temporal checks out unless it asks
    for them (which :func:`check_scope` refuses)."""
    out = dict(data)
    codes = allowed_variables(project)
    if codes is None or out.get("analysis") != "data_quality":
        return out
    if out.get("variables") is None:
        out["variables"] = [c for c in load_dictionary().variables if c in codes - PSEUDO]
    out.setdefault("temporal", False)
    return out


def visible_variables(projects: Iterable[Project]) -> frozenset[str] | None:
    """The codes some of ``projects`` allows (the catalog a researcher sees; None: all)."""
    codes: set[str] = set(PSEUDO)
    for project in projects:
        allowed = allowed_variables(project)
        if allowed is None:
            return None
        codes |= allowed
    return frozenset(codes)


def names_sites(cohort: Cohort | None) -> bool:
    """Whether the cohort selects sites (a top-level ``site`` condition)."""
    return isinstance(cohort, All) and any(
        isinstance(c, Condition) and c.var == "site" for c in cohort.all
    )


def check_scope(project: Project, data: Mapping[str, Any], sites: Iterable[str]) -> None:
    """``forbidden`` naming each analysis, variable and site of the request ``project``
    does not allow. ``sites``: the registered sites (those the request selects are judged
    when it names sites). The variables and sites of a request that does not parse are left
    to the job, which refuses it."""
    problems: list[str] = []
    outside: dict[str, list[str]] = {}
    analysis = data.get("analysis")
    if project.analyses is not None and analysis not in project.analyses:
        outside["analyses"] = [str(analysis)]
        problems.append(f"analysis {analysis!r} (allowed: {', '.join(project.analyses) or 'none'})")
    try:
        request = parse_request(data)
    except FedpsyError:
        request = None
    codes = allowed_variables(project)
    if request is not None and codes is not None:
        extra = sorted(request.used_variables() - PSEUDO - codes)
        if extra:
            outside["variables"] = extra
            allowed = ", ".join(project.variables or ()) or "none"
            problems.append(f"variable(s) {', '.join(extra)} (allowed: {allowed})")
    if codes is not None and isinstance(request, DataQualityRequest) and request.temporal:
        outside["checks"] = ["temporal"]
        problems.append(
            "the temporal checks of data_quality (visit, event and drug-exposure tables; "
            'only for a project open to every variable: ask with "temporal": false)'
        )
    if request is not None and project.sites is not None and names_sites(request.cohort):
        chosen = sorted(set(selected_sites(request.cohort, sorted(sites))) - set(project.sites))
        if chosen:
            outside["sites"] = chosen
            problems.append(f"site(s) {', '.join(chosen)} (allowed: {', '.join(project.sites)})")
    if problems:
        raise FedpsyError(
            f"project {project.name!r} does not allow " + "; ".join(problems),
            code=ErrorCode.FORBIDDEN,
            extra={"project": project.name, "not_allowed": outside},
        )


__all__ = [
    "allowed_variables",
    "check_scope",
    "names_sites",
    "resolve_project",
    "scoped_request",
    "visible_variables",
]
