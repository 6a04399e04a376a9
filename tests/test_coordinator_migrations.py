"""The coordinator's store on Alembic migrations, on both backends: a fresh store gets the
tables of ``coordinator.store.tables``; a store made before migrations (``create_all`` on
every start, no version table) is completed and stamped at the baseline, its rows kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import setuptools
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    Column,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    inspect,
    select,
    text,
)

from coordinator.service import Coordinator, open_state
from coordinator.store import jobs, models, projects, registry
from coordinator.store import tables as t
from coordinator.store.schema import (
    BASELINE,
    VERSION_TABLE,
    alembic_config,
    is_unversioned,
    upgrade,
)
from node.store import engine as node_engine
from node.store.schema import upgrade as upgrade_node
from node.store.tables import metadata as node_metadata
from schemas import engine as shared_engine
from schemas.envelope import Envelope

ROOT = Path(__file__).resolve().parents[1]
HEAD = ScriptDirectory(
    str(ROOT / "coordinator" / "store" / "migrations"), version_locations=None
).get_current_head()


def _old_metadata(generation: str) -> MetaData:
    """The tables ``metadata.create_all`` made in each coordinator before migrations:
    ``first`` (nodes, jobs, users), ``training`` (+ the model registry), ``pull`` (+ the
    mailbox, and ``node.mode``: the tables of the baseline revision)."""
    old = MetaData()
    node_columns = [
        Column("site", String(32), primary_key=True),
        Column("url", Text, nullable=False),
        *([Column("mode", String(8), nullable=False)] if generation == "pull" else []),
        Column("public_key", Text, nullable=False),
        Column("fingerprint", String(64), nullable=False),
        Column("dictionary_hash", String(64), nullable=False),
        Column("variable_hashes", Text, nullable=False),
        Column("added_at", Float, nullable=False),
        Column("last_seen", Float, nullable=True),
    ]
    Table("node", old, *node_columns)
    Table(
        "job",
        old,
        Column("job_id", String(64), primary_key=True),
        Column("user_name", String(64), nullable=True),
        Column("analysis", String(32), nullable=False),
        Column("request", Text, nullable=False),
        Column("status", String(16), nullable=False),
        Column("sites", Text, nullable=False),
        Column("result", Text, nullable=True),
        Column("created_at", Float, nullable=False),
        Column("started_at", Float, nullable=True),
        Column("finished_at", Float, nullable=True),
    )
    Table(
        "user",
        old,
        Column("user_id", Integer, primary_key=True, autoincrement=True),
        Column("name", String(64), nullable=False, unique=True),
        Column("token_sha256", String(64), nullable=False, unique=True),
        Column("created_at", Float, nullable=False),
    )
    if generation in ("training", "pull"):
        Table(
            "model",
            old,
            Column("model_id", String(64), primary_key=True),
            Column("job_id", String(64), nullable=True),
            Column("kind", String(16), nullable=False),
            Column("request", Text, nullable=False),
            Column("sites", Text, nullable=False),
            Column("app_hash", String(64), nullable=False),
            Column("metrics", Text, nullable=False),
            Column("model", Text, nullable=False),
            Column("created_at", Float, nullable=False),
        )
    if generation == "pull":
        Table(
            "pull_message",
            old,
            Column("message_id", String(32), primary_key=True),
            Column("site", String(32), nullable=False, index=True),
            Column("method", String(8), nullable=False),
            Column("path", Text, nullable=False),
            Column("headers", Text, nullable=False),
            Column("body", Text, nullable=False),
            Column("status", String(12), nullable=False),
            Column("response_status", Integer, nullable=True),
            Column("response_body", Text, nullable=True),
            Column("created_at", Float, nullable=False),
            Column("expires_at", Float, nullable=False),
        )
        Table(
            "pull_nonce",
            old,
            Column("nonce", String(32), primary_key=True),
            Column("seen_at", Float, nullable=False),
        )
    return old


OLD_ENVELOPE = {
    "status": "refused",
    "analysis": "count",
    "result": {},
    "sites": {},
    "reason": {
        "code": "refused",
        "detail": "site oslo: cohort_too_small",
        "sites": {"oslo": "cohort_too_small"},
    },
    "request_id": "job-old",
    "privacy": {"secure_aggregation": False, "dp": None},
}


def _revisions(engine: Engine) -> dict[str, str | None]:
    """The revision each side's version table records (None: no version table)."""
    with engine.connect() as conn:
        names = set(inspect(conn).get_table_names())
        return {
            table: conn.execute(text(f"SELECT version_num FROM {table}")).scalar_one()
            if table in names
            else None
            for table in (VERSION_TABLE, "alembic_version")
        }


