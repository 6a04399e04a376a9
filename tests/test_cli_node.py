"""The node command line on both backends: init, ingest (file and folder), status --json
(read with the standard library on SQLite, the same as through SQLAlchemy), exit codes
for bad input, and the contract's JSON shape."""

from __future__ import annotations

import json
import sqlite3
import stat
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fedpsy.cli import app
from fedpsy.synth import generate
from node import status as node_status
from node.site import NodeSite
from node.store import engine, tables

runner = CliRunner()


@pytest.fixture(scope="module")
def synth_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folders = generate(1, 120, 5, tmp_path_factory.mktemp("synth"), None)
    return next(iter(folders.values()))


def init(tmp_path: Path, store_url: str) -> Path:
    node = tmp_path / "node"
    args = ["node", "init", str(node), "--site", "oslo"]
    if not store_url.startswith("sqlite"):
        args += ["--database-url", store_url]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return node


def test_init_ingest_status(tmp_path: Path, store_url: str, synth_site: Path) -> None:
    node = init(tmp_path, store_url)
    assert (node / "policy.toml").is_file()
    assert stat.S_IMODE((node / "keys" / "node.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((node / "admin_token").stat().st_mode) == 0o600
    assert (node / "store.sqlite").exists() == store_url.startswith("sqlite")
    loaded = runner.invoke(app, ["node", "ingest", str(node), str(synth_site)])
    assert loaded.exit_code == 0, loaded.output
    events = len((synth_site / "event.csv").read_text().splitlines()) - 1
    assert f"event.csv: {events} rows into the event table\n" in loaded.output  # no "values"
    status = runner.invoke(app, ["node", "status", str(node), "--json"])
    assert status.exit_code == 0, status.output
    info = json.loads(status.stdout)
    assert set(info) == {"site", "dictionary_hash", "tables", "batches"}
    assert info["site"] == "oslo"
    persons = len((synth_site / "person.csv").read_text().splitlines()) - 1
    assert info["tables"]["person"] == persons
    assert set(info["tables"]) == {
        "person",
        "visit",
        "observation",
        "drug_exposure",
        "mrs_measure",
        "event",
    }
    assert {b["table_name"] for b in info["batches"]} >= {"person", "observations"}
    again = runner.invoke(app, ["node", "ingest", str(node), str(synth_site)])
    assert again.exit_code == 0 and "unchanged" in again.output


def test_quick_status_is_the_status_and_never_a_stale_one(
    tmp_path: Path, store_url: str, synth_site: Path
) -> None:
    assert node_status.CDM_TABLES == tables.CDM_TABLES
    assert node_status.SQLITE_FILE == engine.SQLITE_FILE
    node = init(tmp_path, store_url)
    assert runner.invoke(app, ["node", "ingest", str(node), str(synth_site)]).exit_code == 0
    with NodeSite.open(node) as site:
        full = site.status()
    quick = node_status.quick_status(node)
    if not store_url.startswith("sqlite"):
        assert quick is None  # PostgreSQL: the command opens the node
        return
    assert quick == full
    remembered = node / node_status.HASH_FILE
    record = json.loads(remembered.read_text())
    remembered.write_text(json.dumps({**record, "hash": "f" * 64}))
    assert node_status.quick_status(node) == {**full, "dictionary_hash": "f" * 64}  # same key
    extra = tmp_path / "extra.yaml"
    extra.write_text(EXT)
    ok = runner.invoke(
        app, ["node", "ingest", str(node), str(synth_site), "--dictionary", str(extra)]
    )
    assert ok.exit_code == 0, ok.output
    remembered.write_text(json.dumps(record))  # the hash before the extension: inputs differ
    assert node_status.quick_status(node) is None
    shown = json.loads(runner.invoke(app, ["node", "status", str(node), "--json"]).stdout)
    with NodeSite.open(node) as site:
        assert shown["dictionary_hash"] == site.dictionary.hash != full["dictionary_hash"]
    assert node_status.quick_status(node) == shown  # remembered again on opening


def test_bad_file_exit_2_and_store_unchanged(tmp_path: Path, store_url: str) -> None:
    node = init(tmp_path, store_url)
    bad = tmp_path / "obs.csv"
    bad.write_text("person_id,visit,panss_p1\nP1,baseline,8\n")
    result = runner.invoke(app, ["node", "ingest", str(node), str(bad)])
    assert result.exit_code == 2
    assert "obs.csv, row 1, column 'panss_p1': value '8': max 7" in result.output
    status = json.loads(runner.invoke(app, ["node", "status", str(node), "--json"]).stdout)
    assert status["tables"]["observation"] == 0 and status["batches"] == []


def test_not_initialized_and_bad_site(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["node", "status", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2
    assert "[not_initialized]" in missing.output  # the error code is shown
    assert "fedpsy node init" in missing.output
    bad = runner.invoke(app, ["node", "init", str(tmp_path / "n"), "--site", "Bad Site!"])
    assert bad.exit_code == 2
    assert "site id" in bad.output
    twice = tmp_path / "twice"
    assert runner.invoke(app, ["node", "init", str(twice), "--site", "a"]).exit_code == 0
    assert runner.invoke(app, ["node", "init", str(twice), "--site", "a"]).exit_code == 2


def test_unreachable_database_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "node",
            "init",
            str(tmp_path / "n"),
            "--site",
            "a",
            "--database-url",
            "postgresql+psycopg://nobody@127.0.0.1:1/none",
        ],
    )
    assert result.exit_code == 1
    assert "cannot open the store at postgresql+psycopg://nobody@127.0.0.1:1/none" in result.output


def test_extension_dictionary_adds_a_variable(tmp_path: Path) -> None:
    node = tmp_path / "node"
    assert runner.invoke(app, ["node", "init", str(node), "--site", "a"]).exit_code == 0
    extra = tmp_path / "extra.yaml"
    extra.write_text(
        "group: site\nvariables:\n  - code: site_score\n    label: Site score\n"
        "    type: integer\n    min: 0\n    max: 10\n"
    )
    data = tmp_path / "obs.csv"
    data.write_text("person_id,visit,site_score\nP1,baseline,4\nP2,baseline,11\n")
    bad = runner.invoke(app, ["node", "ingest", str(node), str(data), "--dictionary", str(extra)])
    assert bad.exit_code == 2 and "site_score" in bad.output and "max 10" in bad.output
    data.write_text("person_id,visit,site_score\nP1,baseline,4\nP2,baseline,10\n")
    ok = runner.invoke(app, ["node", "ingest", str(node), str(data)])
    assert ok.exit_code == 0, ok.output  # the extension stays with the node
    clash = tmp_path / "clash.yaml"
    clash.write_text("group: x\nvariables:\n  - code: age\n    label: Age\n    type: numeric\n")
    result = runner.invoke(
        app, ["node", "ingest", str(node), str(data), "--dictionary", str(clash)]
    )
    assert result.exit_code == 2 and "age" in result.output


EXT = """\
group: site
variables:
  - code: site_score
    label: Site score
    type: integer
    min: 0
    max: 10
  - code: smoker
    label: Current smoker
    type: binary
    min: 0
    max: 1
"""


def _ingest(node: Path, data: Path, *extensions: Path) -> Any:
    args = ["node", "ingest", str(node), str(data)]
    for extension in extensions:
        args += ["--dictionary", str(extension)]
    return runner.invoke(app, args)


def _status(node: Path) -> dict[str, Any]:
    result = runner.invoke(app, ["node", "status", str(node), "--json"])
    assert result.exit_code == 0, result.output
    info: dict[str, Any] = json.loads(result.stdout)
    return info


def test_binary_variable_with_bounds_0_and_1(tmp_path: Path) -> None:
    node, plain_node = tmp_path / "node", tmp_path / "plain"
    for directory in (node, plain_node):
        assert runner.invoke(app, ["node", "init", str(directory), "--site", "a"]).exit_code == 0
    extension = tmp_path / "ext.yaml"
    extension.write_text(EXT)
    data = tmp_path / "obs.csv"
    data.write_text("person_id,visit,smoker\nP1,baseline,1\nP2,baseline,0\n")
    ok = _ingest(node, data, extension)
    assert ok.exit_code == 0, ok.output
    assert "2 values from 2 rows into the observation table" in ok.output
    # the bounds change nothing: the same dictionary hash as the variable without them
    plain = tmp_path / "plain.yaml"
    plain.write_text(EXT.replace("    min: 0\n    max: 1\n", ""))
    assert _ingest(plain_node, data, plain).exit_code == 0
    assert _status(node)["dictionary_hash"] == _status(plain_node)["dictionary_hash"]
    bad = tmp_path / "bad.csv"
    bad.write_text("person_id,visit,smoker\nP3,baseline,2\n")
    refused = _ingest(node, bad)
    assert refused.exit_code == 2
    assert "bad.csv, row 1, column 'smoker': value '2': binary 0|1" in refused.output


@pytest.mark.parametrize(
    ("bounds", "message"),
    [
        ("    min: 1\n    max: 5\n", "min: 1 excludes 0"),
        ("    min: 0.5\n", "min: 0.5 excludes 0"),
        ("    min: 0\n    max: 0.5\n", "max: 0.5 excludes 1"),
    ],
)
def test_contradictory_binary_bounds_are_refused(tmp_path: Path, bounds: str, message: str) -> None:
    node = tmp_path / "node"
    assert runner.invoke(app, ["node", "init", str(node), "--site", "a"]).exit_code == 0
    extension = tmp_path / "ext.yaml"
    extension.write_text(EXT.replace("    min: 0\n    max: 1\n", bounds))
    data = tmp_path / "obs.csv"
    data.write_text("person_id,visit,smoker\nP1,baseline,1\n")
    result = _ingest(node, data, extension)
    assert result.exit_code == 2
    assert "[dictionary_invalid]" in result.output
    assert f"{extension}: variables[1] (code 'smoker'): {message}, but a binary variable" in (
        result.output
    )
    assert _status(node)["tables"]["observation"] == 0
    assert not (node / "dictionary").exists()  # the node did not adopt the file


def test_rerunning_an_ingest_with_the_same_extension(tmp_path: Path) -> None:
    node = tmp_path / "node"
    assert runner.invoke(app, ["node", "init", str(node), "--site", "a"]).exit_code == 0
    extension = tmp_path / "ext.yaml"
    extension.write_text(EXT)
    data = tmp_path / "obs.csv"
    data.write_text("person_id,visit,site_score,smoker\nP1,baseline,4,1\n")
    first = _ingest(node, data, extension)
    assert first.exit_code == 0, first.output
    hash_before = _status(node)["dictionary_hash"]
    again = _ingest(node, data, extension)  # the very same command
    assert again.exit_code == 0, again.output
    assert "obs.csv: unchanged" in again.output
    more = tmp_path / "more.csv"
    more.write_text("person_id,visit,site_score,smoker\nP2,baseline,7,0\n")
    third = _ingest(node, more, extension)
    assert third.exit_code == 0, third.output
    assert "2 values from 1 row into the observation table" in third.output
    assert _status(node)["dictionary_hash"] == hash_before
    assert (node / "node.toml").read_text().count("ext.yaml") == 1
    # the same file may add a variable
    extension.write_text(EXT + "  - {code: site_flag, label: Flag, type: binary}\n")
    added = _ingest(node, more, extension)
    assert added.exit_code == 0, added.output
    assert _status(node)["dictionary_hash"] != hash_before


def test_a_different_definition_of_the_same_code_is_refused(tmp_path: Path) -> None:
    node = tmp_path / "node"
    assert runner.invoke(app, ["node", "init", str(node), "--site", "a"]).exit_code == 0
    extension = tmp_path / "ext.yaml"
    extension.write_text(EXT)
    data = tmp_path / "obs.csv"
    data.write_text("person_id,visit,site_score\nP1,baseline,4\n")
    assert _ingest(node, data, extension).exit_code == 0
    hash_before = _status(node)["dictionary_hash"]
    extension.write_text(EXT.replace("max: 10", "max: 20").replace("Site score", "Score"))
    changed = _ingest(node, data, extension)
    assert changed.exit_code == 2
    assert "[dictionary_clash]" in changed.output
    assert (
        f"{extension}: variable 'site_score' already defined in "
        f"{node / 'dictionary' / 'ext.yaml'} differently "
        "(label 'Site score' → 'Score', max 10 → 20; old → new)"
    ) in changed.output
    dropped = tmp_path / "dropped" / "ext.yaml"  # same file name, a variable left out
    dropped.parent.mkdir()
    dropped.write_text(EXT.split("  - code: smoker")[0])
    refused = _ingest(node, data, dropped)
    assert refused.exit_code == 2
    assert "[dictionary_clash]" in refused.output
    assert "no longer defines 'smoker'" in refused.output
    assert _status(node)["dictionary_hash"] == hash_before
    assert (node / "dictionary" / "ext.yaml").read_text() == EXT


def test_flat_file_with_person_columns(tmp_path: Path) -> None:
    node = tmp_path / "node"
    assert runner.invoke(app, ["node", "init", str(node), "--site", "a"]).exit_code == 0
    flat = tmp_path / "export.csv"
    flat.write_text(
        "person_id,visit,sex,birth_year,primary_diagnosis,age\n"
        "P1,baseline,F,1980,F20,44\nP1,week6,F,1980,F20,44.5\nP2,baseline,M,1975,F32,51\n"
    )
    ok = _ingest(node, flat)
    assert ok.exit_code == 0, ok.output
    assert "export.csv: 12 values from 3 rows into the observation table" in ok.output
    assert _status(node)["tables"]["person"] == 2
    before = _status(node)["tables"]
    conflict = tmp_path / "later.csv"
    conflict.write_text("person_id,visit,sex,age\nP3,baseline,F,30\nP2,week6,F,52\n")
    refused = _ingest(node, conflict)
    assert refused.exit_code == 2
    assert "[ingest_invalid]" in refused.output
    assert (
        "later.csv, row 2, column 'sex': value 'F': person P2 is stored with sex 'M', "
        "the file gives 'F'"
    ) in refused.output
    assert _status(node)["tables"] == before  # P3 was not created either


def test_a_site_with_only_scale_totals(tmp_path: Path) -> None:
    node = tmp_path / "node"
    assert runner.invoke(app, ["node", "init", str(node), "--site", "a"]).exit_code == 0
    totals = tmp_path / "totals.csv"
    totals.write_text(
        "person_id,visit,primary_diagnosis,qids_total,panss_total\n"
        "P1,baseline,F32,16,\nP1,week6,F32,7,\nP2,baseline,F20,,90\nP2,week6,F20,,95\n"
    )
    ok = _ingest(node, totals)
    assert ok.exit_code == 0, ok.output
    assert "from 4 rows into the observation table" in ok.output
    assert "warning" not in ok.output
    with closing(sqlite3.connect(node / "store.sqlite")) as db:
        derived_values = dict(
            ((variable, pid, visit), value)
            for variable, pid, visit, value in db.execute(
                "SELECT variable, person_id, visit, value_num FROM observation "
                "WHERE variable IN ('qids_total', 'qids_response', 'panss_response', 'trd')"
            )
        )
    assert derived_values == {
        ("qids_total", "P1", "baseline"): 16.0,
        ("qids_total", "P1", "week6"): 7.0,
        ("qids_response", "P1", "week6"): 1.0,  # 9/16 ≥ 50 %
        ("panss_response", "P2", "week6"): 0.0,  # it rose
        ("trd", "P1", "_person"): 0.0,  # baseline QIDS 16, but no antidepressant trials
    }
    items = ",".join(f"qids_{i:02d}" for i in range(1, 17))
    later = tmp_path / "items.csv"
    later.write_text(f"person_id,visit,{items}\nP1,baseline,{','.join('1' * 16)}\n")
    warned = _ingest(node, later)
    assert warned.exit_code == 0, warned.output
    assert (
        "warning person P1, visit baseline: qids_total given as 16, but its complete items "
        "give 9; the items' total is kept"
    ) in warned.output
    derived = tmp_path / "derived.csv"
    derived.write_text("person_id,visit,qids_response\nP1,week6,1\n")
    refused = _ingest(node, derived)
    assert refused.exit_code == 2
    assert "derived.csv, column 'qids_response': derived variable" in refused.output


def test_the_console_script_runs_node_commands_without_the_coordinator(
    synth_site: Path, tmp_path: Path
) -> None:
    fedpsy = str(Path(sys.executable).with_name("fedpsy"))
    node = tmp_path / "node"
    subprocess.run([fedpsy, "node", "init", str(node), "--site", "oslo"], check=True)
    loaded = subprocess.run(
        [fedpsy, "node", "ingest", str(node), str(synth_site / "person.csv")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "120 rows into the person table" in loaded.stdout
    probe = (
        "import sys; from fedpsy.cli import main; sys.argv = ['fedpsy', 'node', 'status', "
        f"{str(node)!r}, '--json']\n"
        "try:\n    main()\nexcept SystemExit as done:\n    assert done.code in (0, None)\n"
        "print(sorted(m for m in sys.modules if m.startswith('coordinator')))"
    )
    shown = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(shown[: shown.rindex("}") + 1])["tables"]["person"] == 120
    assert shown.strip().endswith("[]")
    usage = subprocess.run([fedpsy, "node", "ingest"], capture_output=True, text=True)
    assert usage.returncode == 2 and "Usage: fedpsy node ingest" in usage.stderr
