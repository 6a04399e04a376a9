"""A small consortium with a planted target person, and the attacker's helpers.

Every attack runs end to end: each site is a real node (its own store, ingest of CSV
files, its default privacy policy: min_cohort 5, min_cell 5, no DP) served over loopback
HTTP, trusting a real coordinator that signs every request, exactly as ``fedpsy sandbox``
wires them. The attacker is a researcher with an ordinary token: everything they see is the
envelope ``Coordinator.run`` returns.

The data are generated (seeded) so that each attack has what it needs and nothing else
gives the answer away:

* The **target** (site ``a``, ``TARGET.person_id``) is the only person aged 41: no other
  person is aged 38–44, so ``age == 41`` (or a spike ``exp(-((age-41)*100)**2)``) singles
  them out. The attacker knows that (a quasi-identifier); everything else is secret:
  ``madrs_total`` 37, ``ketamine`` 1, ``esketamine`` 1, ``dacc_glu`` 987654 (a dominant
  value; everyone else is about 10), follow-up 1234 days without relapse.
* ``hamd17_total`` is missing for the target only; ``cgi_s`` is missing for five persons
  ``P5`` of site ``a`` and ``bprs_total`` for ``P5`` and the target.
* ``esketamine`` is 1 for the target and two other women of site ``a`` only.
* Three persons of site ``a`` are aged 65.0, 65.3 and 65.6 and nobody else 62–69 (a thin
  band for ``column_too_thin``).
* Relapses happen only on days 101–139 and 1701–1759 (so Kaplan–Meier intervals have 0 or
  many events), censoring is spread over the rest, and nobody but the target leaves
  follow-up between days 1100 and 1400. One person of site ``a`` is censored on day 150,
  among the early relapses.
"""

from __future__ import annotations

import asyncio
import math
import re
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from coordinator.service import Coordinator
from fedpsy.serving import BackgroundServer
from node.auth.trust import add_trusted_key
from node.http.api import create_app
from node.privacy.approvals import approve_app
from node.service import NodeService
from node.site import NodeSite
from schemas.training.bundle import app_hash

Envelope = dict[str, Any]
MIN_CELL = 5  # the default policy's min_cell and min_cohort
MIN_COHORT = 5


@dataclass(frozen=True)
class Target:
    """The planted person and their secret values."""

    person_id: str = "A-00041"
    site: str = "a"
    age: float = 41.0
    sex: str = "F"
    education_years: float = 13.0
    madrs_total: float = 37.0
    ketamine: float = 1.0
    esketamine: float = 1.0
    dacc_glu: float = 987654.0
    followup_days: float = 1234.0
    relapse: float = 0.0

    def secrets(self) -> list[str]:
        """The strings no refusal detail may carry: the person id and secret values."""
        return [self.person_id, "987654", "1234", "37"]


TARGET = Target()
SIZES = {"a": 100, "b": 80}
P5_SIZE = 5
THIN_AGES = (65.0, 65.3, 65.6)
ESKETAMINE_OTHERS = 2
EARLY_CENSORING = 150.0