def _schema_diff(engine: Engine) -> list[object]:
    """What differs between the store and ``coordinator.store.tables`` (the node's tables
    and the version tables aside)."""
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "include_name": lambda name, kind, _parent: (
                    kind != "table" or name in t.metadata.tables
                )
            },
        )
        return list(compare_metadata(context, t.metadata))


def test_a_fresh_store_gets_exactly_the_defined_tables(store_url: str) -> None:
    engine = open_state(store_url)
    try:
        assert set(t.metadata.tables) <= set(inspect(engine).get_table_names())
        assert _schema_diff(engine) == []
        assert _revisions(engine) == {VERSION_TABLE: HEAD, "alembic_version": None}
        assert not is_unversioned(engine)
        upgrade(engine)  # idempotent
        assert _revisions(engine)[VERSION_TABLE] == HEAD
    finally:
        engine.dispose()


@pytest.mark.parametrize("generation", ["first", "training", "pull"])
def test_a_store_made_before_migrations_is_completed_and_stamped(
    store_url: str, generation: str, tmp_path: Path
) -> None:
    old = _old_metadata(generation)
    legacy = shared_engine.open_engine(store_url)
    old.create_all(legacy)
    token_digest = registry.token_digest("fpy_old-token")
    with legacy.begin() as conn:
        node: dict[str, object] = {
            "site": "oslo",
            "url": "https://oslo:8701",
            "public_key": "pem",
            "fingerprint": "f" * 64,
            "dictionary_hash": "d" * 64,
            "variable_hashes": "{}",
            "added_at": 1.0,
            "last_seen": None,
        }
        if generation == "pull":
            node["mode"] = "push"
        conn.execute(old.tables["node"].insert().values(**node))
        conn.execute(
            old.tables["job"]
            .insert()
            .values(
                job_id="job-old",
                user_name="ada",
                analysis="count",
                request=json.dumps({"analysis": "count"}),
                status="refused",
                sites="{}",
                result=json.dumps(OLD_ENVELOPE),
                created_at=2.0,
                started_at=None,
                finished_at=3.0,
            )
        )
        conn.execute(
            old.tables["user"]
            .insert()
            .values(name="ada", token_sha256=token_digest, created_at=1.0)
        )
    assert is_unversioned(legacy)
    legacy.dispose()

    engine = open_state(store_url)
    try:
        assert _revisions(engine) == {VERSION_TABLE: HEAD, "alembic_version": None}
        assert _schema_diff(engine) == []
        (node_record,) = registry.list_nodes(engine)
        assert (node_record.site, node_record.mode) == ("oslo", "push")
        assert registry.user_for_token(engine, "fpy_old-token") == "ada"
        job = jobs.get_job(engine, "job-old")
        assert job is not None and isinstance(job["result"], Envelope)
        assert json.dumps(job["result"].to_dict()) == json.dumps(OLD_ENVELOPE)
        assert job["project"] == "default"  # its researcher's only project
        # the store works as a current one: a pull node, a job, a stored model
        registry.save_pull_node(engine, "kiel", "pem", "k" * 64)
        assert {n.site: n.mode for n in registry.list_nodes(engine)} == {
            "kiel": "pull",
            "oslo": "push",
        }
        jobs.create_job(engine, "job-new", "ada", {"analysis": "count"})
        with engine.begin() as conn:
            conn.execute(t.pull_nonce.insert().values(nonce="n1", seen_at=1.0))
            stored = dict.fromkeys(("request", "sites", "metrics", "model"), "{}")
            conn.execute(
                t.model.insert().values(
                    model_id="m1",
                    job_id="job-new",
                    kind="logistic",
                    app_hash="a",
                    created_at=4.0,
                    **stored,
                )
            )
    finally:
        engine.dispose()
    again = open_state(store_url)  # reopening changes nothing
    try:
        assert _revisions(again)[VERSION_TABLE] == HEAD
        assert [j["job_id"] for j in jobs.list_jobs(again)] == ["job-new", "job-old"]
        with again.connect() as conn:
            assert conn.execute(select(t.model.c.model_id)).scalars().all() == ["m1"]
    finally:
        again.dispose()


