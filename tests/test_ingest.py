"""Ingestion on both backends: good files load, every bad input is rejected with a report
naming file, row, column, value and rule, and the store is left exactly as it was."""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine, Select, func, select

from fedpsy.synth import generate
from node.ingest import ingest
from node.ingest.mapping import load_mapping
from node.store import tables as t
from schemas.dictionary import Dictionary, load_dictionary
from schemas.errors import FedpsyError

DICT = load_dictionary()

PERSON = "person_id,sex,birth_year,primary_diagnosis\nP1,F,1980,F20\nP2,M,1975,F32\nP3,M,1990,F20\n"
FLAT = (
    "person_id,visit,age,panss_p1,qids_01,education_years\n"
    "P1,baseline,44,5,,12\nP2,baseline,51,,2,16\nP1,week6,44,4,,12\n"
)


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            name: int(
                conn.execute(select(func.count()).select_from(t.metadata.tables[name])).scalar()
                or 0
            )
            for name in (*t.CDM_TABLES, "ingest_batch")
        }


def write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def loaded(store_engine: Engine, tmp_path: Path) -> Engine:
    ingest(store_engine, DICT, write(tmp_path, "person.csv", PERSON))
    ingest(store_engine, DICT, write(tmp_path, "obs.csv", FLAT))
    return store_engine


def test_good_files_load(loaded: Engine) -> None:
    c = counts(loaded)
    assert c["person"] == 3
    assert c["ingest_batch"] == 2
    with loaded.connect() as conn:
        rows = conn.execute(
            select(t.observation.c.visit, t.observation.c.value_num)
            .where(t.observation.c.person_id == "P1", t.observation.c.variable == "panss_p1")
            .order_by(t.observation.c.visit)
        ).all()
        edu = conn.execute(
            select(t.observation.c.visit, t.observation.c.value_num).where(
                t.observation.c.variable == "education_years"
            )
        ).all()
    assert [(v, x) for v, x in rows] == [("baseline", 5.0), ("week6", 4.0)]
    assert {v for v, _ in edu} == {t.PERSON_LEVEL}  # person-level stored once
    assert len(edu) == 2


def test_reingest_identical_file_is_noop(loaded: Engine, tmp_path: Path) -> None:
    before = counts(loaded)
    report = ingest(loaded, DICT, write(tmp_path, "obs.csv", FLAT))
    assert report.unchanged
    assert counts(loaded) == before


def test_flat_file_creates_unknown_persons(store_engine: Engine, tmp_path: Path) -> None:
    ingest(store_engine, DICT, write(tmp_path, "obs.csv", FLAT))
    with store_engine.connect() as conn:
        people = conn.execute(select(t.person.c.person_id, t.person.c.sex)).all()
    assert sorted(people) == [("P1", None), ("P2", None)]


def persons(engine: Engine) -> dict[str, tuple[object, ...]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                t.person.c.person_id,
                t.person.c.sex,
                t.person.c.birth_year,
                t.person.c.primary_diagnosis,
            )
        ).all()
    return {row[0]: tuple(row[1:]) for row in rows}


def test_flat_file_person_columns_create_and_complete_persons(
    store_engine: Engine, tmp_path: Path
) -> None:
    ingest(store_engine, DICT, write(tmp_path, "person.csv", "person_id,sex\nP1,F\n"))
    flat = write(
        tmp_path,
        "obs.csv",
        "person_id,visit,sex,birth_year,primary_diagnosis,age\n"
        "P1,baseline,F,1980,F20,44\n"  # completes P1 (its sex agrees)
        "P1,week6,,,,44.5\n"  # empty cells say nothing
        "P2,baseline,M,,F32,51\n",  # creates P2
    )
    report = ingest(store_engine, DICT, flat)
    assert persons(store_engine) == {"P1": ("F", 1980, "F20"), "P2": ("M", None, "F32")}
    assert report.files[0].values == 3 + 5  # three ages, five person cells
    with store_engine.connect() as conn:
        stored_as = conn.execute(select(t.observation.c.variable).distinct()).scalars().all()
    assert stored_as == ["age"]  # the person columns live in the person table only


