"""A local consortium loaded from ``fedpsy synth`` folders (every CDM table), served over
loopback HTTP with a coordinator the nodes trust, and the synthetic files read back as
pooled pandas frames for references."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from coordinator.service import Coordinator
from fedpsy.serving import BackgroundServer
from fedpsy.synth import generate
from node.auth.trust import add_trusted_key
from node.http.api import create_app
from node.service import NodeService
from node.site import NodeSite
from tests.support.consortium import edit_policy


@dataclass
class SynthConsortium:
    root: Path
    coordinator: Coordinator
    folders: dict[str, Path]
    nodes: dict[str, NodeSite] = field(default_factory=dict)
    stack: ExitStack = field(default_factory=ExitStack)

    @classmethod
    def build(
        cls,
        root: Path,
        sites: int,
        persons: int,
        seed: int,
        policy: dict[str, dict[str, str]] | None = None,
    ) -> SynthConsortium:
        folders = generate(sites, persons, seed, root / "data")
        built = cls(root, Coordinator.create(root / "coordinator"), folders)
        for site, folder in folders.items():
            node = NodeSite.create(root / "nodes" / site, site, None)
            if policy and site in policy:
                edit_policy(node.dir.policy, **policy[site])
            node.ingest(folder)
            add_trusted_key(node.dir.root, built.coordinator.dir.public_key)
            token = node.dir.admin_token.read_text().strip()
            server = built.stack.enter_context(
                BackgroundServer(create_app(NodeService(node), token))
            )
            built.coordinator.add_node(site, server.url)
            built.nodes[site] = node
        return built

    def table(self, name: str) -> pd.DataFrame:
        """One CDM file of every site, pooled, with a ``site`` column."""
        frames = [
            pd.read_csv(folder / f"{name}.csv").assign(site=site)
            for site, folder in self.folders.items()
        ]
        return pd.concat(frames, ignore_index=True)

    def close(self) -> None:
        self.stack.close()