def test_a_coordinator_directory_from_before_migrations_opens(tmp_path: Path) -> None:
    with Coordinator.create(tmp_path / "coord") as coord:
        token = registry.add_user(coord.engine, "ada")
        with coord.engine.begin() as conn:  # as the coordinator before migrations left it
            conn.execute(text(f"DROP TABLE {VERSION_TABLE}"))
    with Coordinator.open(tmp_path / "coord") as reopened:
        assert registry.user_for_token(reopened.engine, token) == "ada"
        assert _revisions(reopened.engine)[VERSION_TABLE] == HEAD


def test_a_node_and_a_coordinator_may_share_a_database(store_url: str) -> None:
    """Each side keeps its revision in its own version table."""
    engine = shared_engine.open_engine(store_url)
    try:
        upgrade_node(engine)
        node_head = _revisions(engine)["alembic_version"]
        assert node_head is not None
        assert not is_unversioned(engine)  # the node's tables are not the coordinator's
        upgrade(engine)
        upgrade_node(engine)
        assert _revisions(engine) == {VERSION_TABLE: HEAD, "alembic_version": node_head}
        names = set(inspect(engine).get_table_names())
        assert set(t.metadata.tables) | set(node_metadata.tables) <= names
        assert _schema_diff(engine) == []
    finally:
        engine.dispose()


def test_node_and_coordinator_open_their_stores_with_one_engine_setup(
    store_url: str, tmp_path: Path
) -> None:
    assert node_engine.open_engine is shared_engine.open_engine
    url = None if store_url.startswith("sqlite") else store_url
    with Coordinator.create(tmp_path / "coord", url) as coord:
        engine = coord.engine
        if engine.dialect.name == "sqlite":
            with engine.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
                assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
                assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
        else:
            assert engine.pool._pre_ping  # type: ignore[attr-defined]


def test_the_migrations_ship_in_the_package() -> None:
    """Each migrations folder is a package (its revisions are .py files) and the template
    is package data."""
    packages = setuptools.find_packages(str(ROOT), include=["coordinator*", "node*"])
    for side in ("coordinator", "node"):
        assert {f"{side}.store.migrations", f"{side}.store.migrations.versions"} <= set(packages)
        folder = ROOT / side / "store" / "migrations"
        assert (folder / "env.py").is_file() and (folder / "script.py.mako").is_file()
    revisions = sorted(
        p.name for p in (ROOT / "coordinator/store/migrations/versions").glob("0*.py")
    )
    assert revisions[0].startswith(f"{BASELINE}_")


