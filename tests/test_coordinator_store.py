"""The coordinator's state on both backends: users with hashed tokens, nodes, jobs."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select

from coordinator.jobs.progress import SiteProgress
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


def test_site_progress_reaches_the_store_latest_last(tmp_path: Path) -> None:
    with Coordinator.create(tmp_path / "coord") as coord:
        jobs.create_job(coord.engine, "job2", "ada", {"analysis": "glm"})
        progress = SiteProgress(coord.engine, "job2")
        seen: list[dict[str, str]] = []

        async def job() -> None:
            for round_ in range(1, 4):
                for site in ("oslo", "paris"):
                    progress(site, f"running round {round_}")
                await asyncio.sleep(0)  # the event loop is free while the store is written
                job = jobs.get_job(coord.engine, "job2")
                assert job is not None
                seen.append(job["sites"])
                for site in ("oslo", "paris"):
                    progress(site, f"answered round {round_}")
            await progress.settled()

        asyncio.run(job())
        stored = jobs.get_job(coord.engine, "job2")
    assert stored is not None and stored["status"] == "running"
    assert stored["sites"] == {"oslo": "answered round 3", "paris": "answered round 3"}
    assert len(seen) == 3


def test_jobs_beyond_the_running_limit_wait_queued_in_order(tmp_path: Path) -> None:
    with Coordinator.create(tmp_path / "coord") as coord:
        assert coord.config.running_jobs == 4  # the default written to coordinator.toml
        coord.config = coord.config.model_copy(update={"running_jobs": 1})

        async def scenario() -> list[str]:
            finished: list[str] = []

            async def job(job_id: str) -> None:
                await coord.run({"analysis": "count"}, None, job_id)
                finished.append(job_id)

            async with coord._slot():  # a job holds the only place
                waiting = []
                for job_id in ("first", "second"):  # the second comes once the first waits
                    waiting.append(asyncio.create_task(job(job_id)))
                    while jobs.get_job(coord.engine, job_id) is None:
                        await asyncio.sleep(0.01)
                    await asyncio.sleep(0.2)
                for job_id in ("first", "second"):
                    stored = jobs.get_job(coord.engine, job_id)
                    assert stored is not None and stored["status"] == "queued"
                assert finished == []
            await asyncio.gather(*waiting)
            return finished

        assert asyncio.run(scenario()) == ["first", "second"]
        for job_id in ("first", "second"):  # no nodes registered: each ends with that error
            stored = jobs.get_job(coord.engine, job_id)
            assert stored is not None and stored["status"] == "error"