def test_a_conflicting_person_value_rejects_the_whole_file(loaded: Engine, tmp_path: Path) -> None:
    before, people = counts(loaded), persons(loaded)
    n = 120_000  # more than one chunk: new persons of earlier chunks are rolled back too
    frame = pd.DataFrame(
        {"person_id": [f"N{i}" for i in range(n)], "visit": "baseline", "sex": "F", "age": 40}
    )
    frame.loc[n - 1, ["person_id", "sex"]] = ["P3", "F"]  # P3 is stored as M
    frame.to_csv(tmp_path / "big.csv", index=False)
    with pytest.raises(FedpsyError) as info:
        ingest(loaded, DICT, tmp_path / "big.csv")
    assert info.value.exit_code == 2
    assert f"big.csv, row {n}, column 'sex': value 'F': person P3 is stored with sex 'M'" in str(
        info.value
    )
    assert counts(loaded) == before and persons(loaded) == people


def values(engine: Engine, variable: str) -> dict[tuple[str, str], float]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                t.observation.c.person_id, t.observation.c.visit, t.observation.c.value_num
            ).where(t.observation.c.variable == variable)
        ).all()
    return {(pid, visit): value for pid, visit, value in rows}


def test_given_totals_load_and_the_items_win_where_complete(loaded: Engine, tmp_path: Path) -> None:
    ingest(
        loaded,
        DICT,
        write(tmp_path, "totals.csv", "person_id,visit,qids_total\nP2,baseline,14\nP2,week6,6\n"),
    )
    assert values(loaded, "qids_total.given") == {("P2", "baseline"): 14.0, ("P2", "week6"): 6.0}
    assert values(loaded, "qids_total") == {("P2", "baseline"): 14.0, ("P2", "week6"): 6.0}
    assert values(loaded, "qids_response") == {("P2", "week6"): 1.0}  # 8/14 ≥ 50 %
    items = ",".join(f"qids_{i:02d}" for i in range(1, 17))
    report = ingest(  # complete items at baseline: total 9 (nine domains at 1)
        loaded,
        DICT,
        write(
            tmp_path, "items.csv", f"person_id,visit,{items}\nP2,baseline,{','.join('1' * 16)}\n"
        ),
    )
    assert values(loaded, "qids_total") == {("P2", "baseline"): 9.0, ("P2", "week6"): 6.0}
    assert values(loaded, "qids_total.given")[("P2", "baseline")] == 14.0  # kept, not used
    assert report.warnings == (
        "person P2, visit baseline: qids_total given as 14, but its complete items give 9; "
        "the items' total is kept",
    )


