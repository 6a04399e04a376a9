"""Tests of ``fedpsy.synth``: determinism, file layout, value ranges, and the clinical and
MRS structure the generator promises (ketamine response, TRS glutamate, scanner effects,
derivable TRS/URS/TRD prevalences)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from fedpsy.synth import generate, mrs
from fedpsy.synth.drugs import DDD_MG
from fedpsy.synth.qids import rush_total
from fedpsy.synth.sites import make_sites, site_name, site_prefix
from fedpsy.synth.tables import OBSERVATION_COLUMNS
from schemas.errors import BadInput

FILES = ("person", "visit", "observations", "drug_exposure", "mrs_measure", "event")
HEADERS = {
    "person": ["person_id", "sex", "birth_year", "primary_diagnosis"],
    "visit": ["person_id", "visit", "day"],
    "drug_exposure": ["person_id", "drug", "start_day", "end_day", "daily_dose_mg", "adherence"],
    "mrs_measure": [
        "person_id",
        "visit",
        "region",
        "metabolite",
        "value",
        "unit",
        "reference",
        "crlb_pct",
        "scanner_id",
        "field_strength_t",
        "te_ms",
    ],
    "event": ["person_id", "kind", "day"],
}
VISITS = ["baseline", "week2", "week6", "week12", "week26"]
PANSS = [f"panss_{d}{i}" for d, k in (("p", 7), ("n", 7), ("g", 16)) for i in range(1, k + 1)]
QIDS = [f"qids_{i:02d}" for i in range(1, 17)]
# CDM.md ranges of the observation variables: (kind, min, max)
RANGES: dict[str, tuple[str, float, float]] = {
    "age": ("numeric", 12, 110),
    "education_years": ("numeric", 0, 30),
    **{c: ("integer", 1, 7) for c in PANSS},
    "cgi_s": ("integer", 1, 7),
    "bprs_total": ("integer", 18, 126),
    **{c: ("integer", 0, 3) for c in QIDS},
    "hamd17_total": ("integer", 0, 52),
    "madrs_total": ("integer", 0, 60),
    "ect_sessions": ("integer", 0, 100),
    "ketamine": ("integer", 0, 1),
    "esketamine": ("integer", 0, 1),
    "rtms_sessions": ("integer", 0, 100),
    "followup_days": ("integer", 0, 20000),
}
DERIVED = [
    "panss_total",
    "panss_positive",
    "qids_total",
    "trs",
    "urs",
    "trd",
    "dacc_glx",
    "cpz_eq_current",
    "antipsychotic_current",
    "relapse",
    "mrs_scanner",
]


def _read(folder: Path, table: str) -> pd.DataFrame:
    return pd.read_csv(folder / f"{table}.csv", dtype=str, keep_default_na=False)


def _num(frame: pd.DataFrame, column: str) -> pd.Series:
    return pd.to_numeric(frame[column].replace("", np.nan)).astype(float)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return generate(3, 300, 7, tmp_path_factory.mktemp("small"))


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return generate(3, 1200, 11, tmp_path_factory.mktemp("large"))


def _bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_same_seed_gives_identical_bytes_and_other_seed_differs(tmp_path: Path) -> None:
    generate(2, 150, 3, tmp_path / "a")
    generate(2, 150, 3, tmp_path / "b")
    generate(2, 150, 4, tmp_path / "c")
    a, b, c = (_bytes(tmp_path / x) for x in "abc")
    assert a == b
    assert len(a) >= 13  # 2 sites × 6 files + README
    assert a.keys() == c.keys()
    differing = [name for name in a if a[name] != c[name]]
    assert len(differing) >= 12


def test_folder_layout_and_headers(small: dict[str, Path]) -> None:
    assert list(small) == ["amsterdam", "berlin", "copenhagen"]
    root = small["amsterdam"].parent
    readme = (root / "README.md").read_text(encoding="utf-8")
    for site, folder in small.items():
        assert folder == root / site
        assert sorted(p.name for p in folder.iterdir()) == sorted(f"{t}.csv" for t in FILES)
        for table, header in HEADERS.items():
            assert _read(folder, table).columns.tolist() == header
        obs_header = _read(folder, "observations").columns.tolist()
        assert obs_header[:2] == ["person_id", "visit"]
        assert sorted(obs_header[2:]) == sorted([*RANGES, "rtms_protocol"])
        assert not set(DERIVED) & set(obs_header)
        assert site in readme
    for profile in make_sites(3, 300, 7):
        for scanner in profile.scanners:
            assert scanner.scanner_id in readme


def test_observation_columns_are_the_dictionary_observation_variables() -> None:
    dictionary = pytest.importorskip("schemas.dictionary").load_dictionary()
    assert set(OBSERVATION_COLUMNS[2:]) == set(dictionary.codes(source="observation"))


def test_site_sizes_are_unequal_and_sum_to_the_total(small: dict[str, Path]) -> None:
    sizes = [len(_read(folder, "person")) for folder in small.values()]
    assert sum(sizes) == 900
    assert len(set(sizes)) == 3
    assert all(0.55 * 300 <= s <= 1.45 * 300 for s in sizes)
    ids = pd.concat([_read(folder, "person")["person_id"] for folder in small.values()])
    assert ids.is_unique
    assert ids.str.fullmatch(r"(AMS|BER|COP)-\d{6}").all()


def test_sites_beyond_the_city_list_and_bad_input(tmp_path: Path) -> None:
    assert (site_name(0), site_prefix(0)) == ("amsterdam", "AMS")
    assert (site_name(10), site_prefix(10)) == ("site11", "S11")
    folders = generate(11, 12, 1, tmp_path)
    assert list(folders)[-1] == "site11"
    ids = pd.concat([_read(f, "person")["person_id"] for f in folders.values()])
    assert ids.is_unique and len(ids) == 132
    with pytest.raises(BadInput):
        generate(0, 10, 1, tmp_path / "none")
    with pytest.raises(BadInput):
        generate(2, 0, 1, tmp_path / "none")


def test_progress_reports_every_person(tmp_path: Path) -> None:
    calls: list[int] = []
    generate(2, 40, 2, tmp_path, calls.append)
    assert sum(calls) == 80 and len(calls) >= 2


def _check_ranges(obs: pd.DataFrame) -> None:
    for code, (kind, lo, hi) in RANGES.items():
        text = obs[code][obs[code] != ""]
        if kind == "integer":
            assert text.str.fullmatch(r"-?\d+").all(), code  # no "3.0"
        values = text.astype(float)
        assert values.between(lo, hi).all(), code
    assert set(obs["rtms_protocol"]) <= {"", "none", "hf_rtms", "lf_rtms", "itbs", "dtms"}
    assert set(obs["visit"]) <= set(VISITS)
    assert not obs.duplicated(["person_id", "visit"]).any()
    person_level = obs[obs["visit"] != "baseline"]
    assert (person_level[["education_years", "followup_days"]] == "").all().all()


def _check_with_dictionary(folder: Path) -> None:
    dictionary = pytest.importorskip("schemas.dictionary").load_dictionary()
    obs, person = _read(folder, "observations"), _read(folder, "person")
    for frame, columns in ((obs, OBSERVATION_COLUMNS[2:]), (person, person.columns[1:])):
        for code in columns:
            variable = dictionary.get(code)
            for cell in frame[code].unique():
                if cell == "":
                    continue
                value: object = cell if variable.type == "categorical" else float(cell)
                assert variable.check_value(value) is None, (code, cell)


def test_values_are_within_the_cdm_ranges(small: dict[str, Path]) -> None:
    for folder in small.values():
        person, visit = _read(folder, "person"), _read(folder, "visit")
        assert set(person["sex"]) <= {"F", "M"}
        assert set(person["primary_diagnosis"]) <= {"F20", "F25", "F31", "F32", "F33", "HC"}
        assert person["birth_year"].astype(int).between(1900, 2030).all()
        assert set(visit["visit"]) <= set(VISITS)
        assert (visit.loc[visit["visit"] == "baseline", "day"] == "0").all()
        assert len(visit[visit["visit"] == "baseline"]) == len(person)
        obs = _read(folder, "observations")
        assert obs[["person_id", "visit"]].equals(visit[["person_id", "visit"]])
        _check_ranges(obs)

        drugs = _read(folder, "drug_exposure")
        assert set(drugs["drug"]) <= set(DDD_MG)
        start, end = _num(drugs, "start_day"), _num(drugs, "end_day")
        assert (end.isna() | (end >= start)).all()
        assert (_num(drugs, "daily_dose_mg") > 0).all()
        adherence = _num(drugs, "adherence")
        assert adherence.dropna().between(0, 1).all() and adherence.isna().any()
        assert not drugs.duplicated(["person_id", "drug", "start_day"]).any()
        assert drugs["start_day"].str.fullmatch(r"-?\d+").all()

        scans = _read(folder, "mrs_measure")
        assert set(scans["region"]) == {"dACC", "mPFC", "OCC"}
        assert set(scans["metabolite"]) == {"Glu", "Gln", "Glx", "NAA", "GABA"}
        assert set(scans["reference"]) <= {"Cr", "water"}
        assert _num(scans, "crlb_pct").between(5, 20).all()
        assert set(scans["field_strength_t"]) <= {"3", "7"}
        assert (_num(scans, "value") > 0).all()
        assert not scans.duplicated(["person_id", "visit", "region", "metabolite"]).any()
        wide = scans.pivot_table(
            index=["person_id", "visit", "region"],
            columns="metabolite",
            values="value",
            aggfunc="first",
        ).astype(float)
        assert np.allclose(wide["Glx"], wide["Glu"] + wide["Gln"], atol=1.5e-3)

        events = _read(folder, "event")
        assert set(events["kind"]) == {"relapse", "rehospitalization", "remission"}
        assert not events.duplicated(["person_id", "kind", "day"]).any()
        followup = _num(obs[obs["visit"] == "baseline"].set_index("person_id"), "followup_days")
        days = _num(events, "day").to_numpy()
        assert (days >= 1).all()
        assert (days <= followup.loc[events["person_id"]].to_numpy()).all()
        _check_with_dictionary(folder)


def _qids_by_visit(folders: dict[str, Path], arm: str) -> pd.Series:
    parts = []
    for folder in folders.values():
        obs = _read(folder, "observations").merge(_read(folder, "person"), on="person_id")
        treated = obs.loc[
            (obs["visit"] == "baseline")
            & (obs[arm] == "1")
            & obs["primary_diagnosis"].isin(["F32", "F33"]),
            "person_id",
        ]
        rows = obs[obs["person_id"].isin(treated)].copy()
        rows["qids_total"] = rush_total(rows[QIDS].replace("", np.nan).astype(float).to_numpy())
        parts.append(rows[["visit", "qids_total"]])
    frame = pd.concat(parts)
    return frame.groupby("visit")["qids_total"].mean()


def test_ketamine_brings_qids_from_about_19_to_about_7(large: dict[str, Path]) -> None:
    means = _qids_by_visit(large, "ketamine")
    assert 17.0 <= means["baseline"] <= 21.0
    assert 5.0 <= means["week2"] <= 10.0
    assert means["week6"] <= 11.0
    assert means["baseline"] - means["week2"] >= 8.0
    esketamine = _qids_by_visit(large, "esketamine")
    assert esketamine["baseline"] - esketamine["week6"] >= 6.0


def test_dacc_glx_is_higher_in_trs_before_scanner_offsets() -> None:
    rng = np.random.default_rng(5)
    n = 20_000
    trs = np.arange(n) < n // 2
    levels = mrs.true_levels(rng, trs, np.zeros(n, dtype=bool), np.full(n, 35.0))
    glx = levels[:, :, 0] + levels[:, :, 1]  # (n, region)
    for region, lo, hi in (("dACC", 0.35, 0.7), ("OCC", -0.08, 0.08)):
        r = mrs.REGIONS.index(region)
        a, b = glx[trs, r], glx[~trs, r]
        d = (a.mean() - b.mean()) / np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
        assert lo <= d <= hi, (region, d)


def test_dacc_glx_higher_with_clozapine_within_scanner(large: dict[str, Path]) -> None:
    zs, clozapine = [], []
    for folder in large.values():
        person = _read(folder, "person")
        psychosis = set(person.loc[person["primary_diagnosis"].isin(["F20", "F25"]), "person_id"])
        drugs = _read(folder, "drug_exposure")
        on_clozapine = set(drugs.loc[drugs["drug"] == "clozapine", "person_id"])
        scans = _read(folder, "mrs_measure")
        glx = scans[
            (scans["region"] == "dACC")
            & (scans["metabolite"] == "Glx")
            & (scans["visit"] == "baseline")
            & scans["person_id"].isin(psychosis)
        ]
        for _, group in glx.groupby("scanner_id"):
            values = group["value"].astype(float)
            zs.append(((values - values.mean()) / values.std()).to_numpy())
            clozapine.append(group["person_id"].isin(on_clozapine).to_numpy())
    z, c = np.concatenate(zs), np.concatenate(clozapine)
    assert c.sum() > 50 and (~c).sum() > 50
    assert z[c].mean() - z[~c].mean() > 0.25
    assert stats.ttest_ind(z[c], z[~c]).pvalue < 0.01


def test_scanners_differ_in_offset(large: dict[str, Path]) -> None:
    scanners = [s for p in make_sites(3, 1200, 11) for s in p.scanners]
    assert len(scanners) >= 3
    calibrations = {(s.scale, s.shift_sd) for s in scanners}
    assert len(calibrations) == len(scanners)
    groups = []
    for folder in large.values():
        scans = _read(folder, "mrs_measure")
        naa = scans[(scans["region"] == "OCC") & (scans["metabolite"] == "NAA")]
        groups += [g["value"].astype(float).to_numpy() for _, g in naa.groupby("scanner_id")]
    assert len(groups) == len(scanners)
    assert stats.f_oneway(*groups).pvalue < 1e-6


def _long_observations(obs: pd.DataFrame, person_level: str) -> pd.DataFrame:
    long = obs.melt(id_vars=["person_id", "visit"], var_name="variable", value_name="text")
    long = long[long["text"] != ""].copy()
    is_person = long["variable"].isin(["education_years", "followup_days"])
    long.loc[is_person, "visit"] = person_level
    text = long["variable"] == "rtms_protocol"
    long["value_num"] = pd.to_numeric(long["text"].where(~text), errors="coerce")
    long["value_text"] = long["text"].where(text)
    return long.drop(columns="text").reset_index(drop=True)


def _derive(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    derive_all: Callable[..., pd.DataFrame] = pytest.importorskip("node.cdm_variables").derive_all
    from node.store.tables import PERSON_LEVEL

    person = _read(folder, "person")
    visit = _read(folder, "visit").rename(columns={"visit": "label"})
    visit["day"] = visit["day"].astype(int)
    drugs = _read(folder, "drug_exposure")
    for c in ("start_day", "end_day", "daily_dose_mg", "adherence"):
        drugs[c] = _num(drugs, c)
    scans = _read(folder, "mrs_measure")
    for c in ("value", "crlb_pct", "field_strength_t", "te_ms"):
        scans[c] = _num(scans, c)
    events = _read(folder, "event")
    events["day"] = events["day"].astype(int)
    obs = _long_observations(_read(folder, "observations"), PERSON_LEVEL)
    derived = derive_all(person, visit, obs, drugs, scans, events)
    phenotypes = derived[derived["visit"] == PERSON_LEVEL].pivot_table(
        index="person_id", columns="variable", values="value_num", aggfunc="first"
    )
    return person.set_index("person_id"), phenotypes


def test_derived_phenotype_prevalences(tmp_path: Path) -> None:
    pytest.importorskip("node.cdm_variables")
    folder = generate(1, 2000, 21, tmp_path)["amsterdam"]
    person, phenotypes = _derive(folder)
    dx = person["primary_diagnosis"]
    psychosis = dx.index[dx.isin(["F20", "F25"])]
    depression = dx.index[dx.isin(["F32", "F33"])]
    trs = phenotypes["trs"].reindex(psychosis)
    assert trs.notna().mean() > 0.95
    assert 0.2 <= trs.mean() <= 0.4
    urs = phenotypes["urs"].reindex(trs.index[trs == 1])
    assert 0.2 <= urs.mean() <= 0.5
    trd = phenotypes["trd"].reindex(depression)
    assert 0.25 <= trd.mean() <= 0.45
    assert phenotypes["trs"].reindex(dx.index[~dx.isin(["F20", "F25"])]).isna().all()


def test_drug_histories_carry_edge_cases_and_noise(small: dict[str, Path]) -> None:
    drugs = pd.concat([_read(folder, "drug_exposure") for folder in small.values()])
    ddd = drugs["drug"].map(DDD_MG).astype(float)
    dose = _num(drugs, "daily_dose_mg")
    cpz = dose / ddd * 300.0
    antipsychotic = drugs["drug"].isin(
        [
            "olanzapine",
            "risperidone",
            "aripiprazole",
            "quetiapine",
            "haloperidol",
            "amisulpride",
            "paliperidone",
            "ziprasidone",
            "lurasidone",
            "zuclopenthixol",
            "perphenazine",
            "flupentixol",
            "cariprazine",
            "chlorpromazine",
        ]
    )
    duration = _num(drugs, "end_day") - _num(drugs, "start_day") + 1
    assert ((cpz == 600.0) & antipsychotic).sum() > 20  # exactly at the TRRIP threshold
    assert (cpz.between(400.0, 599.9) & antipsychotic).sum() > 20  # just under it
    assert ((duration == 41) & antipsychotic).sum() > 3  # one day short of six weeks
    assert (_num(drugs, "adherence").between(0.5, 0.79)).sum() > 10
    assert (drugs["end_day"] == "").sum() > 100  # ongoing exposures
    clozapine = drugs[drugs["drug"] == "clozapine"]
    assert (_num(clozapine, "daily_dose_mg") >= 300).sum() > 20