@dataclass(frozen=True)
class SiteData:
    """The files one site ingests (as ``fedpsy synth`` writes a folder)."""

    person: pd.DataFrame
    observations: pd.DataFrame
    mrs: pd.DataFrame
    events: pd.DataFrame

    def write(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.person.to_csv(folder / "person.csv", index=False)
        self.observations.to_csv(folder / "observations.csv", index=False)
        self.mrs.to_csv(folder / "mrs_measure.csv", index=False)
        if len(self.events):
            self.events.to_csv(folder / "event.csv", index=False)

    def pooled(self) -> pd.DataFrame:
        """One row per person with every variable (derived ones as the node derives them)."""
        out = self.observations.merge(self.person, on="person_id")
        out = out.merge(
            self.mrs[["person_id", "value"]].rename(columns={"value": "dacc_glu"}),
            on="person_id",
            how="left",
        )
        first = self.events.groupby("person_id")["day"].min() if len(self.events) else None
        relapse_day = (
            out["person_id"].map(first) if first is not None else pd.Series(np.nan, out.index)
        )
        out["relapse"] = np.where(relapse_day.notna(), 1.0, 0.0)
        out["time_to_relapse"] = np.where(
            relapse_day.notna(), relapse_day, out["followup_days"].astype(float)
        )
        return out


def _ages(rng: np.random.Generator, n: int) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Ages 18–80 (one decimal) avoiding 38–44 (the target's) and 62–69 (the thin band)."""
    out: list[float] = []
    while len(out) < n:
        a = round(float(rng.uniform(18, 80)), 1)
        if not (38 <= a <= 44 or 62 <= a <= 69):
            out.append(a)
    return np.asarray(out, dtype=np.float64)


def _followup(rng: np.random.Generator, n: int) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Censoring days spread over 200–1100, 1400–1650 and 1800–2000 (none 1100–1400)."""
    spans = [(200, 1100), (1400, 1650), (1800, 2000)]
    pick = rng.integers(0, len(spans), n)
    return np.asarray(
        [float(rng.integers(*spans[k])) for k in pick],
        dtype=np.float64,
    )


def make_sites(seed: int = 20240611, sizes: Mapping[str, int] | None = None) -> dict[str, SiteData]:
    """The consortium's data: ``sizes`` persons per site, the target planted in site ``a``."""
    sizes = dict(sizes or SIZES)
    rng = np.random.default_rng(seed)
    out: dict[str, SiteData] = {}
    for site, n in sizes.items():
        ids = [f"{site.upper()}-{i:05d}" for i in range(n)]
        sex = rng.choice(["F", "M"], n)
        age = _ages(rng, n)
        madrs = np.clip(rng.normal(24, 7, n), 0, 60).round()
        hamd = np.clip(0.6 * madrs + rng.normal(0, 3, n), 0, 52).round()
        cgi = rng.integers(1, 8, n).astype(np.float64)
        bprs = rng.integers(25, 90, n).astype(np.float64)
        ketamine = (rng.random(n) < 0.35).astype(np.float64)
        esketamine = np.zeros(n)
        followup = _followup(rng, n)
        glu = np.clip(rng.normal(10, 1.5, n), 1, None).round(3)
        relapse_day = np.full(n, np.nan)
        relapsing = rng.random(n) < 0.3
        early = rng.random(n) < 0.5
        relapse_day[relapsing & early] = rng.integers(101, 140, n)[relapsing & early]
        relapse_day[relapsing & ~early] = rng.integers(1701, 1760, n)[relapsing & ~early]
        followup[relapsing] = 2000.0
        if site == TARGET.site:
            t = int(TARGET.person_id.split("-")[1])
            age[t], sex[t] = TARGET.age, TARGET.sex
            madrs[t], hamd[t] = TARGET.madrs_total, np.nan
            ketamine[t], esketamine[t] = TARGET.ketamine, TARGET.esketamine
            followup[t], relapse_day[t] = TARGET.followup_days, np.nan
            glu[t] = TARGET.dacc_glu
            others = [i for i in range(n) if i != t]
            p5 = others[:P5_SIZE]
            cgi[p5] = np.nan
            bprs[[*p5, t]] = np.nan
            thin = others[P5_SIZE : P5_SIZE + len(THIN_AGES)]
            age[thin] = THIN_AGES
            women = [i for i in others[P5_SIZE + len(THIN_AGES) :] if sex[i] == "F"]
            esketamine[women[:ESKETAMINE_OTHERS]] = 1.0
            censored = others[-1]  # censored among the early relapses
            followup[censored], relapse_day[censored] = EARLY_CENSORING, np.nan
        person = pd.DataFrame(
            {
                "person_id": ids,
                "sex": sex,
                "birth_year": rng.integers(1945, 2005, n),
                "primary_diagnosis": rng.choice(["F20", "F25", "F32", "F33"], n),
            }
        )
        observations = pd.DataFrame(
            {
                "person_id": ids,
                "visit": "baseline",
                "age": age,
                "education_years": rng.integers(8, 23, n).astype(np.float64),
                "madrs_total": madrs,
                "hamd17_total": hamd,
                "cgi_s": cgi,
                "bprs_total": bprs,
                "ketamine": ketamine,
                "esketamine": esketamine,
                "followup_days": followup,
            }
        )
        if site == TARGET.site:
            observations.loc[int(TARGET.person_id.split("-")[1]), "education_years"] = (
                TARGET.education_years
            )
        mrs = pd.DataFrame(
            {
                "person_id": ids,
                "visit": "baseline",
                "region": "dACC",
                "metabolite": "Glu",
                "value": glu,
                "unit": "i.u.",
                "reference": "Cr",
                "scanner_id": f"scanner-{site}",
            }
        )
        has = ~np.isnan(relapse_day)
        events = pd.DataFrame(
            {
                "person_id": [ids[i] for i in np.flatnonzero(has)],
                "kind": "relapse",
                "day": relapse_day[has].astype(int),
            }
        )
        out[site] = SiteData(person, observations, mrs, events)
    return out


@dataclass
class Consortium:
    """Served nodes and a coordinator; :meth:`run` is the attacker's only door."""

    root: Path
    coordinator: Coordinator
    data: dict[str, SiteData]
    nodes: dict[str, NodeSite] = field(default_factory=dict)
    services: dict[str, NodeService] = field(default_factory=dict)
    log: list[Envelope] = field(default_factory=list)

    def run(self, request: Mapping[str, Any]) -> Envelope:
        """Run ``request`` as the researcher; every envelope is kept in :attr:`log`."""
        result: Envelope = asyncio.run(self.coordinator.run(dict(request)))
        self.log.append(result)
        return result


def ingested_nodes(root: Path, data: Mapping[str, SiteData]) -> dict[str, Path]:
    """A node directory per site with its data ingested (no trusted key yet): templates
    that :func:`consortium` copies, so each consortium starts from an empty memory without
    paying for the migrations and the ingest again."""
    out: dict[str, Path] = {}
    for name, site_data in data.items():
        folder = root / "data" / name
        site_data.write(folder)
        with NodeSite.create(root / "nodes" / name, name, None) as node:
            node.ingest(folder)
            approve_app(node.dir.root, app_hash(), "attack tests")
        out[name] = root / "nodes" / name
    return out


@contextmanager
def consortium(
    root: Path,
    data: Mapping[str, SiteData] | None = None,
    sites: Iterable[str] | None = None,
    templates: Mapping[str, Path] | None = None,
) -> Iterator[Consortium]:
    """Build the consortium in ``root`` (as ``fedpsy sandbox`` does) and tear it down.

    ``templates``: ingested node directories of the same ``data`` (:func:`ingested_nodes`)
    to copy instead of creating and ingesting each node."""
    data = dict(data or make_sites())
    if sites is not None:
        data = {s: data[s] for s in sites}
    made = ingested_nodes(
        root / "made", {s: d for s, d in data.items() if s not in (templates or {})}
    )
    sources = {**made, **{s: p for s, p in (templates or {}).items() if s in data}}
    with ExitStack() as stack:
        coord = stack.enter_context(Coordinator.create(root / "coordinator"))
        built = Consortium(root, coord, data)
        for name in data:
            node_root = root / "nodes" / name
            shutil.copytree(sources[name], node_root)
            node = stack.enter_context(NodeSite.open(node_root))
            add_trusted_key(node.dir.root, coord.dir.public_key)
            token = node.dir.admin_token.read_text().strip()
            service = NodeService(node)
            server = stack.enter_context(BackgroundServer(create_app(service, token)))
            coord.add_node(name, server.url)
            built.nodes[name] = node
            built.services[name] = service
        yield built


# -- reading envelopes ------------------------------------------------------------------


def ok(envelope: Envelope) -> bool:
    return envelope.get("status") == "ok"


def code_of(envelope: Envelope) -> str | None:
    """The refusal or error code (``None`` for an answer)."""
    reason = envelope.get("reason")
    return None if reason is None else str(reason.get("code"))


Signature = tuple[str, str | None, str]


def signature(envelope: Envelope) -> Signature:
    """What an attacker can compare between two answers: status, code and the per-site
    codes of a refusal (not the request id)."""
    reason = envelope.get("reason") or {}
    sites = reason.get("sites") or {}
    return str(envelope.get("status")), code_of(envelope), repr(sorted(sites.items()))


def coefficient(envelope: Envelope, term: str) -> float:
    for row in envelope["result"]["coefficients"]:
        if row["term"] == term:
            return float(row["estimate"])
    raise KeyError(term)


def site_n(envelope: Envelope) -> dict[str, int]:
    return {s: int(v["n"]) for s, v in envelope.get("sites", {}).items()}


def summary_of(envelope: Envelope, variable: str) -> dict[str, Any]:
    found: dict[str, Any] = envelope["result"]["variables"][variable]
    return found


def total_of(envelope: Envelope, variable: str) -> float | None:
    """``n · mean`` of a summary (the sum over the rows used), or None if not released."""
    if not ok(envelope):
        return None
    s = summary_of(envelope, variable)
    if s["mean"] is None:
        return None
    return float(s["n"]) * float(s["mean"])


def details(envelopes: Iterable[Envelope]) -> list[str]:
    """Every refusal or error text the attacker saw."""
    out: list[str] = []
    for e in envelopes:
        reason = e.get("reason")
        if reason is None:
            continue
        out.append(str(reason.get("detail") or ""))
        out.extend(str(v) for v in (reason.get("sites") or {}).values())
    return out


def assert_details_clean(envelopes: Iterable[Envelope], target: Target = TARGET) -> None:
    """Attack class 9: refusal details name rules, never the protected value or person.
    Quoted parts are the request's own words echoed back (a formula), not data."""
    for detail in details(envelopes):
        text = re.sub(r"'[^']*'", "''", detail)
        for secret in target.secrets():
            pattern = rf"(?<![\d.]){re.escape(secret)}(?![\d.])"
            assert re.search(pattern, text) is None, f"{secret!r} in refusal detail {text!r}"


def close_to(estimate: float | None, truth: float, margin: float) -> bool:
    """Whether the attacker's estimate recovers ``truth`` within ``margin``."""
    return estimate is not None and math.isfinite(estimate) and abs(estimate - truth) <= margin


def cohort_all(*conditions: Mapping[str, Any]) -> dict[str, Any]:
    return {"all": [dict(c) for c in conditions]}


def cond(var: str, op: str, value: Any = None) -> dict[str, Any]:
    out: dict[str, Any] = {"var": var, "op": op}
    if value is not None:
        out["value"] = value
    return out


def bisect_oracle(
    probe: Callable[[int], Signature], low: int, high: int
) -> tuple[int, int, list[Signature]]:
    """Binary search of an integer secret ``x`` through an oracle whose answer at ``t``
    tells ``x <= t`` from ``x > t``: ``probe(low)`` is taken as the ``x > t`` answer and
    ``probe(high)`` as the ``x <= t`` one. Returns the final bracket ``(lo, hi]`` holding
    ``x`` (``hi - lo == 1`` pins it to ``hi``) and every signature seen. The search stops
    when the two references agree (no oracle) or an answer matches neither."""
    above, below = probe(low), probe(high)
    seen = [above, below]
    lo, hi = low, high
    if above == below:
        return lo, hi, seen
    while hi - lo > 1:
        mid = (lo + hi) // 2
        answer = probe(mid)
        seen.append(answer)
        if answer == below:
            hi = mid
        elif answer == above:
            lo = mid
        else:
            break
    return lo, hi, seen


def pinned(bracket: tuple[int, int, list[Signature]]) -> int | None:
    """The secret an integer bisection recovered, or None."""
    lo, hi, _ = bracket
    return hi if hi - lo == 1 else None
