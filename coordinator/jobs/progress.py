"""A running job's per-site progress, written to the store off the event loop.

The federation reports a site's status at every step (running, answered, waiting for
approval…). Writing each report as it comes would stall, on the event loop, every other job
the coordinator serves for the length of a database commit. Reports update the latest
statuses in memory instead; one write at a time per job carries them to the store in a
worker thread (the latest statuses win, none is written out of order), and the job waits
for the last write before it records its result.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import Engine

from coordinator.store import jobs


class SiteProgress:
    """The ``on_site`` callback of one job's federation."""

    def __init__(self, engine: Engine, job_id: str) -> None:
        self._engine = engine
        self._job_id = job_id
        self._latest: dict[str, str] = {}
        self._written: dict[str, str] = {}
        self._writer: asyncio.Task[None] | None = None

    def __call__(self, site: str, status: str) -> None:
        """Note ``site``'s status (called on the event loop); a write follows."""
        self._latest[site] = status
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write())

    async def _write(self) -> None:
        while self._latest != self._written:
            changed = {s: v for s, v in self._latest.items() if self._written.get(s) != v}
            await asyncio.to_thread(jobs.set_sites_status, self._engine, self._job_id, changed)
            self._written.update(changed)

    async def settled(self) -> None:
        """Wait until every status noted so far is in the store."""
        if self._writer is not None:
            await self._writer
