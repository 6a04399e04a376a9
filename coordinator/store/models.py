"""The coordinator's model registry: every trained model with its provenance.

A successful ``train`` job stores its model (spec, design columns and standardization,
weights) with the request, the sites and their rows, the app hash of the training app
and the test metrics, under the result's ``model_id``. Researchers download it with
``GET /v1/models/{model_id}``; a ``predict`` request names it by ``model_id`` and
:func:`with_model` fills the model in before the job runs.

A model belongs to the project it was trained under: only that project's members see it
(``viewer``; a model of another project is ``not_found``, its existence not confirmed) or
use it; a model the coordinator's operator trained without a project counts as one of
``default``. ``viewer`` None is the operator, who sees every model.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, Engine, insert, or_, select, true

from coordinator.store import tables as t
from coordinator.store.projects import DEFAULT, projects_of
from schemas.envelope import Envelope
from schemas.errors import ErrorCode, FedpsyError


def register(
    engine: Engine,
    job_id: str | None,
    request: Mapping[str, Any],
    envelope: Envelope,
    project: str | None = None,
) -> str | None:
    """Store the model of a successful ``train`` envelope; returns its id (else None)."""
    if envelope.status != "ok" or envelope.analysis != "train":
        return None
    result = envelope.result
    sites = {site: rows.model_dump() for site, rows in envelope.sites.items()}
    model_id = str(result["model_id"])
    with engine.begin() as conn:
        conn.execute(
            insert(t.model).values(
                model_id=model_id,
                job_id=job_id,
                kind=str(result["model_kind"]),
                request=json.dumps(dict(request)),
                sites=json.dumps(sites),
                app_hash=str(result["app_hash"]),
                metrics=json.dumps(result["metrics"]),
                model=json.dumps(result["model"]),
                created_at=time.time(),
                project=project,
            )
        )
    return model_id


def _public(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "model_id": row["model_id"],
        "job_id": row["job_id"],
        "project": row["project"],
        "kind": row["kind"],
        "request": json.loads(row["request"]),
        "sites": json.loads(row["sites"]),
        "app_hash": row["app_hash"],
        "metrics": json.loads(row["metrics"]),
        "model": json.loads(row["model"]),
        "created_at": row["created_at"],
    }


def visible_to(engine: Engine, viewer: str | None) -> ColumnElement[bool]:
    """The models ``viewer`` may see and use: those of their projects, and for members of
    ``default`` the models the operator trained without a project (all: None)."""
    if viewer is None:
        return true()
    mine = [p.name for p in projects_of(engine, viewer)]
    seen = t.model.c.project.in_(mine)
    return or_(seen, t.model.c.project.is_(None)) if DEFAULT in mine else seen


def get_model(engine: Engine, model_id: str, viewer: str | None = None) -> dict[str, Any]:
    """A stored model with its provenance (``not_found`` when there is none or ``viewer``
    may not see it)."""
    query = select(t.model).where(t.model.c.model_id == model_id, visible_to(engine, viewer))
    with engine.connect() as conn:
        row = conn.execute(query).mappings().first()
    if row is None:
        raise FedpsyError(f"no model {model_id!r} in the registry", code=ErrorCode.NOT_FOUND)
    return _public(dict(row))


def list_models(
    engine: Engine, limit: int = 100, viewer: str | None = None
) -> list[dict[str, Any]]:
    """The newest models ``viewer`` may see, without their weights."""
    query = (
        select(t.model)
        .where(visible_to(engine, viewer))
        .order_by(t.model.c.created_at.desc())
        .limit(limit)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    return [{k: v for k, v in _public(dict(r)).items() if k != "model"} for r in rows]


def with_model(
    engine: Engine, request: Mapping[str, Any], viewer: str | None = None
) -> dict[str, Any]:
    """``request``, a ``predict`` request with its stored model filled in (unchanged when
    it carries a model or names none in the registry that ``viewer`` may use; the analysis
    then says so)."""
    out = dict(request)
    model_id = out.get("model_id")
    if out.get("analysis") != "predict" or out.get("model") is not None:
        return out
    if not isinstance(model_id, str):
        return out
    with engine.connect() as conn:
        stored = conn.execute(
            select(t.model.c.model).where(
                t.model.c.model_id == model_id, visible_to(engine, viewer)
            )
        ).scalar()
    if stored is not None:
        out["model"] = json.loads(str(stored))
    return out


__all__ = ["get_model", "list_models", "register", "visible_to", "with_model"]
