"""The site admin's view of projects: those that asked and those approved, with the
decision buttons of the projects page (``/ui/projects``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from node.privacy.projects import approve_project, approved_projects, revoke_project
from node.service import NodeService
from node.store.tables import audit_entry


def projects_view(service: NodeService) -> dict[str, Any]:
    """Every project that sent tasks or is approved, with its count of tasks received."""
    with service.node.engine.connect() as conn:
        counts: dict[str, int] = dict(
            conn.execute(
                select(audit_entry.c.project, func.count())
                .where(audit_entry.c.kind == "received", audit_entry.c.project.is_not(None))
                .group_by(audit_entry.c.project)
            ).all()
        )
    approved = approved_projects(service.node.dir.root)
    names = sorted(set(counts) | set(approved))
    policy = service.policy
    return {
        "mode": policy.project_approval,
        "projects": [
            {
                "name": name,
                "approved": name in approved,
                "tasks": counts.get(name, 0),
                "variables": policy.project_variables.get(name),
            }
            for name in names
        ],
    }


def decide_project(service: NodeService, name: str, approve: bool) -> None:
    """Approve or revoke ``name`` at this site, audited as the CLI does."""
    root = service.node.dir.root
    if approve:
        if approve_project(root, name):
            service.audit.append("project.approved", None, {"name": name})
    else:
        revoke_project(root, name)
        service.audit.append("project.revoked", None, {"name": name})


__all__ = ["decide_project", "projects_view"]
