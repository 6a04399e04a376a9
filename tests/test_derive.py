"""Derived variables at the node: hand-built patients for each rule and its edge cases.

Every expected value below is computed by hand from the rule (PHENOTYPES.md / CDM.md);
the comments show the arithmetic.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pytest

from node.cdm_variables import (
    DERIVED_VARIABLES,
    PERSON_VARIABLES,
    VISIT_VARIABLES,
    add_cpz,
    cpz_equivalent,
    derive_all,
    derive_site,
    drug_class,
    load_ddd_table,
    unknown_drugs,
)
from node.cdm_variables.drugs import add_drug_info
from node.cdm_variables.frames import INPUT_COLUMNS, last_visit_day, visit_days
from node.cdm_variables.scales import given_code
from node.cdm_variables.trials import (
    TrialKind,
    adequate_trials,
    exposure_spans,
    persons_with_two_separate_trials,
)
from node.store.tables import PERSON_LEVEL
from schemas.dictionary import load_dictionary
from schemas.errors import BadInput

NAN = float("nan")

# ---- builders ---------------------------------------------------------------------------

VISIT_DAYS = {"baseline": 0, "week2": 14, "week6": 42, "week12": 84, "week26": 182}


def frame(table: str, rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """A CDM frame with all columns of ``table`` (absent fields missing)."""
    columns = INPUT_COLUMNS[table]
    return pd.DataFrame([{c: row.get(c) for c in columns} for row in rows], columns=columns)


def drug(
    person: str,
    name: str,
    start: int,
    end: int | None,
    dose: float | None,
    adherence: float | None = 0.9,
) -> dict[str, Any]:
    return {
        "person_id": person,
        "drug": name,
        "start_day": start,
        "end_day": end,
        "daily_dose_mg": dose,
        "adherence": adherence,
    }


def panss(
    person: str, visit: str, positive: Sequence[float | None] = (), rest: float | None = 1
) -> list[dict[str, Any]]:
    """PANSS items of one visit: P1… from ``positive`` (None = not rated), other items ``rest``."""
    rows = [
        {"person_id": person, "visit": visit, "variable": f"panss_p{i + 1}", "value_num": v}
        for i, v in enumerate(positive)
        if v is not None
    ]
    if rest is not None:
        others = [f"panss_n{i}" for i in range(1, 8)] + [f"panss_g{i}" for i in range(1, 17)]
        rows += [
            {"person_id": person, "visit": visit, "variable": code, "value_num": rest}
            for code in others
        ]
    return rows


def qids(person: str, visit: str, items: Sequence[float | None]) -> list[dict[str, Any]]:
    return [
        {"person_id": person, "visit": visit, "variable": f"qids_{i + 1:02d}", "value_num": v}
        for i, v in enumerate(items)
        if v is not None
    ]


def person_obs(person: str, variable: str, value: float) -> dict[str, Any]:
    return {"person_id": person, "visit": PERSON_LEVEL, "variable": variable, "value_num": value}


def run(
    persons: Sequence[tuple[str, str | None]],
    observations: Sequence[dict[str, Any]] = (),
    drugs: Sequence[dict[str, Any]] = (),
    visits: dict[str, int] | None = None,
    mrs: Sequence[dict[str, Any]] = (),
    events: Sequence[dict[str, Any]] = (),
) -> pd.DataFrame:
    """derive_all on ``persons`` (id, diagnosis), each with the visits ``visits``."""
    visits = VISIT_DAYS if visits is None else visits
    return derive_all(
        frame("persons", [{"person_id": p, "primary_diagnosis": dx} for p, dx in persons]),
        frame(
            "visits",
            [{"person_id": p, "label": v, "day": d} for p, _ in persons for v, d in visits.items()],
        ),
        frame("observations", observations),
        frame("drugs", drugs),
        frame("mrs", mrs),
        frame("events", events),
    )


def get(out: pd.DataFrame, person: str, variable: str, visit: str = PERSON_LEVEL) -> Any:
    """The derived value, or None when absent (missing)."""
    hit = out.loc[
        (out["person_id"] == person) & (out["variable"] == variable) & (out["visit"] == visit)
    ]
    assert len(hit) <= 1, hit
    if hit.empty:
        return None
    text = hit["value_text"].iloc[0]
    return text if text is not None else float(hit["value_num"].iloc[0])


def trials_of(rows: Sequence[dict[str, Any]], kind: TrialKind, last_day: float) -> pd.DataFrame:
    drugs = add_drug_info(frame("drugs", rows))
    persons = drugs["person_id"].unique()
    last = pd.Series(last_day, index=pd.Index(persons, name="person_id"))
    return adequate_trials(exposure_spans(drugs, last), kind)


def n_trials(rows: Sequence[dict[str, Any]], kind: TrialKind = "antipsychotic") -> int:
    return len(trials_of(rows, kind, last_day=365))


# ---- DDD table and chlorpromazine equivalents ---------------------------------------------

EXPECTED_DDD = {
    "chlorpromazine": 300,
    "haloperidol": 8,
    "risperidone": 5,
    "olanzapine": 10,
    "quetiapine": 400,
    "aripiprazole": 15,
    "ziprasidone": 80,
    "amisulpride": 400,
    "paliperidone": 6,
    "lurasidone": 60,
    "clozapine": 300,
    "perphenazine": 30,
    "flupentixol": 6,
    "zuclopenthixol": 30,
    "sulpiride": 800,
    "cariprazine": 3,
    "sertraline": 50,
    "fluoxetine": 20,
    "paroxetine": 20,
    "citalopram": 20,
    "escitalopram": 10,
    "venlafaxine": 100,
    "duloxetine": 60,
    "mirtazapine": 30,
    "bupropion": 300,
    "amitriptyline": 75,
    "nortriptyline": 75,
    "clomipramine": 100,
    "vortioxetine": 10,
    "agomelatine": 25,
    "trazodone": 300,
    "fluvoxamine": 100,
    "imipramine": 100,
}


def test_ddd_table_holds_the_rule_drugs_with_who_ddds_and_atc_codes() -> None:
    table = load_ddd_table()
    assert list(table.columns) == ["drug", "class", "atc", "ddd_mg"]
    assert dict(zip(table["drug"], table["ddd_mg"], strict=True)) == EXPECTED_DDD
    for name, cls, atc in zip(table["drug"], table["class"], table["atc"], strict=True):
        assert re.fullmatch(r"N0[56]A[A-Z]\d{2}", atc), atc
        assert atc.startswith("N05A" if cls == "antipsychotic" else "N06A"), (name, atc)
    assert table.set_index("drug").loc["clozapine", "atc"] == "N05AH02"
    assert table.set_index("drug").loc["sertraline", "atc"] == "N06AB06"
    assert table["atc"].is_unique and table["drug"].is_unique


def test_cpz_equivalent_by_the_ddd_method() -> None:
    # cpz = dose / DDD × 300
    assert cpz_equivalent("risperidone", 10) == 600.0  # 10/5 × 300
    assert cpz_equivalent("haloperidol", 5) == 187.5  # 5/8 × 300
    assert cpz_equivalent("quetiapine", 300) == 225.0  # 300/400 × 300
    assert cpz_equivalent("clozapine", 450) == 450.0
    assert cpz_equivalent(" Olanzapine ", 20) == 600.0
    assert cpz_equivalent("sertraline", 100) is None  # antidepressant: no CPZ equivalent
    assert cpz_equivalent("unknownzapine", 10) is None
    assert cpz_equivalent("risperidone", None) is None
    assert cpz_equivalent("risperidone", NAN) is None
    assert drug_class("Clozapine") == "antipsychotic"
    assert drug_class("vortioxetine") == "antidepressant"
    assert drug_class("esketamine") is None


def test_add_cpz_is_the_vectorized_cpz_equivalent_and_leaves_its_input_alone() -> None:
    rows = frame(
        "drugs",
        [
            drug("a", "risperidone", 0, 10, 4),
            drug("a", "Aripiprazole", 0, 10, 22.5),
            drug("b", "sertraline", 0, 10, 100),
            drug("b", "nosuchdrug", 0, 10, 100),
            drug("c", "olanzapine", 0, None, None),
        ],
    )
    before = rows.copy()
    out = add_cpz(rows)
    pd.testing.assert_frame_equal(rows, before)
    assert list(out.columns) == [*rows.columns, "cpz_eq_mg"]
    assert out["drug"].tolist() == rows["drug"].tolist()
    expected = [240.0, 450.0, NAN, NAN, NAN]  # 4/5×300, 22.5/15×300
    np.testing.assert_array_equal(out["cpz_eq_mg"].to_numpy(), expected)
    for name, dose, cpz in zip(rows["drug"], rows["daily_dose_mg"], out["cpz_eq_mg"], strict=True):
        scalar = cpz_equivalent(name, None if pd.isna(dose) else float(dose))
        assert (scalar is None and math.isnan(cpz)) or scalar == cpz


def test_unknown_drugs_lists_names_outside_the_table() -> None:
    assert unknown_drugs(["risperidone", "Foo", "SERTRALINE", "foo", "Foo"]) == ["Foo", "foo"]
    assert unknown_drugs([]) == []


# ---- adequate trials --------------------------------------------------------------------


def test_antipsychotic_trial_needs_42_days_inclusive() -> None:
    # days 0..40 inclusive = 41 days (5 weeks 6 days); 0..41 = 42 days (6 weeks)
    assert n_trials([drug("a", "risperidone", 0, 40, 10)]) == 0
    trials = trials_of([drug("a", "risperidone", 0, 41, 10)], "antipsychotic", 365)
    assert trials[["drug", "start_day", "end_day", "days"]].values.tolist() == [
        ["risperidone", 0, 41, 42]
    ]


def test_antipsychotic_trial_needs_600_mg_cpz_exactly() -> None:
    assert n_trials([drug("a", "chlorpromazine", 0, 60, 600)]) == 1
    assert n_trials([drug("a", "chlorpromazine", 0, 60, 599)]) == 0
    assert n_trials([drug("a", "haloperidol", 0, 60, 16)]) == 1  # 16/8 × 300 = 600
    assert n_trials([drug("a", "aripiprazole", 0, 60, 30)]) == 1  # 30/15 × 300 = 600
    assert n_trials([drug("a", "risperidone", 0, 60, 9.98)]) == 0  # 598.8
    assert n_trials([drug("a", "risperidone", 0, 60, None)]) == 0  # dose unknown


def test_adherence_must_be_established_and_at_least_0_8() -> None:
    assert n_trials([drug("a", "olanzapine", 0, 60, 20, adherence=0.8)]) == 1
    assert n_trials([drug("a", "olanzapine", 0, 60, 20, adherence=0.79)]) == 0
    assert n_trials([drug("a", "olanzapine", 0, 60, 20, adherence=None)]) == 0


def test_same_drug_rows_that_abut_or_overlap_merge_into_one_trial() -> None:
    halves = [drug("a", "olanzapine", 0, 20, 20), drug("a", "olanzapine", 21, 41, 20)]
    merged = trials_of(halves, "antipsychotic", 365)  # 21 + 21 days abutting = 42
    assert merged[["start_day", "end_day", "days"]].values.tolist() == [[0, 41, 42]]
    overlapping = [drug("a", "olanzapine", 0, 30, 20), drug("a", "olanzapine", 10, 41, 25)]
    assert trials_of(overlapping, "antipsychotic", 365)["days"].tolist() == [42]
    # a row nested in a longer one must not shorten it (running maximum of the end)
    nested = [
        drug("a", "olanzapine", 0, 35, 20),
        drug("a", "olanzapine", 5, 10, 20),
        drug("a", "olanzapine", 36, 41, 20),
    ]
    assert trials_of(nested, "antipsychotic", 365)["days"].tolist() == [42]
    nested_then_gap = [*nested[:2], drug("a", "olanzapine", 40, 60, 20)]  # 40 > 35 + 1
    assert n_trials(nested_then_gap) == 0  # 36 and 21 days
    gap = [drug("a", "olanzapine", 0, 20, 20), drug("a", "olanzapine", 22, 42, 20)]
    assert n_trials(gap) == 0  # one day without drug: two 21-day rows
    low_dose_middle = [
        drug("a", "olanzapine", 0, 20, 20),
        drug("a", "olanzapine", 21, 30, 10),  # 300 mg CPZ: does not qualify, breaks the chain
        drug("a", "olanzapine", 31, 60, 20),
    ]
    assert n_trials(low_dose_middle) == 0  # 21 and 30 days
    other_person = [drug("a", "olanzapine", 0, 20, 20), drug("b", "olanzapine", 21, 41, 20)]
    assert n_trials(other_person) == 0
    other_drug = [drug("a", "olanzapine", 0, 20, 20), drug("a", "risperidone", 21, 41, 10)]
    assert n_trials(other_drug) == 0


def test_ongoing_trial_runs_to_the_latest_visit_day() -> None:
    ongoing = [drug("a", "amisulpride", 0, None, 800)]  # 800/400 × 300 = 600
    assert len(trials_of(ongoing, "antipsychotic", last_day=41)) == 1  # days 0..41 = 42
    assert len(trials_of(ongoing, "antipsychotic", last_day=40)) == 0  # 41 days
    assert trials_of(ongoing, "antipsychotic", last_day=100)["end_day"].tolist() == [100]


def test_clozapine_trial_needs_84_days_and_300_mg() -> None:
    assert len(trials_of([drug("a", "clozapine", 0, 82, 300)], "clozapine", 365)) == 0  # 83
    assert len(trials_of([drug("a", "clozapine", 0, 83, 300)], "clozapine", 365)) == 1  # 84
    assert len(trials_of([drug("a", "clozapine", 0, 200, 299)], "clozapine", 365)) == 0
    # clozapine is never an ordinary antipsychotic trial, even at 600 mg for 200 days
    assert len(trials_of([drug("a", "clozapine", 0, 200, 600)], "antipsychotic", 365)) == 0


def test_antidepressant_trial_needs_28_days_and_one_ddd() -> None:
    assert len(trials_of([drug("a", "sertraline", 0, 27, 50)], "antidepressant", 365)) == 1
    assert len(trials_of([drug("a", "sertraline", 0, 26, 50)], "antidepressant", 365)) == 0
    assert len(trials_of([drug("a", "sertraline", 0, 27, 49)], "antidepressant", 365)) == 0
    assert len(trials_of([drug("a", "risperidone", 0, 90, 10)], "antidepressant", 365)) == 0


def test_two_trials_must_be_different_drugs_that_do_not_overlap() -> None:
    def separate(rows: Sequence[dict[str, Any]]) -> list[str]:
        found = persons_with_two_separate_trials(trials_of(rows, "antipsychotic", 365))
        return sorted(found)

    risperidone = drug("a", "risperidone", 0, 59, 10)
    # risperidone days 0-59 and olanzapine days 50-109 overlap: one combination trial
    assert separate([risperidone, drug("a", "olanzapine", 50, 109, 20)]) == []
    # abutting (olanzapine starts the day after risperidone ends): two trials
    assert separate([risperidone, drug("a", "olanzapine", 60, 119, 20)]) == ["a"]
    # the same drug twice is one drug
    assert separate([risperidone, drug("a", "risperidone", 100, 159, 10)]) == []
    # olanzapine starts on the day risperidone ends: they overlap by that day
    assert separate([risperidone, drug("a", "olanzapine", 59, 119, 20)]) == []
    # risperidone twice, apart, with olanzapine overlapping both: no two separate drugs
    bridged = [risperidone, drug("a", "risperidone", 100, 159, 10)]
    assert separate([*bridged, drug("a", "olanzapine", 50, 109, 20)]) == []
    # three drugs: two overlapping, the third after both
    assert separate(
        [
            drug("a", "risperidone", 0, 59, 10),
            drug("a", "olanzapine", 0, 59, 20),
            drug("a", "haloperidol", 200, 259, 16),
        ]
    ) == ["a"]


# ---- phenotypes -------------------------------------------------------------------------

TWO_AP_TRIALS = [("risperidone", 0, 59, 10), ("olanzapine", 100, 159, 20)]


def ap_history(person: str) -> list[dict[str, Any]]:
    return [drug(person, name, -400 + s, -400 + e, d) for name, s, e, d in TWO_AP_TRIALS]


def test_trs_needs_two_adequate_trials_and_persisting_baseline_symptoms() -> None:
    out = run(
        [
            ("yes", "F20"),
            ("mild", "F20"),
            ("one_item", "F25"),
            ("no_trials", "F20"),
            ("unrated", "F20"),
            ("depressed", "F32"),
            ("control", "HC"),
        ],
        observations=[
            *panss("yes", "baseline", [3, 3, 5, 2, 1, 1, 1]),  # P3 = 5 ≥ 4
            *panss("mild", "baseline", [3, 3, 3, 3, 3, 3, 3]),  # nothing ≥ 4
            *panss("one_item", "baseline", [4], rest=None),  # only P1 rated, = 4 (moderate)
            *panss("no_trials", "baseline", [6, 6, 6, 6, 6, 6, 6]),
            *panss("unrated", "baseline", [], rest=2),  # negative/general only
            *panss("unrated", "week6", [6, 6, 6, 6, 6, 6, 6]),  # not baseline
            *panss("depressed", "baseline", [6, 6, 6, 6, 6, 6, 6]),
            *panss("control", "baseline", [6, 6, 6, 6, 6, 6, 6]),
        ],
        drugs=[
            *ap_history("yes"),
            *ap_history("mild"),
            *ap_history("one_item"),
            drug("no_trials", "risperidone", -400, -341, 10),
            *ap_history("unrated"),
            *ap_history("depressed"),
            *ap_history("control"),
        ],
    )
    assert get(out, "yes", "trs") == 1.0
    assert get(out, "mild", "trs") == 0.0
    assert get(out, "one_item", "trs") == 1.0
    assert get(out, "no_trials", "trs") == 0.0
    assert get(out, "unrated", "trs") is None  # no PANSS positive item at baseline
    assert get(out, "depressed", "trs") is None  # not F20/F25
    assert get(out, "control", "trs") is None


def test_urs_follows_trs_and_needs_clozapine_and_symptoms_at_the_latest_rated_visit() -> None:
    clozapine = [drug(p, "clozapine", -200, -100, 400) for p in ("urs", "responded", "trs0")]
    out = run(
        [
            ("urs", "F20"),
            ("responded", "F20"),
            ("no_clz", "F20"),
            ("trs0", "F20"),
            ("trs_na", "F20"),
            ("short_clz", "F20"),
        ],
        observations=[
            *panss("urs", "baseline", [5, 1, 1, 1, 1, 1, 1]),
            *panss("urs", "week26", [1, 1, 4, 1, 1, 1, 1]),  # latest by day (182): P3 = 4
            *panss("urs", "week12", [1, 1, 1, 1, 1, 1, 1]),
            *panss("responded", "baseline", [5, 1, 1, 1, 1, 1, 1]),
            *panss("responded", "week6", [6, 6, 6, 6, 6, 6, 6]),  # day 42
            *panss("responded", "week12", [3, 3, 3, 3, 3, 3, 3]),  # day 84, latest: all < 4
            *panss("no_clz", "baseline", [5, 5, 5, 5, 5, 5, 5]),
            *panss("trs0", "baseline", [2, 2, 2, 2, 2, 2, 2]),
            *panss("short_clz", "baseline", [5, 5, 5, 5, 5, 5, 5]),
        ],
        drugs=[
            *clozapine,
            *[
                row
                for p in ("urs", "responded", "no_clz", "trs0", "trs_na", "short_clz")
                for row in ap_history(p)
            ],
            drug("trs_na", "clozapine", -200, -100, 400),
            drug("short_clz", "clozapine", -200, -118, 400),  # 83 days
        ],
    )
    assert get(out, "urs", "trs") == 1.0 and get(out, "urs", "urs") == 1.0
    assert get(out, "responded", "trs") == 1.0 and get(out, "responded", "urs") == 0.0
    assert get(out, "no_clz", "trs") == 1.0 and get(out, "no_clz", "urs") == 0.0
    assert get(out, "short_clz", "trs") == 1.0 and get(out, "short_clz", "urs") == 0.0
    assert get(out, "trs0", "trs") == 0.0 and get(out, "trs0", "urs") == 0.0
    assert get(out, "trs_na", "trs") is None and get(out, "trs_na", "urs") is None


def qids_with_total(total: int) -> list[float]:
    """16 items whose Rush total is ``total`` (≤ 27): fill the nine domains in turn."""
    domains = [[0, 1, 2, 3], [4], [5, 6, 7, 8], [9], [10], [11], [12], [13], [14, 15]]
    items = [0.0] * 16
    left = total
    for domain in domains:
        score = min(3, left)
        items[domain[0]] = score
        left -= score
    assert left == 0
    return items


TWO_AD_TRIALS = [
    ("sertraline", -300, -250, 100),
    ("venlafaxine", -200, -150, 150),
]


def ad_history(person: str) -> list[dict[str, Any]]:
    return [drug(person, name, s, e, d) for name, s, e, d in TWO_AD_TRIALS]


def test_trd_needs_two_separate_antidepressant_trials_and_baseline_qids_of_11() -> None:
    out = run(
        [
            ("q11", "F32"),
            ("q10", "F33"),
            ("one", "F32"),
            ("overlap", "F32"),
            ("noqids", "F32"),
            ("psychosis", "F20"),
        ],
        observations=[
            *qids("q11", "baseline", qids_with_total(11)),
            *qids("q10", "baseline", qids_with_total(10)),
            *qids("one", "baseline", qids_with_total(20)),
            *qids("overlap", "baseline", qids_with_total(20)),
            *qids("noqids", "week6", qids_with_total(20)),
            *qids("psychosis", "baseline", qids_with_total(20)),
        ],
        drugs=[
            *ad_history("q11"),
            *ad_history("q10"),
            *ad_history("noqids"),
            *ad_history("psychosis"),
            drug("one", "sertraline", -300, -250, 100),
            drug("overlap", "sertraline", -300, -250, 100),
            drug("overlap", "mirtazapine", -260, -200, 30),
        ],
    )
    assert get(out, "q11", "qids_total", "baseline") == 11.0
    assert get(out, "q11", "trd") == 1.0
    assert get(out, "q10", "trd") == 0.0
    assert get(out, "one", "trd") == 0.0
    assert get(out, "overlap", "trd") == 0.0
    assert get(out, "noqids", "trd") is None
    assert get(out, "psychosis", "trd") is None


# ---- scales -----------------------------------------------------------------------------


def test_qids_total_uses_the_maximum_within_the_sleep_appetite_and_psychomotor_domains() -> None:
    items = [1, 3, 0, 2, 2, 0, 1, 2, 0, 1, 1, 1, 1, 1, 3, 1]
    # max(1,3,0,2)=3 + 2 + max(0,1,2,0)=2 + 1+1+1+1+1 + max(3,1)=3 = 15 (plain sum would be 20)
    missing_one = [*items[:3], None, *items[4:]]
    out = run(
        [("a", "F32")],
        observations=[*qids("a", "baseline", items), *qids("a", "week2", missing_one)],
    )
    assert get(out, "a", "qids_total", "baseline") == 15.0
    assert get(out, "a", "qids_total", "week2") is None  # one item missing
    assert get(out, "a", "qids_remission", "baseline") == 0.0


def test_qids_response_and_remission() -> None:
    out = run(
        [("a", "F32")],
        observations=[
            *qids("a", "baseline", qids_with_total(16)),
            *qids("a", "week2", qids_with_total(9)),  # 7/16 = 43.75 % < 50 %
            *qids("a", "week6", qids_with_total(8)),  # 8/16 = 50 %: response
            *qids("a", "week12", qids_with_total(5)),  # remission (≤ 5)
            *qids("a", "week26", qids_with_total(6)),
        ],
    )
    assert get(out, "a", "qids_response", "baseline") is None
    assert get(out, "a", "qids_response", "week2") == 0.0
    assert get(out, "a", "qids_response", "week6") == 1.0
    assert get(out, "a", "qids_remission", "week6") == 0.0
    assert get(out, "a", "qids_remission", "week12") == 1.0
    assert get(out, "a", "qids_remission", "week26") == 0.0


def test_panss_scores_are_sums_and_missing_when_one_item_is_missing() -> None:
    full = panss("a", "baseline", [4, 3, 5, 2, 1, 1, 2], rest=2)
    without_g16 = [
        r
        for r in panss("a", "week6", [4, 3, 5, 2, 1, 1, 2], rest=2)
        if r["variable"] != "panss_g16"
    ]
    out = run([("a", "F20")], observations=[*full, *without_g16])
    assert get(out, "a", "panss_positive", "baseline") == 18.0  # 4+3+5+2+1+1+2
    assert get(out, "a", "panss_negative", "baseline") == 14.0  # 7 × 2
    assert get(out, "a", "panss_general", "baseline") == 32.0  # 16 × 2
    assert get(out, "a", "panss_total", "baseline") == 64.0
    assert get(out, "a", "panss_positive", "week6") == 18.0
    assert get(out, "a", "panss_negative", "week6") == 14.0
    assert get(out, "a", "panss_general", "week6") is None
    assert get(out, "a", "panss_total", "week6") is None
    assert get(out, "a", "panss_response", "week6") is None


def given(person: str, visit: str, code: str, value: float) -> dict[str, Any]:
    """A scale total the site loaded (kept under its given code)."""
    return {"person_id": person, "visit": visit, "variable": given_code(code), "value_num": value}


def test_given_totals_stand_in_where_the_items_are_absent_or_incomplete() -> None:
    observations = [
        # totals only: a site without items
        given("t", "baseline", "qids_total", 16),
        given("t", "week6", "qids_total", 8),  # 8/16 = 50 %: response
        given("t", "week12", "qids_total", 5),  # remission
        given("p", "baseline", "panss_total", 90),
        given("p", "week6", "panss_total", 70),  # (90 − 70)/(90 − 30) = 33 % ≥ 20 %
        given("p", "baseline", "panss_positive", 20),
        # a missing item: the given total is the score
        *qids("i", "baseline", [*qids_with_total(12)[:15], None]),
        given("i", "baseline", "qids_total", 13),
    ]
    out = run([("t", "F32"), ("p", "F20"), ("i", "F33")], observations=observations)
    assert get(out, "t", "qids_total", "baseline") == 16.0
    assert get(out, "t", "qids_response", "week6") == 1.0
    assert get(out, "t", "qids_remission", "week12") == 1.0
    assert get(out, "t", "qids_remission", "baseline") == 0.0
    assert get(out, "t", "trd") == 0.0  # baseline qids_total known (16), no trials
    assert get(out, "p", "panss_total", "week6") == 70.0
    assert get(out, "p", "panss_positive", "baseline") == 20.0
    assert get(out, "p", "panss_negative", "baseline") is None  # neither items nor given
    assert get(out, "p", "panss_response", "week6") == 1.0
    assert get(out, "p", "trs") is None  # trs needs the positive items themselves
    assert get(out, "i", "qids_total", "baseline") == 13.0
    assert not out["variable"].str.endswith(".given").any()  # given rows are inputs only


def test_a_total_from_complete_items_wins_and_a_disagreeing_given_one_is_reported() -> None:
    items = qids_with_total(12)
    observations = [
        *qids("a", "baseline", items),
        given("a", "baseline", "qids_total", 14),  # disagrees
        *qids("a", "week6", items),
        given("a", "week6", "qids_total", 12),  # agrees
        *panss("b", "baseline", [4, 3, 5, 2, 1, 1, 2], rest=2),  # total 64
        given("b", "baseline", "panss_total", 64),
        given("b", "baseline", "panss_general", 30),  # items give 32
    ]
    site = derive_site(
        frame("persons", [{"person_id": p, "primary_diagnosis": "F32"} for p in ("a", "b")]),
        frame("visits", [{"person_id": "a", "label": "baseline", "day": 0}]),
        frame("observations", observations),
        frame("drugs", []),
        frame("mrs", []),
        frame("events", []),
    )
    assert get(site.rows, "a", "qids_total", "baseline") == 12.0
    assert get(site.rows, "b", "panss_general", "baseline") == 32.0
    conflicts = site.given_conflicts.sort_values("person_id").to_dict("records")
    assert conflicts == [
        {
            "person_id": "a",
            "visit": "baseline",
            "variable": "qids_total",
            "given": 14.0,
            "derived": 12.0,
        },
        {
            "person_id": "b",
            "visit": "baseline",
            "variable": "panss_general",
            "given": 30.0,
            "derived": 32.0,
        },
    ]


def test_panss_response_subtracts_the_30_point_floor() -> None:
    def visit(total: int) -> list[float]:
        """Positive items carrying total − 30 on top of the 23 other items at 1."""
        extra, items = total - 30, []
        for _ in range(7):
            items.append(1.0 + min(6, extra))
            extra -= min(6, extra)
        assert extra == 0
        return items

    out = run(
        [("a", "F20"), ("floor", "F20")],
        observations=[
            *panss("a", "baseline", visit(70)),  # 70 − 30 = 40 above the floor
            *panss("a", "week2", visit(63)),  # (70−63)/40 = 17.5 %: no response
            *panss("a", "week6", visit(62)),  # (70−62)/40 = 20 %: response (uncorrected 11 %)
            *panss("a", "week12", visit(72)),  # worse
            *panss("floor", "baseline", visit(30)),
            *panss("floor", "week6", visit(30)),
        ],
    )
    assert get(out, "a", "panss_total", "baseline") == 70.0
    assert get(out, "a", "panss_response", "baseline") is None
    assert get(out, "a", "panss_response", "week2") == 0.0
    assert get(out, "a", "panss_response", "week6") == 1.0
    assert get(out, "a", "panss_response", "week12") == 0.0
    assert get(out, "floor", "panss_response", "week6") is None  # nothing above the floor


# ---- current medication -----------------------------------------------------------------


def test_cpz_eq_current_sums_concurrent_antipsychotics() -> None:
    out = run(
        [("a", "F20"), ("b", "F20"), ("c", "F32")],
        drugs=[
            drug("a", "risperidone", -10, 50, 4),  # 4/5 × 300 = 240
            drug("a", "haloperidol", 10, None, 5),  # 5/8 × 300 = 187.5, ongoing
            drug("a", "sertraline", 0, 14, 50),
            drug("b", "clozapine", 30, 100, 350),
            drug("b", "olanzapine", 0, 20, None),  # dose unknown
        ],
    )
    assert get(out, "a", "cpz_eq_current", "baseline") == 240.0
    assert get(out, "a", "antidepressant_current", "baseline") == 1.0
    assert get(out, "a", "cpz_eq_current", "week2") == 427.5  # 240 + 187.5
    assert get(out, "a", "antidepressant_current", "week2") == 1.0  # day 14 = end_day
    assert get(out, "a", "antidepressant_current", "week6") == 0.0
    assert get(out, "a", "cpz_eq_current", "week12") == 187.5  # risperidone ended day 50
    assert get(out, "a", "clozapine_current", "week12") == 0.0
    assert get(out, "b", "antipsychotic_current", "baseline") == 1.0
    assert get(out, "b", "cpz_eq_current", "baseline") is None  # olanzapine dose unknown
    assert get(out, "b", "cpz_eq_current", "week6") == 350.0
    assert get(out, "b", "clozapine_current", "week6") == 1.0
    assert get(out, "b", "antipsychotic_current", "week26") == 0.0
    assert get(out, "b", "cpz_eq_current", "week26") == 0.0
    for v in (
        "antipsychotic_current",
        "clozapine_current",
        "antidepressant_current",
        "cpz_eq_current",
    ):
        assert get(out, "c", v, "week6") == 0.0  # the site has drug rows: 0, not missing


def test_medication_is_missing_when_the_site_has_no_drug_rows() -> None:
    out = run([("a", "F20")], observations=panss("a", "baseline", [4] * 7))
    assert not out["variable"].str.endswith("_current").any()


def test_medication_is_zero_for_persons_without_rows_when_the_site_has_some() -> None:
    # frames holding only some persons of a site whose other persons have drug rows
    out = derive_all(
        frame("persons", [{"person_id": "a", "primary_diagnosis": "F20"}]),
        frame(
            "visits",
            [
                {"person_id": "a", "label": "baseline", "day": None},
                {"person_id": "a", "label": "week6", "day": 42},
                {"person_id": "a", "label": "week12", "day": None},
            ],
        ),
        frame("observations", []),
        frame("drugs", []),
        frame("mrs", []),
        frame("events", []),
        site_has_drug_rows=True,
    )
    assert get(out, "a", "cpz_eq_current", "baseline") == 0.0  # baseline is day 0
    assert get(out, "a", "antipsychotic_current", "week6") == 0.0
    assert get(out, "a", "antipsychotic_current", "week12") is None  # day unknown


# ---- MRS --------------------------------------------------------------------------------


def test_mrs_variables_from_measure_rows() -> None:
    def measure(
        visit: str, region: str, metabolite: str, value: float, scanner: str = "siemens-prisma-1"
    ) -> dict[str, Any]:
        return {
            "person_id": "a",
            "visit": visit,
            "region": region,
            "metabolite": metabolite,
            "value": value,
            "unit": "i.u.",
            "reference": "Cr",
            "crlb_pct": 8.0,
            "scanner_id": scanner,
            "field_strength_t": 3.0,
            "te_ms": 30.0,
        }

    out = run(
        [("a", "F20")],
        mrs=[
            measure("baseline", "dACC", "Glx", 12.5),
            measure("baseline", "mPFC", "GABA", 1.75),
            measure("baseline", "OCC", "NAA", 9.0),
            measure("baseline", "hippocampus", "Glu", 7.0),  # not a CDM region
            measure("week12", "dACC", "Glu", 10.25),
            # a session with rows from two scanners: the one with more rows is its scanner
            measure("week26", "dACC", "Glu", 10.0, scanner="a-other"),
            measure("week26", "mPFC", "Glu", 10.0, scanner="b-main"),
            measure("week26", "OCC", "Glu", 10.0, scanner="b-main"),
        ],
    )
    assert get(out, "a", "dacc_glx", "baseline") == 12.5
    assert get(out, "a", "mpfc_gaba", "baseline") == 1.75
    assert get(out, "a", "occ_naa", "baseline") == 9.0
    assert get(out, "a", "dacc_glu", "week12") == 10.25
    assert get(out, "a", "dacc_glu", "baseline") is None
    assert get(out, "a", "mrs_scanner", "baseline") == "siemens-prisma-1"
    assert get(out, "a", "mrs_field_strength_t", "week12") == 3.0
    assert get(out, "a", "mrs_scanner", "week26") == "b-main"
    assert not out["variable"].str.startswith("hippocampus").any()


# ---- outcomes ---------------------------------------------------------------------------


def test_relapse_and_rehospitalization_with_censoring_at_followup_days() -> None:
    out = run(
        [("event", "F20"), ("censored", "F20"), ("unknown", "F20"), ("history", "F32")],
        observations=[
            person_obs("event", "followup_days", 365),
            person_obs("censored", "followup_days", 400),
            person_obs("history", "followup_days", 200),
        ],
        events=[
            {"person_id": "event", "kind": "rehospitalization", "day": 120},
            {"person_id": "event", "kind": "rehospitalization", "day": 90},
            {"person_id": "event", "kind": "remission", "day": 30},
            {"person_id": "history", "kind": "relapse", "day": -50},  # before the index date
            {"person_id": "history", "kind": "relapse", "day": 150},
        ],
    )
    assert get(out, "event", "rehospitalization") == 1.0
    assert get(out, "event", "time_to_rehospitalization") == 90.0  # the first event
    assert get(out, "event", "relapse") == 0.0
    assert get(out, "event", "time_to_relapse") == 365.0
    assert get(out, "censored", "rehospitalization") == 0.0
    assert get(out, "censored", "time_to_rehospitalization") == 400.0  # censored
    assert get(out, "unknown", "rehospitalization") is None
    assert get(out, "unknown", "time_to_rehospitalization") is None
    assert get(out, "history", "relapse") == 1.0
    assert get(out, "history", "time_to_relapse") == 150.0


# ---- the whole output -------------------------------------------------------------------


def full_example() -> pd.DataFrame:
    return run(
        [("a", "F20"), ("b", "F32")],
        observations=[
            *panss("a", "baseline", [5, 4, 4, 3, 3, 2, 2], rest=3),
            *panss("a", "week6", [3, 3, 3, 3, 3, 2, 2], rest=2),
            *qids("b", "baseline", qids_with_total(18)),
            *qids("b", "week6", qids_with_total(4)),
            person_obs("a", "followup_days", 300),
            person_obs("b", "followup_days", 250),
        ],
        drugs=[*ap_history("a"), *ad_history("b"), drug("a", "clozapine", 0, None, 400)],
        mrs=[
            {
                "person_id": "a",
                "visit": "baseline",
                "region": "dACC",
                "metabolite": "Glu",
                "value": 11.0,
                "unit": "i.u.",
                "reference": "water",
                "crlb_pct": 5.0,
                "scanner_id": "ge-1",
                "field_strength_t": 3.0,
                "te_ms": 35.0,
            },
        ],
        events=[{"person_id": "a", "kind": "relapse", "day": 100}],
    )


def test_output_shape_levels_and_values_fit_the_dictionary() -> None:
    out = full_example()
    assert list(out.columns) == ["person_id", "visit", "variable", "value_num", "value_text"]
    assert out["value_num"].dtype == np.float64
    assert not out.duplicated(["person_id", "visit", "variable"]).any()
    has_value = out["value_num"].notna() | out["value_text"].notna()
    assert has_value.all()  # missing values are absent, never NaN rows
    assert set(out["variable"]) <= set(DERIVED_VARIABLES)
    person_level = out["visit"] == PERSON_LEVEL
    assert set(out.loc[person_level, "variable"]) <= set(PERSON_VARIABLES)
    assert set(out.loc[~person_level, "variable"]) <= set(VISIT_VARIABLES)
    assert get(out, "a", "trs") == 1.0 and get(out, "b", "trd") == 1.0
    assert get(out, "a", "urs") == 0.0  # clozapine days 0..182 adequate, but week6 P all < 4
    dictionary = load_dictionary()
    for row in out.itertuples(index=False):
        code = str(row.variable)
        if code in dictionary:
            variable = dictionary.get(code)
            assert variable.source == "derived", row.variable
            assert (variable.level == "person") == (row.visit == PERSON_LEVEL), row.variable
            value = row.value_text if row.value_text is not None else row.value_num
            assert variable.check_value(value) is None, row


def test_every_derived_dictionary_variable_is_produced() -> None:
    dictionary = load_dictionary()
    assert set(dictionary.codes(source="derived")) <= set(DERIVED_VARIABLES)


def test_inputs_are_not_changed_and_a_missing_column_is_reported() -> None:
    drugs = frame("drugs", [drug("a", "Risperidone", 0, None, 10)])
    before = drugs.copy()
    derive_all(
        frame("persons", [{"person_id": "a", "primary_diagnosis": "F20"}]),
        frame("visits", [{"person_id": "a", "label": "baseline", "day": 0}]),
        frame("observations", []),
        drugs,
        frame("mrs", []),
        frame("events", []),
    )
    pd.testing.assert_frame_equal(drugs, before)
    with pytest.raises(BadInput, match="adherence"):
        derive_all(
            frame("persons", []),
            frame("visits", []),
            frame("observations", []),
            drugs.drop(columns="adherence"),
            frame("mrs", []),
            frame("events", []),
        )


def test_empty_inputs_give_an_empty_frame() -> None:
    out = run([])
    assert out.empty and list(out.columns) == [
        "person_id",
        "visit",
        "variable",
        "value_num",
        "value_text",
    ]


def test_visit_day_helpers() -> None:
    visits = frame(
        "visits",
        [
            {"person_id": "a", "label": "baseline", "day": None},
            {"person_id": "a", "label": "week6", "day": 44},
            {"person_id": "b", "label": "week6", "day": None},
        ],
    )
    days = visit_days(visits)
    assert days["day"].tolist()[:2] == [0.0, 44.0] and math.isnan(days["day"].iloc[2])
    assert last_visit_day(days).to_dict() == {"a": 44.0}


# ---- scale ------------------------------------------------------------------------------


def synthetic_site(n_persons: int, seed: int = 1) -> dict[str, pd.DataFrame]:
    """A site of ``n_persons`` with five visits, PANSS or QIDS items at each, drug history for
    about half, MRS at baseline for a fifth and some events."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"p{i:06d}" for i in range(n_persons)], dtype=object)
    diagnosis = rng.choice(["F20", "F25", "F32", "F33", "HC"], size=n_persons)
    persons = pd.DataFrame(
        {"person_id": ids, "sex": "F", "birth_year": 1980, "primary_diagnosis": diagnosis}
    )
    labels, days = list(VISIT_DAYS), list(VISIT_DAYS.values())
    visits = pd.DataFrame(
        {
            "person_id": np.repeat(ids, 5),
            "label": np.tile(labels, n_persons),
            "day": np.tile(days, n_persons),
        }
    )
    psychotic = np.isin(diagnosis, ["F20", "F25"])
    panss_codes = [f"panss_p{i}" for i in range(1, 8)] + [f"panss_n{i}" for i in range(1, 8)]
    panss_codes += [f"panss_g{i}" for i in range(1, 17)]
    qids_codes = [f"qids_{i:02d}" for i in range(1, 17)]
    parts = []
    for who, codes, high in ((ids[psychotic], panss_codes, 8), (ids[~psychotic], qids_codes, 4)):
        n = len(who) * 5 * len(codes)
        parts.append(
            pd.DataFrame(
                {
                    "person_id": np.repeat(who, 5 * len(codes)),
                    "visit": np.tile(np.repeat(labels, len(codes)), len(who)),
                    "variable": np.tile(codes, 5 * len(who)),
                    "value_num": rng.integers(1 if high == 8 else 0, high - 1, n).astype(float),
                    "value_text": None,
                }
            )
        )
    parts.append(
        pd.DataFrame(
            {
                "person_id": ids,
                "visit": PERSON_LEVEL,
                "variable": "followup_days",
                "value_num": 365.0,
                "value_text": None,
            }
        )
    )
    observations = pd.concat(parts, ignore_index=True)
    treated = rng.random(n_persons) < 0.5
    rows = []
    for first, second, who in (
        ("olanzapine", "risperidone", ids[treated & psychotic]),
        ("sertraline", "escitalopram", ids[treated & ~psychotic]),
    ):
        for name, offset, dose in ((first, 0, 20.0), (second, 100, 10.0)):
            start = -400 + offset + rng.integers(0, 30, len(who))
            rows.append(
                pd.DataFrame(
                    {
                        "person_id": who,
                        "drug": name,
                        "start_day": start,
                        "end_day": np.where(rng.random(len(who)) < 0.1, np.nan, start + 60),
                        "daily_dose_mg": dose,
                        "adherence": rng.choice([0.5, 0.9, np.nan], len(who)),
                    }
                )
            )
    drugs = pd.concat(rows, ignore_index=True)
    scanned = ids[: n_persons // 5]
    mrs = pd.DataFrame(
        {
            "person_id": np.repeat(scanned, 2),
            "visit": "baseline",
            "region": np.tile(["dACC", "mPFC"], len(scanned)),
            "metabolite": "Glx",
            "value": rng.normal(12, 1, 2 * len(scanned)),
            "unit": "i.u.",
            "reference": "Cr",
            "crlb_pct": 6.0,
            "scanner_id": "s1",
            "field_strength_t": 3.0,
            "te_ms": 30.0,
        }
    )
    relapsing = ids[rng.random(n_persons) < 0.2]
    events = pd.DataFrame(
        {"person_id": relapsing, "kind": "relapse", "day": rng.integers(1, 365, len(relapsing))}
    )
    return {
        "persons": persons,
        "visits": visits,
        "observations": observations,
        "drugs": drugs,
        "mrs": mrs,
        "events": events,
    }


def test_derive_all_on_a_4000_person_synthetic_site() -> None:
    site = synthetic_site(4000)
    out = derive_all(
        site["persons"],
        site["visits"],
        site["observations"],
        site["drugs"],
        site["mrs"],
        site["events"],
    )
    psychotic = site["persons"]["primary_diagnosis"].isin(["F20", "F25"])
    n_psychotic = int(psychotic.sum())
    # every psychosis visit has all 30 items, so 4 scores each
    assert (out["variable"] == "panss_total").sum() == 5 * n_psychotic
    assert (out["variable"] == "trs").sum() == n_psychotic
    assert (out["variable"] == "cpz_eq_current").sum() == 5 * 4000
    assert set(out.loc[out["variable"] == "trs", "value_num"]) <= {0.0, 1.0}