BAD_CASES = [
    # (file name, content, expected fragments of the message)
    (
        "obs.csv",
        "person_id,visit,panss_p1\nP1,baseline,9\n",
        ["obs.csv", "row 1", "panss_p1", "'9'", "max 7"],
    ),
    (
        "obs.csv",
        "person_id,visit,panss_p1\nP1,baseline,x\n",
        ["row 1", "panss_p1", "'x'", "type integer"],
    ),
    (
        "obs.csv",
        "person_id,visit,panss_p1\nP1,baseline,4\nP1,baseline,3\n",
        ["row 2", "person_id, visit", "duplicate key"],
    ),
    ("obs.csv", "person_id,visit,foo\nP1,baseline,1\n", ["column 'foo'", "unknown column"]),
    ("obs.csv", "visit,panss_p1\nbaseline,1\n", ["column 'person_id'", "required column"]),
    (
        "obs.csv",
        "person_id,visit,panss_response\nP1,week6,1\n",
        ["column 'panss_response'", "derived variable", "may give only panss_positive"],
    ),
    (
        "obs.csv",
        "person_id,visit,panss_total\nP1,baseline,20\n",
        ["row 1, column 'panss_total'", "'20'", "min 30"],
    ),
    ("obs.csv", "person_id,visit,qids_total\nP1,baseline,28\n", ["qids_total", "max 27"]),
    (
        "obs.csv",
        "person_id,visit,sex\nP1,baseline,M\n",
        ["obs.csv, row 1, column 'sex'", "'M'", "person P1 is stored with sex 'F'", "gives 'M'"],
    ),
    (
        "obs.csv",
        "person_id,visit,birth_year\nP2,baseline,1976\n",
        ["column 'birth_year'", "person P2 is stored with birth_year 1975, the file gives 1976"],
    ),
    (
        "obs.csv",
        "person_id,visit,sex\nP9,baseline,F\nP9,week6,M\n",
        ["row 2, column 'sex'", "person P9 has sex 'F' on row 1 of this file, 'M' here"],
    ),
    ("obs.csv", "person_id,visit,sex\nP9,baseline,X\n", ["column 'sex'", "categories F|M"]),
    (
        "obs.csv",
        "person_id,visit,rtms_protocol\nP1,baseline,weird\n",
        ["rtms_protocol", "'weird'", "categories none|"],
    ),
    ("obs.csv", "person_id,visit,ketamine\nP1,baseline,2\n", ["ketamine", "binary 0|1"]),
    (
        "obs.csv",
        "person_id,visit,panss_p1,panss_p2\nP1,baseline,4,3\nP2,baseline,5\n",
        ["row 2", "fewer fields", "truncated"],
    ),
    ("obs.csv", "", ["obs.csv", "empty"]),
    ("obs.csv", "person_id,visit,panss_p1\n", ["header but no data rows"]),
    (
        "obs.csv",
        "person_id,visit,education_years\nP1,baseline,12\nP1,week6,14\n",
        ["education_years", "given twice"],
    ),
    ("obs.csv", "person_id,visit,age\nP 1,baseline,40\n", ["person_id", "'P 1'", "person id"]),
    (
        "person.csv",
        "person_id,sex,birth_year,primary_diagnosis\nP9,X,1980,F20\n",
        ["person.csv", "column 'sex'", "'X'", "categories F|M"],
    ),
    (
        "person.csv",
        "person_id,sex,birth_year,primary_diagnosis\nP9,F,1980,F99\n",
        ["primary_diagnosis", "'F99'"],
    ),
    (
        "drug_exposure.csv",
        "person_id,drug,start_day,end_day,daily_dose_mg,adherence\nP1,olanzapine,0,-5,20,0.9\n",
        ["drug_exposure.csv", "end_day", "end_day >= start_day"],
    ),
    (
        "drug_exposure.csv",
        "person_id,drug,start_day,end_day,daily_dose_mg,adherence\nP1,unobtainium,0,50,20,0.9\n",
        ["drug", "'unobtainium'"],
    ),
    (
        "drug_exposure.csv",
        "person_id,drug,start_day,end_day,daily_dose_mg,adherence\nP1,olanzapine,0,50,20,1.5\n",
        ["adherence", "max 1"],
    ),
    (
        "drug_exposure.csv",
        "person_id,drug,start_day,end_day,daily_dose_mg,adherence\nNOPE,olanzapine,0,50,20,0.9\n",
        ["person_id", "'NOPE'", "unknown person"],
    ),
    ("event.csv", "person_id,kind,day\nP1,abduction,5\n", ["kind", "'abduction'"]),
    ("event.csv", "person_id,kind\nP1,relapse\n", ["column 'day'", "required column"]),
    (
        "mrs_measure.csv",
        "person_id,visit,region,metabolite,value,unit,reference,crlb_pct,"
        "scanner_id,field_strength_t,te_ms\nP1,baseline,dACC,Glu,-1,i.u.,Cr,8,s1,3,30\n",
        ["value", "min 0"],
    ),
    ("notes.txt", "hello", ["unsupported file type"]),
]


@pytest.mark.parametrize(
    ("name", "content", "fragments"), BAD_CASES, ids=[f"{c[0]}:{c[2][-1]}" for c in BAD_CASES]
)
def test_bad_input_rejected_and_store_unchanged(
    loaded: Engine, tmp_path: Path, name: str, content: str, fragments: list[str]
) -> None:
    before = counts(loaded)
    (tmp_path / "bad").mkdir()
    bad = write(tmp_path / "bad", name, content)
    with pytest.raises(FedpsyError) as info:
        ingest(loaded, DICT, bad)
    message = str(info.value)
    assert info.value.exit_code == 2
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert counts(loaded) == before


