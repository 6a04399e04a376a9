"""A site with planted canary values, and the scan that looks for them in what leaves.

The site is a ``fedpsy synth`` site plus six canary persons whose ids, an age, a years of
education value, an MRS value and a free-text scanner label are distinctive strings that
no aggregate can produce by chance. Everything a node or coordinator sends (responses,
problem bodies, log records) is scanned for those strings and for every person id of the
site. :func:`served_node` serves a fresh copy of the canary node for one test; a
:class:`Scanner` collects what one test saw leave.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import traceback
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from coordinator.service import Coordinator
from fedpsy.serving import BackgroundServer
from fedpsy.synth import generate
from node.auth.trust import add_trusted_key
from node.http.api import create_app as node_app
from node.service import NodeService
from node.site import NodeSite
from schemas.logs import JsonFormatter
from schemas.signing import sign_headers

SITE = "amsterdam"
CANARY_IDS = tuple(f"CANARY-7f3a2b-{i:02d}" for i in range(1, 7))
CANARY_AGE = 97.123456
CANARY_EDUCATION = 29.987654
CANARY_GLU = 17.246813
CANARY_SCANNER = "canary-scanner-9d2e"
CANARY_STRINGS = ("canary", "97.12345", "29.98765", "17.24681")
"""Substrings that must never leave, compared case-insensitively: ``canary`` is in every
canary id and in the scanner label; the numbers are prefixes of the planted values (so a
value rounded or printed with more digits is found too). Hex fragments of the ids are not
searched: hashes and nonces would match them by chance."""

SYNTH_ID = re.compile(r"\b[A-Z]{3}-\d{6}\b")
"""The shape of a ``fedpsy synth`` person id (``AMS-000001``)."""


@dataclass(frozen=True)
class CanarySite:
    """An ingested node directory (a template to copy) and the site's person ids."""

    node_dir: Path
    person_ids: frozenset[str]
    ages: tuple[float, ...]  # baseline ages, every person who has one


def plant(folder: Path) -> None:
    """Add the canary persons to a ``fedpsy synth`` site folder (CSV files in place)."""
    ids = list(CANARY_IDS)
    person = pd.read_csv(folder / "person.csv")
    canary_people = pd.DataFrame(
        {
            "person_id": ids,
            "sex": ["F", "M"] * 3,
            "birth_year": [1927, 1960, 1961, 1962, 1963, 1964],
            "primary_diagnosis": ["F20"] * 6,
        }
    )
    pd.concat([person, canary_people]).to_csv(folder / "person.csv", index=False)
    visits = pd.read_csv(folder / "visit.csv")
    canary_visits = pd.DataFrame({"person_id": ids, "visit": "baseline", "day": 0})
    pd.concat([visits, canary_visits]).to_csv(folder / "visit.csv", index=False)
    obs = pd.read_csv(folder / "observations.csv")
    canary_obs = pd.DataFrame(
        {
            "person_id": ids,
            "visit": "baseline",
            "age": [CANARY_AGE, 40.5, 41.5, 42.5, 43.5, 44.5],
            "education_years": [CANARY_EDUCATION, 10, 11, 12, 13, 14],
        }
    )
    pd.concat([obs, canary_obs]).to_csv(folder / "observations.csv", index=False)
    mrs = pd.read_csv(folder / "mrs_measure.csv")
    canary_mrs = pd.DataFrame(
        {
            "person_id": ids[:2],
            "visit": "baseline",
            "region": "dACC",
            "metabolite": "Glu",
            "value": [CANARY_GLU, 12.5],
            "unit": "i.u.",
            "reference": "water",
            "crlb_pct": 6.5,
            "scanner_id": CANARY_SCANNER,
            "field_strength_t": 3,
            "te_ms": 30,
        }
    )
    pd.concat([mrs, canary_mrs]).to_csv(folder / "mrs_measure.csv", index=False)


def build_canary_site(root: Path, persons: int = 200, seed: int = 7) -> CanarySite:
    """Synthesize one site of ``persons`` persons, plant the canaries and ingest it."""
    folder = generate(1, persons, seed, root / "synth")[SITE]
    plant(folder)
    node = NodeSite.create(root / "template", SITE, None)
    try:
        node.ingest(folder)
    finally:
        node.close()
    people = pd.read_csv(folder / "person.csv")["person_id"].astype(str)
    obs = pd.read_csv(folder / "observations.csv", usecols=["visit", "age"])
    ages = obs.loc[obs["visit"] == "baseline", "age"].dropna()
    return CanarySite(root / "template", frozenset(people), tuple(float(a) for a in ages))


