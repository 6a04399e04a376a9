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
import pyarrow as pa
import pytest
from sqlalchemy import Engine, insert, select

import node.site as site_module
from fedpsy.synth import generate
from node.data.columnar import layer_path, refresh_columnar, store_version
from node.data.frame_columnar import ColumnarFrameSource
from node.data.frame_store import StoreFrameSource
from node.data.staging import DerivedValues
from node.ingest import reader
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


def _flat_site(synth_site: Path, folder: Path) -> Path:
    """The site's observations as one flat file, rows shuffled (a person's rows fall in
    different chunks), with some person columns and given totals."""
    flat = pd.read_csv(synth_site / "observations.csv").sample(frac=1.0, random_state=3)
    person = pd.read_csv(synth_site / "person.csv")
    flat = flat.merge(person[["person_id", "sex", "primary_diagnosis"]], on="person_id")
    items = [f"panss_p{i}" for i in range(1, 8)]
    flat["panss_positive"] = flat[items].sum(axis=1, min_count=7)
    flat.loc[flat.index[::7], "panss_positive"] += 1  # disagrees with its items: items win
    flat.loc[flat.index[::3], "panss_p2"] = np.nan  # incomplete items: the given total stands
    folder.mkdir()
    path = folder / "observations.csv"
    flat.to_csv(path, index=False)
    return path


def test_a_first_load_builds_the_layer_from_the_values_at_hand(
    tmp_path: Path, store_url: str, synth_site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flat file into a store without persons: its layer is written from what the ingest
    wrote (the store is not read back), and equals the layer built from the store."""
    monkeypatch.setattr(reader, "CHUNK_ROWS", 97)
    monkeypatch.setattr(reader.iter_chunks, "__defaults__", (97,))
    path = _flat_site(synth_site, tmp_path / "flat")
    url = None if store_url.startswith("sqlite") else store_url
    with NodeSite.create(tmp_path / "node", "oslo", url) as node:
        built: list[str] = []
        real = site_module.refresh_columnar

        def refresh(*args: object, **kwargs: object) -> list[str]:
            built.append("store")
            return real(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(site_module, "refresh_columnar", refresh)
        report = node.ingest(path)
        assert report.warnings and report.derived_values > 0
        assert built == []  # not read back
        at_hand = {p.name: p.read_bytes() for p in node.dir.columnar.glob("*.arrow")}
        assert len(at_hand) == len(VISITS) + 3  # every visit of the synthetic site
        for layer in at_hand:
            (node.dir.columnar / layer).unlink()
        refresh_columnar(node.engine, "oslo", node.dictionary, node.dir.columnar)
        for name, data in at_hand.items():
            mine, theirs = _table(data), _table((node.dir.columnar / name).read_bytes())
            assert mine.schema.equals(theirs.schema, check_metadata=True)  # version too
            pd.testing.assert_frame_equal(mine.to_pandas(), theirs.to_pandas())
        frames = ColumnarFrameSource(node.engine, "oslo", node.dictionary, node.dir.columnar, 5)
        _assert_same_as_store(node, frames, 5)

        # a second load (the store holds persons now) reads the layer back from the store
        report = node.ingest(_changed(synth_site, tmp_path / "changed"))
        assert built == ["store"]
        _assert_same_as_store(node, frames, 5)


def _table(data: bytes) -> pa.Table:
    return pa.ipc.open_file(pa.BufferReader(data)).read_all()


def test_a_layer_at_hand_is_not_written_once_the_store_changed(
    tmp_path: Path, store_url: str, synth_site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Values at hand carry the store version they make up; if another change was
    committed in between, nothing is written and the layer is read from the store."""
    url = None if store_url.startswith("sqlite") else store_url
    path = _flat_site(synth_site, tmp_path / "flat")
    with NodeSite.create(tmp_path / "node", "oslo", url) as node:
        real = site_module.write_layers

        def late(engine: Engine, *args: object) -> list[str] | None:
            with engine.begin() as conn:  # another writer's batch lands first
                conn.execute(
                    insert(t.ingest_batch).values(
                        batch_id=99,
                        file_name="other.csv",
                        sha256="0" * 64,
                        table_name="observations",
                        rows=0,
                        outcome="loaded",
                        loaded_at="2026-01-01T00:00:00+00:00",
                        report="",
                    )
                )
            written = real(engine, *args)  # type: ignore[arg-type]
            assert written is None
            return written

        monkeypatch.setattr(site_module, "write_layers", late)
        node.ingest(path)
        with node.engine.connect() as conn:
            version = store_version(conn)
        for visit in VISITS:
            table = pa.ipc.open_file(
                pa.BufferReader(layer_path(node.dir.columnar, visit).read_bytes())
            ).read_all()
            assert table.schema.metadata[b"fedpsy.version"] == version.encode()
        frames = ColumnarFrameSource(node.engine, "oslo", node.dictionary, node.dir.columnar, 5)
        _assert_same_as_store(node, frames, 5)


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
