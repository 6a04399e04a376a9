"""The coordinator's state on both backends: users with hashed tokens, nodes, jobs."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from coordinator.service import Coordinator
from coordinator.store import jobs, registry
from coordinator.store import tables as t
from schemas.errors import FedpsyError


def test_state_on_each_backend(tmp_path: Path, store_url: str) -> None:
    url = None if store_url.startswith("sqlite") else store_url
    with Coordinator.create(tmp_path / "coord", url) as coord:
        assert (coord.dir.root / "coordinator.sqlite").exists() == (url is None)
        token = registry.add_user(coord.engine, "ada")
        assert registry.user_for_token(coord.engine, token) == "ada"
        with pytest.raises(FedpsyError) as info:
            registry.user_for_token(coord.engine, token + "x")
        assert info.value.code == "unauthorized"
        with pytest.raises(FedpsyError, match="already exists"):
            registry.add_user(coord.engine, "ada")
        with coord.engine.connect() as conn:
            stored = conn.execute(select(t.user.c.token_sha256)).scalar_one()
        assert token not in stored and len(stored) == 64  # only the digest is kept
        jobs.create_job(coord.engine, "job1", "ada", {"analysis": "count"})
        jobs.set_site_status(coord.engine, "job1", "oslo", "running count")
        jobs.finish_job(coord.engine, "job1", {"status": "ok", "result": {"n": 7}})
        job = jobs.get_job(coord.engine, "job1")
    assert job is not None
    assert job["status"] == "ok" and job["sites"] == {"oslo": "stopped when the job ended"}
    assert job["result"]["result"] == {"n": 7}
    # reopened from its directory, the state is still there
    with Coordinator.open(tmp_path / "coord") as again:
        assert registry.user_for_token(again.engine, token) == "ada"
        assert [j["job_id"] for j in jobs.list_jobs(again.engine)] == ["job1"]