def test_not_utf8_rejected(loaded: Engine, tmp_path: Path) -> None:
    before = counts(loaded)
    path = tmp_path / "obs.csv"
    path.write_bytes("person_id,visit,age\nP1,baseline,40\nP\xe9,baseline,41\n".encode("latin-1"))
    with pytest.raises(FedpsyError, match="not UTF-8"):
        ingest(loaded, DICT, path)
    assert counts(loaded) == before


def test_bad_row_late_in_file_rolls_back_everything(loaded: Engine, tmp_path: Path) -> None:
    before = counts(loaded)
    n = 120_000  # more than one chunk: earlier chunks were already written in the transaction
    frame = pd.DataFrame({"person_id": [f"N{i}" for i in range(n)], "visit": "baseline", "age": 40})
    frame.loc[n - 1, "age"] = 400
    path = tmp_path / "big.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(FedpsyError, match=rf"row {n}.*max 110"):
        ingest(loaded, DICT, path)
    assert counts(loaded) == before


def test_folder_is_all_or_nothing(store_engine: Engine, tmp_path: Path) -> None:
    folder = tmp_path / "site"
    folder.mkdir()
    write(folder, "person.csv", PERSON)
    write(folder, "observations.csv", FLAT)
    write(folder, "event.csv", "person_id,kind,day\nP1,relapse,-3\nP2,relapse,x\n")
    before = counts(store_engine)
    with pytest.raises(FedpsyError, match=r"event\.csv, row 2"):
        ingest(store_engine, DICT, folder)
    assert counts(store_engine) == before
    write(folder, "event.csv", "person_id,kind,day\nP1,relapse,-3\nP2,relapse,30\n")
    report = ingest(store_engine, DICT, folder)
    assert [f.table for f in report.files] == ["person", "observation", "event"]
    assert counts(store_engine)["event"] == 2


def test_mapping_renames_recodes_and_converts(store_engine: Engine, tmp_path: Path) -> None:
    mapping = write(
        tmp_path,
        "map.yaml",
        """
columns: {PatID: person_id, Visit: visit, EDU_MONTHS: education_years, Keta: ketamine}
visits: {V0: baseline}
recode: {ketamine: {"yes": "1", "no": "0"}}
units: {education_years: {from: months, factor: 0.08333333333333333}}
""",
    )
    data = write(tmp_path, "site.csv", "PatID,Visit,EDU_MONTHS,Keta\nA1,V0,144,yes\nA2,V0,120,no\n")
    ingest(store_engine, DICT, data, mapping=load_mapping(mapping))
    with store_engine.connect() as conn:
        rows = dict(
            conn.execute(
                select(t.observation.c.person_id, t.observation.c.value_num).where(
                    t.observation.c.variable == "education_years"
                )
            ).all()
        )
        keta = dict(
            conn.execute(
                select(t.observation.c.person_id, t.observation.c.value_num).where(
                    t.observation.c.variable == "ketamine", t.observation.c.visit == "baseline"
                )
            ).all()
        )
    assert rows == pytest.approx({"A1": 12.0, "A2": 10.0})
    assert keta == {"A1": 1.0, "A2": 0.0}


def test_bad_mapping_named(tmp_path: Path) -> None:
    path = write(tmp_path, "map.yaml", "colums: {a: b}\n")
    with pytest.raises(FedpsyError, match=r"map\.yaml: colums"):
        load_mapping(path)


def test_parquet_loads_like_csv(store_engine: Engine, tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "person_id": ["Q1", "Q2"],
            "visit": ["baseline", "baseline"],
            "age": [30.0, None],
            "panss_p1": [3, 7],
        }
    )
    path = tmp_path / "obs.parquet"
    frame.to_parquet(path)
    ingest(store_engine, DICT, path)
    with store_engine.connect() as conn:
        got = conn.execute(select(func.count()).select_from(t.observation)).scalar()
    assert got == 3  # two panss_p1 values, one age (the other is missing)


