"""A real local consortium for tests: nodes with their own stores, served over loopback
HTTP, trusting a coordinator that signs every request."""

from __future__ import annotations

import re
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from coordinator.service import Coordinator
from fedpsy.serving import BackgroundServer
from node.auth.trust import add_trusted_key
from node.http.api import create_app
from node.service import NodeService
from node.site import NodeSite


def clinical_sites(
    sizes: dict[str, int], seed: int = 3
) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """(person, flat observation) frames per site in dictionary codes, sites differing."""
    rng = np.random.default_rng(seed)
    out = {}
    start = 0
    for shift, (site, n) in enumerate(sizes.items()):
        ids = [f"{site[:3].upper()}-{i:05d}" for i in range(start, start + n)]
        start += n
        person = pd.DataFrame(
            {
                "person_id": ids,
                "sex": rng.choice(["F", "M"], n, p=[0.4 + 0.1 * shift, 0.6 - 0.1 * shift]),
                "birth_year": rng.integers(1950, 2005, n),
                "primary_diagnosis": rng.choice(["F20", "F25", "F32", "F33"], n),
            }
        )
        age = rng.uniform(18, 80, n).round(1)
        madrs = np.clip(rng.normal(25 + 3 * shift + 0.1 * age, 6), 0, 60).round()
        obs = pd.DataFrame(
            {
                "person_id": ids,
                "visit": "baseline",
                "age": age,
                "education_years": rng.integers(8, 22, n),
                "madrs_total": madrs,
                "hamd17_total": np.clip(0.6 * madrs + rng.normal(0, 3, n), 0, 52).round(),
                "cgi_s": rng.integers(1, 8, n),
                "ketamine": (rng.random(n) < 0.3 + 0.1 * shift).astype(int),
                "rtms_protocol": rng.choice(["none", "hf_rtms", "itbs"], n),
            }
        )
        missing = rng.random(n) < 0.05
        # none where that would be 1–4 persons: a site refuses to say that 1–4 of its rows
        # were dropped (below the default minimum cell)
        if missing.sum() >= 5:
            obs.loc[missing, "madrs_total"] = np.nan
        out[site] = (person, obs)
    return out


def edit_policy(path: Path, **values: str) -> None:
    """Set top-level policy keys to TOML ``values`` (e.g. ``default_approval='"manual"'``)."""
    text = path.read_text(encoding="utf-8")
    for key, value in values.items():
        pattern = re.compile(rf"^{key} = (\[[^\]]*\]|[^\n]*)$", re.MULTILINE)
        text, n = pattern.subn(f"{key} = {value}", text, count=1)
        assert n == 1, f"no top-level key {key} in {path}"
    path.write_text(text, encoding="utf-8")


@dataclass
class LocalConsortium:
    """Nodes (served) and a coordinator in ``root``."""

    root: Path
    coordinator: Coordinator
    nodes: dict[str, NodeSite] = field(default_factory=dict)
    services: dict[str, NodeService] = field(default_factory=dict)
    servers: dict[str, BackgroundServer] = field(default_factory=dict)
    pooled: pd.DataFrame = field(default_factory=pd.DataFrame)
    stack: ExitStack = field(default_factory=ExitStack)

    @classmethod
    def build(
        cls,
        root: Path,
        data: dict[str, tuple[pd.DataFrame, pd.DataFrame]],
        policy_extra: dict[str, dict[str, str]] | None = None,
    ) -> LocalConsortium:
        consortium = cls(root, Coordinator.create(root / "coordinator"))
        frames = []
        for site, (person, obs) in data.items():
            folder = root / "data" / site
            folder.mkdir(parents=True)
            person.to_csv(folder / "person.csv", index=False)
            obs.to_csv(folder / "observations.csv", index=False)
            consortium.add_site(site, folder, (policy_extra or {}).get(site))
            frames.append(obs.merge(person, on="person_id").assign(site=site))
        consortium.pooled = pd.concat(frames, ignore_index=True)
        return consortium

    @classmethod
    def from_folders(cls, root: Path, folders: dict[str, Path]) -> LocalConsortium:
        """Nodes loading ``fedpsy synth`` folders (every CDM table, so derived variables
        too); ``pooled`` stays empty: read a site's rows with :meth:`rows`."""
        consortium = cls(root, Coordinator.create(root / "coordinator"))
        for site, folder in folders.items():
            consortium.add_site(site, folder)
        return consortium

    def add_site(self, site: str, folder: Path, policy: dict[str, str] | None = None) -> None:
        """A node for ``site`` loading ``folder``, trusting the coordinator, served."""
        node = NodeSite.create(self.root / "nodes" / site, site, None)
        if policy:
            edit_policy(node.dir.policy, **policy)
        node.ingest(folder)
        add_trusted_key(node.dir.root, self.coordinator.dir.public_key)
        service = NodeService(node)
        server = self.stack.enter_context(
            BackgroundServer(create_app(service, node.dir.admin_token.read_text().strip()))
        )
        self.coordinator.add_node(site, server.url)
        self.nodes[site] = node
        self.services[site] = service
        self.servers[site] = server

    def rows(self, variables: list[str], sites: list[str] | None = None) -> pd.DataFrame:
        """The complete cases of ``variables`` at ``sites`` (default all) as the nodes read
        them, with a ``site`` column: ground truth for a pooled reference."""
        frames = [
            self.services[s].frames.frame(variables, "baseline", None).assign(site=s)
            for s in (sites or list(self.services))
        ]
        return pd.concat(frames, ignore_index=True).dropna(subset=variables)

    def close(self) -> None:
        self.stack.close()
