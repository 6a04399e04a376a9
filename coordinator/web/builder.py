"""The analysis builder: a form per analysis, a cohort filter, a live JSON preview.

The page carries the catalog (codes, labels, types, units, categories) for completion and
typed cohort values; ``builder.js`` assembles the request, shows it, asks
``POST /analyses/validate`` whether it parses and names defined variables and values (the
checks a job makes first), and submits it to ``POST /v1/analyses`` (authenticated by the
login cookie) before opening the job's page.
"""

from __future__ import annotations

from typing import Annotated, Any, get_args

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from coordinator.jobs.checks import check_request
from coordinator.jobs.scope import allowed_variables
from coordinator.store import registry
from coordinator.store.projects import Project, projects_of
from coordinator.web.forms import analysis_forms
from coordinator.web.pages import current_catalog
from coordinator.web.rendering import coordinator, render, web_user
from schemas.analyses import parse_request
from schemas.cohort import Op
from schemas.dictionary import load_dictionary
from schemas.errors import FedpsyError

router = APIRouter(include_in_schema=False)
User = Annotated[str, Depends(web_user)]
OPS: tuple[str, ...] = get_args(Op)


def builder_variables(cat: dict[str, Any]) -> list[dict[str, Any]]:
    """Variables for completion, with categories from the dictionary and ``site`` first."""
    shipped = load_dictionary().variables
    out: list[dict[str, Any]] = [
        {
            "code": "site",
            "label": "Site (the node's registered name)",
            "type": "categorical",
            "unit": None,
            "categories": cat["sites"],
            "sites": {s: "same" for s in cat["sites"]},
        }
    ]
    for v in cat["variables"]:
        known = shipped.get(v["code"])
        out.append({**v, "categories": list(known.categories or []) if known else []})
    return out


def project_scope(
    mine: list[Project], name: str | None, forms: dict[str, Any], cat: dict[str, Any]
) -> tuple[Project | None, dict[str, Any], dict[str, Any]]:
    """The project the builder works in (the one named, else the researcher's first) and
    the forms and catalog narrowed to what it allows."""
    project = next((p for p in mine if p.name == name), mine[0] if mine else None)
    if project is None:
        return None, {}, {**cat, "sites": [], "variables": []}
    if project.analyses is not None:
        forms = {k: f for k, f in forms.items() if k in project.analyses}
    codes = allowed_variables(project)
    sites = [s for s in cat["sites"] if project.sites is None or s in project.sites]
    variables = [v for v in cat["variables"] if codes is None or v["code"] in codes]
    return project, forms, {**cat, "sites": sites, "variables": variables}


@router.get("/analyses/new", response_class=HTMLResponse)
def new_analysis(
    request: Request, user: User, analysis: str = "summary", project: str | None = None
) -> HTMLResponse:
    mine = projects_of(coordinator(request).engine, user)
    chosen_project, forms, cat = project_scope(
        mine, project, analysis_forms(), current_catalog(request, user)
    )
    chosen = forms.get(analysis) or next(iter(forms.values()), None)
    return render(
        request,
        "builder.html",
        user=user,
        page="builder",
        forms=forms,
        form=chosen,
        projects=mine,
        project=chosen_project,
        sites=cat["sites"],
        variables=builder_variables(cat),
        ops=OPS,
    )


@router.post("/analyses/validate")
def validate(
    http: Request, user: User, request: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    """Whether a request parses and names defined variables and values (the checks a job
    makes before anything is sent), with the message that says what to fix."""
    try:
        parsed = parse_request(request)
        coordinator(http).authorize(request, user)  # within the researcher's project
        nodes = registry.list_nodes(coordinator(http).engine)
        check_request(parsed, {n.site: n.variable_hashes for n in nodes})
    except FedpsyError as exc:
        return {"ok": False, "detail": exc.detail or exc.message}
    except ValidationError as exc:  # a nested model outside the request union's checks
        return {"ok": False, "detail": str(exc.errors()[0]["msg"])}
    return {"ok": True, "variables": sorted(parsed.used_variables())}