def derived_rows(dictionary: Dictionary) -> Select[Any]:
    """Every derived value in the store, in a fixed order."""
    derived = sorted(dictionary.codes(source="derived"))
    return (
        select(t.observation)
        .where(t.observation.c.variable.in_(derived))
        .order_by(t.observation.c.variable, t.observation.c.visit, t.observation.c.person_id)
    )


def test_a_site_is_derived_in_batches_of_persons_as_in_one(
    store_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (folder,) = generate(1, 120, 5, tmp_path / "synth").values()
    dictionary = load_dictionary()
    query = derived_rows(dictionary)
    rederive = import_module("node.ingest.rederive")  # the module, not the function
    monkeypatch.setattr(rederive, "PERSON_BATCH", 7)  # 18 batches, the last one short
    report = ingest(store_engine, dictionary, folder)
    with store_engine.connect() as conn:
        batched = pd.DataFrame(conn.execute(query).mappings().all())
    # the same file again under another name is loaded again: every person is derived anew,
    # now in one batch
    again = tmp_path / "again"
    again.mkdir()
    for file in folder.iterdir():
        again.joinpath(file.name).write_bytes(file.read_bytes() + b"\n")
    monkeypatch.setattr(rederive, "PERSON_BATCH", 10_000)
    whole = ingest(store_engine, dictionary, again)
    with store_engine.connect() as conn:
        at_once = pd.DataFrame(conn.execute(query).mappings().all())
    assert report.derived_values == whole.derived_values == len(at_once) > 1000
    assert len(set(batched["person_id"])) > 100
    pd.testing.assert_frame_equal(batched, at_once)


def test_new_persons_are_derived_from_the_values_at_hand_as_from_the_store(
    store_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flat file of persons new to the store, rows shuffled over small chunks (most
    persons derived from their chunk's values, those seen again from the store at the
    end), derives the same values and warnings as reading every person back."""
    (folder,) = generate(1, 120, 5, tmp_path / "synth").values()
    flat = pd.read_csv(folder / "observations.csv").sample(frac=1.0, random_state=2)
    flat = flat.merge(pd.read_csv(folder / "person.csv")[["person_id", "primary_diagnosis"]])
    items = [f"panss_p{i}" for i in range(1, 8)]
    flat["panss_positive"] = flat[items].sum(axis=1, min_count=7)
    flat.loc[flat.index[::5], "panss_positive"] += 2  # disagrees with complete items
    flat.loc[flat.index[::4], "panss_p3"] = None  # incomplete items: the given total stands
    path = tmp_path / "observations.csv"
    flat.to_csv(path, index=False)
    reader = import_module("node.ingest.reader")
    monkeypatch.setattr(reader.iter_chunks, "__defaults__", (61,))
    dictionary = load_dictionary()
    query = derived_rows(dictionary)
    at_hand = import_module("node.ingest.derive_at_hand")
    calls: list[int] = []
    real = at_hand.AtHand.derive

    def counted(self: object, conn: object, persons: list[str], *args: object) -> object:
        calls.append(len(persons))
        return real(self, conn, persons, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(at_hand.AtHand, "derive", counted)
    report = ingest(store_engine, dictionary, path)
    assert sum(calls) == 120 and sum(n > 0 for n in calls) > 5  # new in its first chunk
    with store_engine.connect() as conn:
        loaded = pd.DataFrame(conn.execute(query).mappings().all())
    # the same file again under another name: every person is derived from the store
    again = tmp_path / "again.csv"
    again.write_bytes(path.read_bytes() + b"\n")
    calls.clear()
    reread = ingest(store_engine, dictionary, again)
    assert sum(calls) == 0
    with store_engine.connect() as conn:
        from_store = pd.DataFrame(conn.execute(query).mappings().all())
    assert report.warnings and report.warnings == reread.warnings
    assert report.derived_values == reread.derived_values == len(from_store) > 1000
    pd.testing.assert_frame_equal(loaded, from_store)
