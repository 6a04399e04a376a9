"""The columnar layer gives exactly the store's frames, and a stale layer is never read.

Each test compares the layer's frames with :class:`StoreFrameSource` (the store path) for
every dictionary variable at every visit, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from fedpsy.synth import generate
from node.data.columnar import layer_path, store_version
from node.data.frame_columnar import ColumnarFrameSource
from node.data.frame_store import StoreFrameSource
from node.data.staging import DerivedValues
from node.service import NodeService
from node.site import NodeSite
from node.store import tables as t
from schemas.cohort import All, Condition
from schemas.dictionary.model import Variable

VISITS = ("baseline", "week6")


@pytest.fixture(scope="module")
def synth_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folders = generate(1, 150, 11, tmp_path_factory.mktemp("synth"), None)
    return next(iter(folders.values()))


@pytest.fixture
def node(tmp_path: Path, store_url: str, synth_site: Path) -> Iterator[NodeSite]:
    """A node holding the synthetic site (its layer built by the ingest)."""
    url = None if store_url.startswith("sqlite") else store_url
    with NodeSite.create(tmp_path / "node", "oslo", url) as opened:
        opened.ingest(synth_site)
        yield opened


def _assert_same_as_store(node: NodeSite, frames: ColumnarFrameSource, min_cell: int) -> None:
    store = StoreFrameSource(node.engine, "oslo", node.dictionary, min_cell)
    codes = list(node.dictionary.variables)
    for visit in VISITS:
        pd.testing.assert_frame_equal(
            frames.frame(codes, visit, None), store.frame(codes, visit, None)
        )
    cohort = All(
        all=[Condition(var="sex", op="==", value="F"), Condition(var="age", op=">=", value=30)]
    )
    wanted = ["site", "madrs_total", "panss_total", "primary_diagnosis"]
    pd.testing.assert_frame_equal(
        frames.frame(wanted, "baseline", cohort), store.frame(wanted, "baseline", cohort)
    )


def _changed(synth_site: Path, folder: Path) -> Path:
    """The site's baseline observations with new values for some persons."""
    flat = pd.read_csv(synth_site / "observations.csv")
    base = flat[flat["visit"] == "baseline"].head(40).copy()
    base["age"] = base["age"] + 1.5
    base["panss_p1"] = np.where(base["panss_p1"] >= 4, 1, base["panss_p1"] + 1)
    folder.mkdir()
    path = folder / "observations.csv"
    base[["person_id", "visit", "age", "panss_p1"]].to_csv(path, index=False)
    return path


def test_the_layer_is_built_at_ingest_and_equals_the_store(node: NodeSite) -> None:
    files = {layer_path(node.dir.columnar, v) for v in VISITS}
    assert files <= set(node.dir.columnar.iterdir())
    for min_cell in (5, 30):  # 30: the rarer scanner of the open mrs_scanner is withheld
        frames = ColumnarFrameSource(
            node.engine, "oslo", node.dictionary, node.dir.columnar, min_cell
        )
        _assert_same_as_store(node, frames, min_cell)
    held = frames.frame(["mrs_scanner"], "baseline", None)["mrs_scanner"]
    assert len(held.cat.categories) == 1


def test_a_stale_layer_is_never_read(node: NodeSite, tmp_path: Path, synth_site: Path) -> None:
    service = NodeService(node)  # a live node, holding its layers in memory
    frames = service.frames.inner
    assert isinstance(frames, ColumnarFrameSource)
    before = frames.frame(["age", "panss_total"], "baseline", None)
    baseline = layer_path(node.dir.columnar, "baseline")
    old_file = baseline.read_bytes()
    with node.engine.connect() as conn:
        old_version = store_version(conn)

    # another process (the CLI) ingests new values while the service holds the old layer
    changed = _changed(synth_site, tmp_path / "changed")
    cli = Path(sys.executable).with_name("fedpsy")
    done = subprocess.run(
        [str(cli), "node", "ingest", str(node.dir.root), str(changed)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    with node.engine.connect() as conn:
        assert store_version(conn) != old_version

    after = frames.frame(["age", "panss_total"], "baseline", None)
    first = after.index[:40]
    assert np.allclose(after.loc[first, "age"], before.loc[first, "age"] + 1.5)
    assert not after["panss_total"].equals(before["panss_total"])  # re-derived totals
    _assert_same_as_store(node, frames, service.policy.min_cell)

    # an old file put back in place (a copy from before, a slow writer) is not read either
    baseline.write_bytes(old_file)
    fresh = ColumnarFrameSource(node.engine, "oslo", node.dictionary, node.dir.columnar, 5)
    pd.testing.assert_frame_equal(fresh.frame(["age"], "baseline", None), after[["age"]])
    assert baseline.read_bytes() != old_file  # rebuilt at the store's version


def test_a_committed_derivation_changes_the_layer(node: NodeSite) -> None:
    service = NodeService(node)
    rows = service.frames.frame(["age"], "baseline", None)
    score = Variable(code="age_score", label="Age score", type="numeric")
    values = pd.DataFrame({"age_score": rows["age"].to_numpy() / 10.0}, index=rows.index)
    service.frames.stage_derived(DerivedValues("run-0001", "baseline", (score,), values))
    service.frames.commit_derived("run-0001")
    got = service.frames.frame(["age_score"], "baseline", None)
    np.testing.assert_allclose(got["age_score"].to_numpy(), values["age_score"].to_numpy())
    inner = service.frames.inner
    assert isinstance(inner, ColumnarFrameSource)
    _assert_same_as_store(node, inner, service.policy.min_cell)


def test_store_frames_hold_the_ingested_values(node: NodeSite, synth_site: Path) -> None:
    """Each variable of the flat file, read from the store at each visit, is the file's
    value for every person with the visit (text for the categorical ``rtms_protocol``;
    person-level ``education_years`` and ``followup_days`` from the baseline row)."""
    flat = pd.read_csv(synth_site / "observations.csv", dtype={"rtms_protocol": object})
    with node.engine.connect() as conn:
        person_of = dict(conn.execute(select(t.person.c.row_id, t.person.c.person_id)).all())
    codes = [c for c in flat.columns if c not in ("person_id", "visit")]
    person_level = [c for c in codes if node.dictionary.get(c).level == "person"]
    assert {"education_years", "followup_days"} <= set(person_level)
    first = flat[flat["visit"] == "baseline"].set_index("person_id")[person_level]
    store = StoreFrameSource(node.engine, "oslo", node.dictionary)
    for visit in VISITS:
        expected = flat[flat["visit"] == visit].set_index("person_id")
        expected = expected.drop(columns=person_level).join(first)
        got = store.frame(codes, visit, None)
        persons = [person_of[r] for r in got.index]
        assert sorted(persons) == sorted(expected.index)
        expected = expected.loc[persons]
        for code in codes:
            if code == "rtms_protocol":
                want = expected[code].astype(object).where(expected[code].notna(), None)
                have = got[code].astype(object).where(got[code].notna(), None)
                assert want.tolist() == have.tolist(), code
                assert expected[code].notna().sum() > 0 or visit == "baseline"
            else:
                np.testing.assert_array_equal(
                    got[code].to_numpy(dtype=np.float64),
                    expected[code].to_numpy(dtype=np.float64),
                    err_msg=code,
                )
