"""The data-quality report over real signed HTTP on a ``fedpsy synth`` consortium:
completeness, means, sds and SMDs equal pandas on the pooled synthetic files (1e-8
relative); counts below a site's minimum cell and dominated means are suppressed, not
refused; the planted scanner effect and implausible ages are flagged, and ComBat removes the
site effect; temporal checks count what was planted in a store."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, insert, update

from fedpsy.synth import generate
from node.data.checks import temporal_flags, visit_counts
from node.store import tables as t
from schemas.steps.quality import visit_order
from tests.support.consortium import LocalConsortium, clinical_sites

pytestmark = pytest.mark.xdist_group("data_quality")
VISITS = ["baseline", "week26"]
REQUEST: dict[str, Any] = {
    "analysis": "data_quality",
    "variables": ["age", "education_years", "sex", "dacc_glx", "trs"],
    "visits": VISITS,
}


def close(a: float | None, b: float) -> bool:
    return a is not None and math.isclose(a, b, rel_tol=1e-8, abs_tol=1e-12)


class Synth:
    """A consortium loaded from ``fedpsy synth`` folders, and those folders' files."""

    def __init__(self, root: Path) -> None:
        self.folders = generate(3, 150, 7, root / "data")
        self.consortium = LocalConsortium.from_folders(root, self.folders)
        self.coordinator = self.consortium.coordinator
        self.nodes = self.consortium.nodes

    def table(self, name: str) -> pd.DataFrame:
        """One CDM file of every site, pooled, with a ``site`` column."""
        return pd.concat(
            [pd.read_csv(f / f"{name}.csv").assign(site=s) for s, f in self.folders.items()],
            ignore_index=True,
        )


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synth]:
    built = Synth(tmp_path_factory.mktemp("dq"))
    yield built
    built.consortium.close()


def run(coordinator: Any, request: dict[str, Any]) -> dict[str, Any]:
    envelope: dict[str, Any] = asyncio.run(coordinator.run(request))
    assert envelope["status"] == "ok", envelope
    return envelope


@pytest.fixture(scope="module")
def report(synth: Synth) -> dict[str, Any]:
    result: dict[str, Any] = run(synth.coordinator, REQUEST)["result"]
    return result


def pooled(synth: Synth) -> pd.DataFrame:
    """Per person and visit: site, age, dacc_glx (from the synthetic files)."""
    visits = synth.table("visit")
    obs = synth.table("observations")[["person_id", "visit", "age"]]
    mrs = synth.table("mrs_measure")
    glx = mrs[(mrs["region"] == "dACC") & (mrs["metabolite"] == "Glx")]
    glx = glx[["person_id", "visit", "value"]].rename(columns={"value": "dacc_glx"})
    out = visits.merge(obs, on=["person_id", "visit"], how="left")
    return out.merge(glx, on=["person_id", "visit"], how="left")


def expect_numeric(frame: pd.DataFrame, code: str, cells: dict[str, Any]) -> int:
    """Checks each site's n, completeness, mean, sd and SMD; returns cells compared."""
    checked = 0
    for site, cell in cells.items():
        own = frame[frame["site"] == site]
        n = int(own[code].notna().sum())
        if 0 < n < 5:
            assert cell["n"] is None and cell["completeness"] is None
            assert "n" in cell["suppressed"]
            continue
        assert cell["n"] == n
        assert close(cell["completeness"], n / len(own))
        values = own[code].dropna()
        assert close(cell["mean"], float(values.mean()))
        assert close(cell["sd"], float(values.std(ddof=1)))
        released = [s for s, c in cells.items() if s != site and c["mean"] is not None]
        others = frame[frame["site"].isin(released)][code].dropna()
        if len(others) > 1 and n > 1:
            pooled_sd = math.sqrt((values.var(ddof=1) + others.var(ddof=1)) / 2)
            assert close(cell["smd"], (values.mean() - others.mean()) / pooled_sd)
            checked += 1
    return checked


def test_completeness_moments_and_smd_equal_pandas(synth: Synth, report: dict[str, Any]) -> None:
    frame = pooled(synth)
    compared = 0
    for visit in VISITS:
        at = frame[frame["visit"] == visit]
        assert report["persons"][visit] == at.groupby("site").size().to_dict()
        for code in ("age", "dacc_glx"):
            compared += expect_numeric(at, code, report["report"][code][visit])
    assert compared >= 8
    # person-level variables: at the first visit only, over the persons there
    base = frame[frame["visit"] == "baseline"]
    person = synth.table("person").set_index("person_id")
    obs = synth.table("observations")
    education = obs[obs["visit"] == "baseline"].set_index("person_id")["education_years"]
    base = base.assign(
        education_years=base["person_id"].map(education), sex=base["person_id"].map(person["sex"])
    )
    assert set(report["report"]["education_years"]) == {"baseline"}
    expect_numeric(base, "education_years", report["report"]["education_years"]["baseline"])
    for site, cell in report["report"]["sex"]["baseline"].items():
        shares = base[base["site"] == site]["sex"].value_counts(normalize=True)
        assert cell["shares"].keys() == {"F", "M"}
        for level, share in cell["shares"].items():
            assert close(share, float(shares.get(level, 0.0)))


