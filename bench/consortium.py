"""Nodes for the benchmarks: synthetic sites loaded into stores, served as real processes.

:func:`build_sites` writes a ``fedpsy synth`` consortium and loads each site into its own
node store. Only what the benchmarked analyses read is loaded — the person table, the
baseline visit's observations and the drug history (from which ``trs`` is derived), and
with ``outcomes`` the follow-up and event table (``relapse``, ``time_to_relapse`` …) — so
that building 150,000 persons stays within a benchmark's time; the rows the analyses see
are the same as with a full load. :class:`ServedNodes` runs each node as its own
``fedpsy node serve`` process (as sites run them), on a free loopback port.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import httpx
import pandas as pd

from fedpsy.synth import generate
from node.auth.trust import add_trusted_key
from node.site import NodeSite

BASELINE_COLUMNS = [
    "person_id",
    "visit",
    "age",
    "education_years",
    "madrs_total",
    "hamd17_total",
    "cgi_s",
    "ketamine",
    "bprs_total",
]
"""Observation columns loaded besides the PANSS items (which derive ``panss_total``)."""


@dataclass(frozen=True)
class Site:
    """A loaded node directory and how many persons it holds."""

    name: str
    root: Path
    persons: int


def _slim(folder: Path, dest: Path, outcomes: bool) -> None:
    """``folder`` (a synth site) reduced to person, baseline observations, drug history
    (and with ``outcomes``, follow-up days and the event table)."""
    dest.mkdir(parents=True)
    for table in ("person", "drug_exposure") + (("event",) if outcomes else ()):
        shutil.copy(folder / f"{table}.csv", dest / f"{table}.csv")
    obs = pd.read_csv(folder / "observations.csv")
    panss = [c for c in obs.columns if c.startswith("panss_")]
    extra = ["followup_days"] if outcomes else []
    base = obs.loc[obs["visit"] == "baseline", BASELINE_COLUMNS + extra + panss]
    base.to_csv(dest / "observations.csv", index=False)


def build_sites(
    root: Path, sites: int, persons: int, seed: int = 11, outcomes: bool = False
) -> list[Site]:
    """``sites`` synthetic sites of ``persons`` persons on average, each loaded in a node
    store under ``root/nodes/<site>`` (with ``outcomes``: follow-up and events too)."""
    folders = generate(sites, persons, seed, root / "synth")
    out = []
    for name, folder in folders.items():
        slim = root / "slim" / name
        _slim(folder, slim, outcomes)
        node = NodeSite.create(root / "nodes" / name, name, None)
        try:
            node.ingest(slim)
        finally:
            node.close()
        count = len(pd.read_csv(slim / "person.csv", usecols=["person_id"]))
        out.append(Site(name, root / "nodes" / name, count))
        shutil.rmtree(folder)
    return out


def trust(sites: list[Site], key_files: list[Path]) -> None:
    """Make every node trust every coordinator public key in ``key_files``."""
    for site in sites:
        for key in key_files:
            add_trusted_key(site.root, key)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def process_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) process ``pid`` has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class ServedNodes:
    """``fedpsy node serve`` processes for ``sites``; ``urls[site]`` once started."""

    sites: list[Site]
    urls: dict[str, str] = field(default_factory=dict)
    _processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def __enter__(self) -> ServedNodes:
        cli = str(Path(sys.executable).parent / "fedpsy")
        env = {**os.environ, "FEDPSY_NODE_LOG_LEVEL": "warning"}
        for site in self.sites:
            port = _free_port()
            process = subprocess.Popen(
                [cli, "node", "serve", str(site.root), "--port", str(port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
            )
            self._processes.append(process)
            self.urls[site.name] = f"http://127.0.0.1:{port}"
        for site in self.sites:
            self._wait(site.name)
        return self

    def cpu_seconds(self, names: list[str] | None = None) -> float:
        """CPU time (user + system) the node processes have used so far (Linux /proc)."""
        wanted = set(names) if names is not None else {s.name for s in self.sites}
        return sum(
            process_cpu_seconds(process.pid)
            for site, process in zip(self.sites, self._processes, strict=True)
            if site.name in wanted
        )

    def peak_rss_mb(self) -> dict[str, float]:
        """Each node process's peak resident memory so far, in MB (Linux ``VmHWM``)."""
        out = {}
        for site, process in zip(self.sites, self._processes, strict=True):
            status = Path(f"/proc/{process.pid}/status").read_text().splitlines()
            peak = next(line for line in status if line.startswith("VmHWM:"))
            out[site.name] = int(peak.split()[1]) / 1024
        return out

    def _wait(self, name: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.urls[name] + "/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"node {name} did not start on {self.urls[name]}")

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for process in self._processes:
            process.terminate()
        for process in self._processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