def test_a_store_of_the_previous_schema_gets_projects_with_its_users_in_default(
    store_url: str,
) -> None:
    """A coordinator made before projects (at the baseline revision, researchers and all)
    upgrades to one where project ``default`` is open to everything and holds them."""
    engine = shared_engine.open_engine(store_url)
    try:
        command.upgrade(alembic_config(engine), BASELINE)
        with engine.begin() as conn:
            conn.execute(
                text(
                    'INSERT INTO "user" (name, token_sha256, created_at) '
                    "VALUES ('ada', :digest, 1.0)"
                ),
                {"digest": registry.token_digest("fpy_old")},
            )
        assert _revisions(engine)[VERSION_TABLE] == BASELINE
        upgrade(engine)
        assert _revisions(engine)[VERSION_TABLE] == HEAD
        assert _schema_diff(engine) == []
        (default,) = projects.list_projects(engine)
        assert default.name == "default" and default.members == ("ada",)
        assert (default.analyses, default.variables, default.sites) == (None, None, None)
        assert registry.user_for_token(engine, "fpy_old") == "ada"
        command.downgrade(alembic_config(engine), BASELINE)  # the revision steps back too
        assert "project" not in inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_a_store_of_the_projects_schema_gets_each_jobs_and_models_project(
    store_url: str,
) -> None:
    """A coordinator made before jobs recorded their project (revision 0002) upgrades to
    one where each job has the project its request named, else its researcher's only
    project, else none (seen by its researcher alone), and each model its job's project;
    each researcher then sees their own jobs and their projects' jobs and models (the
    members of ``default`` also the operator's, run without a project)."""
    engine = shared_engine.open_engine(store_url)
    try:
        command.upgrade(alembic_config(engine), "0002")
        projects.add_project(engine, "trd", variables=["age"])
        ada = registry.add_user(engine, "ada")  # default only
        registry.add_user(engine, "grace", "trd")  # trd only
        registry.add_user(engine, "ivy", "trd")
        projects.add_member(engine, "default", "ivy")  # both
        with engine.begin() as conn:
            for job_id, user, request in [
                ("j-ada", "ada", {"analysis": "count"}),
                ("j-grace", "grace", {"analysis": "count"}),
                ("j-ivy-trd", "ivy", {"analysis": "count", "project": "trd"}),
                ("j-ivy", "ivy", {"analysis": "count"}),
                ("j-operator", None, {"analysis": "count"}),
            ]:
                conn.execute(
                    text(
                        "INSERT INTO job (job_id, user_name, analysis, request, status, sites, "
                        "created_at) VALUES (:job_id, :user, 'count', :request, 'ok', '{}', 1.0)"
                    ),
                    {"job_id": job_id, "user": user, "request": json.dumps(request)},
                )
            conn.execute(
                text(
                    "INSERT INTO model (model_id, job_id, kind, request, sites, app_hash, "
                    "metrics, model, created_at) "
                    "VALUES ('m1', 'j-grace', 'logistic', '{}', '{}', 'a', '{}', '{}', 1.0), "
                    "('m0', NULL, 'logistic', '{}', '{}', 'a', '{}', '{}', 0.5)"
                )
            )
        upgrade(engine)
        assert _revisions(engine)[VERSION_TABLE] == HEAD
        assert _schema_diff(engine) == []
        recorded = {j["job_id"]: j["project"] for j in jobs.list_jobs(engine)}
        assert recorded == {
            "j-ada": "default",
            "j-grace": "trd",
            "j-ivy-trd": "trd",
            "j-ivy": None,  # in two projects, none named: only ivy sees it
            "j-operator": None,  # the operator's, no project: default's members see it
        }
        seen = {
            user: sorted(j["job_id"] for j in jobs.list_jobs(engine, viewer=user))
            for user in ("ada", "grace", "ivy")
        }
        assert seen == {
            "ada": ["j-ada", "j-operator"],
            "grace": ["j-grace", "j-ivy-trd"],
            "ivy": ["j-ada", "j-grace", "j-ivy", "j-ivy-trd", "j-operator"],
        }
        assert jobs.get_job(engine, "j-grace", viewer="ada") is None
        assert [m["project"] for m in models.list_models(engine, viewer="grace")] == ["trd"]
        assert [m["model_id"] for m in models.list_models(engine, viewer="ada")] == ["m0"]
        assert registry.user_for_token(engine, ada) == "ada"
        command.downgrade(alembic_config(engine), "0002")  # the revision steps back too
        assert "project" not in {c["name"] for c in inspect(engine).get_columns("job")}
    finally:
        engine.dispose()


def test_stores_of_both_sides_migrate_at_once_in_one_process(tmp_path: Path) -> None:
    """Alembic keeps a running migration's context in module globals: node and
    coordinator stores opened by several threads at once (a served node, a coordinator's
    worker threads, a CLI check) must all reach their newest revision."""
    from concurrent.futures import ThreadPoolExecutor

    from sqlalchemy import inspect

    from coordinator.store import schema as coordinator_schema
    from coordinator.store.tables import metadata as coordinator_tables
    from node.store import schema as node_schema
    from node.store.tables import metadata as node_tables
    from schemas.engine import open_engine

    def missing(i: int) -> set[str]:
        side, tables = (
            (node_schema, node_tables) if i % 2 else (coordinator_schema, coordinator_tables)
        )
        engine = open_engine(f"sqlite:///{tmp_path / f'store{i}.sqlite'}")
        try:
            side.upgrade(engine)
            return set(tables.tables) - set(inspect(engine).get_table_names())
        finally:
            engine.dispose()

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(missing, range(16))) == [set()] * 16