def test_planted_scanner_effect_is_flagged_and_combat_removes_it(
    synth: Synth, report: dict[str, Any]
) -> None:
    effects = [
        f for f in report["flags"] if f["rule"] == "site_effect" and f["variable"] == "dacc_glx"
    ]
    assert effects, report["flags"]
    flag = effects[0]
    smd = report["report"]["dacc_glx"][flag["visit"]][flag["site"]]["smd"]
    assert flag["value"] == smd and abs(smd) > 0.5 and flag["threshold"] == 0.5
    suggestion = flag["suggestion"]
    assert suggestion["analysis"] == "combat" and suggestion["variables"] == ["dacc_glx"]
    harmonized = run(synth.coordinator, suggestion)
    assert harmonized["result"]["new_variables"] == ["dacc_glx_combat"]
    after = run(
        synth.coordinator,
        {"analysis": "data_quality", "variables": ["dacc_glx_combat"], "visits": ["baseline"]},
    )["result"]
    cells = after["report"]["dacc_glx_combat"]["baseline"]
    assert all(abs(c["smd"]) < 0.05 for c in cells.values() if c["smd"] is not None)
    assert not [f for f in after["flags"] if f["rule"] == "site_effect"]


def test_planted_implausible_ages_are_counted_and_flagged(
    synth: Synth, report: dict[str, Any]
) -> None:
    frame = pooled(synth)
    base = frame[frame["visit"] == "baseline"]
    outside = base[(base["age"] < 18) | (base["age"] > 90)].groupby("site").size()
    assert outside.to_dict() == {"berlin": outside["berlin"]} and outside["berlin"] >= 5
    cells = report["report"]["age"]["baseline"]
    assert cells["berlin"]["implausible"] == outside["berlin"]
    assert cells["amsterdam"]["implausible"] == 0 == cells["copenhagen"]["implausible"]
    flags = [f for f in report["flags"] if f["rule"] == "implausible"]
    assert [(f["site"], f["variable"], f["value"]) for f in flags] == [
        ("berlin", "age", outside["berlin"])
    ]
    assert flags[0]["suggestion"]["cohort"]["all"][0] == {
        "var": "site",
        "op": "==",
        "value": "berlin",
    }


def test_low_completeness_is_flagged_where_others_measured(report: dict[str, Any]) -> None:
    for flag in (f for f in report["flags"] if f["rule"] == "completeness"):
        cells = report["report"][flag["variable"]][flag["visit"]]
        assert flag["value"] == cells[flag["site"]]["completeness"] < 0.5
        assert any(c["n"] != 0 for c in cells.values())
    flagged = {(f["site"], f["variable"], f["visit"]) for f in report["flags"]}
    for code, visits in report["report"].items():
        for visit, cells in visits.items():
            for site, cell in cells.items():
                low = cell["completeness"] is not None and cell["completeness"] < 0.5
                assert low == ((site, code, visit) in flagged and low)


def test_temporal_checks_count_what_the_store_holds(synth: Synth) -> None:
    node = synth.nodes["copenhagen"]
    visit = synth.table("visit")
    later = visit[(visit["site"] == "copenhagen") & (visit["visit"] == "week26")]
    ids = list(later["person_id"][:12])
    with node.engine.begin() as conn:
        for pid in ids[:6]:  # an event dated before the index date
            conn.execute(insert(t.event).values(person_id=pid, kind="relapse", day=-3))
        for pid in ids[6:12]:  # week26 recorded before baseline
            conn.execute(
                update(t.visit)
                .where(t.visit.c.person_id == pid, t.visit.c.label == "week26")
                .values(day=-10)
            )
        conn.execute(  # fewer than the minimum cell: suppressed
            insert(t.drug_exposure).values(
                person_id=ids[0], drug="haloperidol", start_day=900, end_day=800
            )
        )
    result = run(synth.coordinator, {**REQUEST, "variables": ["age"], "visits": ["baseline"]})
    temporal = result["result"]["temporal"]
    assert temporal["copenhagen"] == {
        "visit_order": 6,
        "event_before_index": 6,
        "exposure_end_before_start": None,
    }
    assert temporal["amsterdam"] == dict.fromkeys(temporal["amsterdam"], 0)
    flags = {(f["site"], f["variable"], f["rule"], f["value"]) for f in result["result"]["flags"]}
    assert ("copenhagen", "event", "event_before_index", 6) in flags
    assert ("copenhagen", "drug_exposure", "exposure_end_before_start", None) in flags


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalConsortium]:
    data = clinical_sites({"lisbon": 60, "madrid": 50, "naples": 40})
    obs = data["madrid"][1]
    obs["madrs_total"] = 25.0  # everyone alike but one: that one dominates the variance
    obs.loc[0, "madrs_total"] = 60.0
    built = LocalConsortium.build(
        tmp_path_factory.mktemp("dq-strict"), data, {"madrid": {"min_cell": "40"}}
    )
    yield built
    built.close()