def copy_node(site: CanarySite, dest: Path) -> NodeSite:
    """A fresh node with the site's rows and no history (nonces, cohorts, audit)."""
    shutil.copytree(site.node_dir, dest)
    return NodeSite.open(dest)


def leaks(text: str, person_ids: frozenset[str]) -> list[str]:
    """Every canary string and person id found in ``text`` (empty when clean)."""
    lowered = text.lower()
    found = [c for c in CANARY_STRINGS if c.lower() in lowered]
    found += sorted({m for m in SYNTH_ID.findall(text) if m in person_ids})
    return found


class LogCollector(logging.Handler):
    """Keeps every record as its JSON log line plus the full exception text, if any."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self._json = JsonFormatter()

    def emit(self, record: logging.LogRecord) -> None:
        line = self._json.format(record)
        if record.exc_info and record.exc_info[1] is not None:
            line += "\n" + "".join(traceback.format_exception(record.exc_info[1]))
        self.lines.append(line)


def attach_collector() -> tuple[LogCollector, int]:
    """Attach a DEBUG collector to the root logger; returns it and the previous level."""
    collector = LogCollector()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(collector)
    root.setLevel(logging.DEBUG)
    return collector, previous


def detach_collector(collector: LogCollector, previous: int) -> None:
    root = logging.getLogger()
    root.removeHandler(collector)
    root.setLevel(previous)


def describe(found: list[tuple[str, list[str]]], limit: int = 5) -> str:
    """A readable report of leaks found (first ``limit``)."""
    return "\n".join(json.dumps({"found": f, "in": text[:600]}) for text, f in found[:limit])


@dataclass
class World:
    """The canary site (a template node), the coordinator and the captured logs."""

    root: Path
    site: CanarySite
    coordinator: Coordinator
    logs: LogCollector
    setup_lines: int


@dataclass
class Scanner:
    """Collects every canary or person id found in what one test saw leave."""

    world: World
    since: int  # log lines before the test
    found: list[tuple[str, list[str]]] = field(default_factory=list)

    def scan(self, where: str, text: str) -> list[str]:
        hits = leaks(text, self.world.site.person_ids)
        if hits:
            self.found.append((f"{where}: {text}", hits))
        return hits

    def assert_clean(self) -> None:
        ids = self.world.site.person_ids
        logged = [
            (f"log: {line}", hits)
            for line in self.world.logs.lines[self.since :]
            if (hits := leaks(line, ids))
        ]
        found = self.found + logged
        assert not found, f"{len(found)} leaks:\n{describe(found)}"


@dataclass(frozen=True)
class Served:
    """A served node: its URL, admin token and an HTTP client on it."""

    url: str
    token: str
    client: httpx.Client

    def admin(self, path: str) -> httpx.Response:
        return self.client.get(path, headers={"Authorization": f"Bearer {self.token}"})


@contextmanager
def served_node(world: World, name: str, manual: tuple[str, ...] = ()) -> Iterator[Served]:
    """A fresh copy of the canary node, trusting the coordinator, served on loopback."""
    node = copy_node(world.site, world.root / f"node-{name}-{uuid.uuid4().hex[:6]}")
    if manual:
        policy = node.dir.policy.read_text(encoding="utf-8")
        rules = "".join(f'{a} = "manual"\n' for a in manual)
        node.dir.policy.write_text(
            policy.replace("[approval]\n", "[approval]\n" + rules), encoding="utf-8"
        )
    add_trusted_key(node.dir.root, world.coordinator.dir.public_key)
    token = node.dir.admin_token.read_text(encoding="utf-8").strip()
    try:
        with (
            BackgroundServer(node_app(NodeService(node), token)) as server,
            httpx.Client(
                base_url=server.url, timeout=60, limits=httpx.Limits(max_keepalive_connections=0)
            ) as client,
        ):
            yield Served(server.url, token, client)
    finally:
        node.close()


def submit(world: World, node: Served, analysis: str, step: dict[str, Any]) -> httpx.Response:
    body = json.dumps(
        {"task_id": uuid.uuid4().hex, "job_id": "leak-test", "analysis": analysis, "step": step}
    ).encode()
    headers = sign_headers(world.coordinator.key, "POST", "/v1/tasks", body)
    headers["Content-Type"] = "application/json"
    return node.client.post("/v1/tasks", content=body, headers=headers)
