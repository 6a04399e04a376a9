"""Derived values kept in a real store: staged, committed, written, read back (both backends)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, insert

from node.data.committed import (
    DERIVED_FILE,
    load_derived,
    save_harmonized,
    write_derived_dictionary,
)
from node.data.frame_store import StoreFrameSource
from node.data.staging import DerivedFrameSource, DerivedValues
from node.steps.registry import run_step
from node.store import tables as t
from schemas.dictionary import load_dictionary
from schemas.dictionary.model import Variable
from schemas.errors import FedpsyError
from schemas.steps.derived import CommitDerivedResult, CommitDerivedStep

HARMONIZED = Variable(
    code="dacc_glx_combat",
    label="dACC Glx, ComBat-harmonized",
    type="numeric",
    description="ComBat run abcdef0123456789 of dacc_glx",
)
CLUSTER = Variable(
    code="bio_cluster",
    label="Biotype",
    type="categorical",
    categories=("1", "2"),
    description="k-means run abcdef0123456789",
)
PERSONS = [f"p{i}" for i in range(6)]


def _people(engine: Engine) -> dict[str, int]:
    row_ids = {pid: 10 + 3 * i for i, pid in enumerate(PERSONS)}
    with engine.begin() as conn:
        conn.execute(insert(t.person), [{"person_id": p, "row_id": r} for p, r in row_ids.items()])
        conn.execute(insert(t.visit), [{"person_id": p, "label": "baseline"} for p in PERSONS])
    return row_ids


class Keeper:
    """What the node service does with a committed run (see node.data.committed)."""

    def __init__(self, engine: Engine, folder: Path) -> None:
        self.engine, self.folder = engine, folder
        self.kept: list[int] = []

    def __call__(self, derived: DerivedValues) -> None:
        self.kept.append(
            save_harmonized(
                self.engine,
                derived.run_id,
                derived.values,
                visit=derived.visit,
                variables=derived.variables,
            )
        )
        write_derived_dictionary(self.folder, derived.variables)

    def source(self) -> StoreFrameSource:
        dictionary = load_dictionary([self.folder / DERIVED_FILE])
        return StoreFrameSource(self.engine, "alpha", dictionary)


def _run(values: pd.DataFrame, run_id: str) -> DerivedValues:
    return DerivedValues(run_id, "baseline", (HARMONIZED, CLUSTER), values)


def test_committed_values_become_variables_of_the_store(
    store_engine: Engine, tmp_path: Path
) -> None:
    rows = _people(store_engine)
    keeper = Keeper(store_engine, tmp_path / "dictionary")
    source = DerivedFrameSource(StoreFrameSource(store_engine, "alpha", load_dictionary()), keeper)
    ids = [rows[p] for p in PERSONS[:5]]
    first = pd.DataFrame(
        {
            "dacc_glx_combat": [1.25, -0.5, np.nan, 3.0e-9, 7.0],
            "bio_cluster": ["1", "2", "2", None, "1"],
        },
        index=pd.Index(ids, name="row_id"),
    )
    source.stage_derived(_run(first, "run-one-0001"))
    assert not (tmp_path / "dictionary").exists()  # staged only: nothing written yet
    computed = run_step(CommitDerivedStep(run_id="run-one-0001"), source)
    assert isinstance(computed.result, CommitDerivedResult)
    assert computed.result.rows == 5 and computed.disclosure.rows == 5
    assert keeper.kept == [8]  # two missing values are not written
    frame = keeper.source().frame(["dacc_glx_combat", "bio_cluster"], "baseline", None)
    assert list(frame.index) == sorted(rows.values())
    got = frame["dacc_glx_combat"].reindex(ids).to_numpy()
    np.testing.assert_array_equal(got, first["dacc_glx_combat"].to_numpy())
    assert list(frame["bio_cluster"].cat.categories) == ["1", "2"]
    assert frame["bio_cluster"].reindex(ids).astype(object).tolist()[:3] == ["1", "2", "2"]
    assert np.isnan(frame["dacc_glx_combat"].to_numpy()[list(frame.index).index(rows["p5"])])
    # a second run replaces the first one's values, also for rows it does not cover
    second = pd.DataFrame(
        {"dacc_glx_combat": [9.0], "bio_cluster": ["2"]},
        index=pd.Index([rows["p1"]], name="row_id"),
    )
    source.stage_derived(_run(second, "run-two-0002"))
    run_step(CommitDerivedStep(run_id="run-two-0002"), source)
    frame = keeper.source().frame(["dacc_glx_combat"], "baseline", None)
    assert frame["dacc_glx_combat"].notna().sum() == 1
    assert frame.loc[rows["p1"], "dacc_glx_combat"] == 9.0
    with pytest.raises(FedpsyError) as err:
        run_step(CommitDerivedStep(run_id="run-two-0002"), source)  # committed once only
    assert err.value.code == "not_found"


def test_a_source_that_cannot_keep_values_refuses(store_engine: Engine) -> None:
    _people(store_engine)
    plain = StoreFrameSource(store_engine, "alpha", load_dictionary())
    with pytest.raises(FedpsyError) as err:
        run_step(CommitDerivedStep(run_id="run-one-0001"), plain)
    assert err.value.code == "derived_unsupported"


def test_derived_dictionary_file_round_trips_and_refuses_clashes(tmp_path: Path) -> None:
    path = write_derived_dictionary(tmp_path, [HARMONIZED])
    write_derived_dictionary(tmp_path, [CLUSTER])
    loaded = {v.code: v for v in load_derived(path)}
    assert loaded == {HARMONIZED.code: HARMONIZED, CLUSTER.code: CLUSTER}
    assert loaded[HARMONIZED.code].content_hash == HARMONIZED.content_hash
    changed = HARMONIZED.model_copy(update={"description": "ComBat run 2"})
    write_derived_dictionary(tmp_path, [changed])
    assert {v.code: v for v in load_derived(path)}[HARMONIZED.code] == changed
    before = path.read_text(encoding="utf-8")
    clash = Variable(code="age", label="Age", type="numeric")
    with pytest.raises(FedpsyError) as err:
        write_derived_dictionary(tmp_path, [clash])
    assert err.value.code == "dictionary_clash"
    assert path.read_text(encoding="utf-8") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [DERIVED_FILE]


def test_values_for_unknown_rows_are_refused(store_engine: Engine) -> None:
    _people(store_engine)
    values = pd.DataFrame({"dacc_glx_combat": [1.0]}, index=pd.Index([999], name="row_id"))
    with pytest.raises(FedpsyError):
        save_harmonized(
            store_engine, "run-x-000001", values, visit="baseline", variables=[HARMONIZED]
        )