def test_small_counts_and_dominated_means_are_suppressed_not_refused(
    strict: LocalConsortium,
) -> None:
    request = {"analysis": "data_quality", "variables": ["age", "ketamine", "madrs_total"]}
    result = run(strict.coordinator, request)["result"]
    pooled_rows = strict.pooled
    madrid = pooled_rows[pooled_rows["site"] == "madrid"]
    ketamine = result["report"]["ketamine"]["baseline"]
    ones = int(madrid["ketamine"].sum())
    assert 0 < ones < 40  # a level below madrid's minimum cell of 40: the shares are withheld
    assert ketamine["madrid"]["shares"] is None and ketamine["madrid"]["suppressed"] == ["levels"]
    assert ketamine["madrid"]["n"] == len(madrid)
    lisbon = pooled_rows[pooled_rows["site"] == "lisbon"]
    assert close(ketamine["lisbon"]["shares"]["1"], float(lisbon["ketamine"].mean()))
    madrs = result["report"]["madrs_total"]["baseline"]
    # one value dominates madrid's sum of squares (p%-rule): its mean is withheld, not its n
    assert madrs["madrid"]["mean"] is None and madrs["madrid"]["suppressed"] == ["mean"]
    assert madrs["madrid"]["n"] == len(madrid) and madrs["madrid"]["smd"] is None
    age = result["report"]["age"]["baseline"]
    assert close(age["madrid"]["mean"], float(madrid["age"].mean()))
    assert close(age["lisbon"]["mean"], float(lisbon["age"].mean()))
    others = pooled_rows[pooled_rows["site"] != "lisbon"]["age"]
    sd = math.sqrt((lisbon["age"].var() + others.var()) / 2)
    assert close(age["lisbon"]["smd"], (lisbon["age"].mean() - others.mean()) / sd)
    assert np.isfinite(madrs["naples"]["smd"])


def test_a_visit_a_site_does_not_hold_is_withheld_with_the_size_refusal(
    strict: LocalConsortium,
) -> None:
    request = {"analysis": "data_quality", "variables": ["age"], "visits": ["baseline", "week6"]}
    result = run(strict.coordinator, request)["result"]
    sites = ["lisbon", "madrid", "naples"]
    assert result["withheld"] == {"week6": dict.fromkeys(sites, "cohort_too_small")}
    cells = result["report"]["age"]["week6"]
    assert all(
        cells[s]["n"] is None and cells[s]["suppressed"] == ["cohort_too_small"] for s in sites
    )
    assert result["report"]["age"]["baseline"]["lisbon"]["n"] == 60


def test_temporal_flags_and_visit_counts_on_each_backend(store_engine: Engine) -> None:
    """The store reads behind the temporal step, on SQLite and PostgreSQL: visit days
    against the order of nominal labels (others ignored), events before day 0, exposures
    ending before they start."""
    persons = [f"P{i}" for i in range(4)]
    visits = [
        ("P0", "baseline", 0),
        ("P0", "week2", 14),
        ("P0", "month3", 90),
        ("P1", "baseline", 0),
        ("P1", "week6", 40),
        ("P1", "week2", 45),  # week6 before week2
        ("P2", "baseline", 3),
        ("P2", "followup", 1),  # a label with no nominal time
        ("P3", "baseline", 0),
        ("P3", "week2", 0),  # the same day twice
    ]
    with store_engine.begin() as conn:
        for row_id, pid in enumerate(persons):
            conn.execute(insert(t.person).values(person_id=pid, row_id=row_id))
        for pid, label, day in visits:
            conn.execute(insert(t.visit).values(person_id=pid, label=label, day=day))
        conn.execute(insert(t.event).values(person_id="P2", kind="relapse", day=-1))
        conn.execute(insert(t.event).values(person_id="P0", kind="relapse", day=0))
        conn.execute(
            insert(t.drug_exposure).values(person_id="P3", drug="clozapine", start_day=5, end_day=4)
        )
        conn.execute(
            insert(t.drug_exposure).values(person_id="P0", drug="clozapine", start_day=5, end_day=5)
        )
    flags = temporal_flags(store_engine)
    assert flags.index.tolist() == [0, 1, 2, 3]
    assert flags["visit_order"].tolist() == [False, True, False, True]
    assert flags["event_before_index"].tolist() == [False, False, True, False]
    assert flags["exposure_end_before_start"].tolist() == [False, False, False, True]
    assert visit_counts(store_engine) == {
        "baseline": 4,
        "week2": 3,
        "month3": 1,
        "week6": 1,
        "followup": 1,
    }
    assert [v for v in sorted(visit_counts(store_engine), key=visit_order)] == [
        "baseline",
        "week2",
        "week6",
        "month3",
        "followup",
    ]
