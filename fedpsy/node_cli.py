"""``fedpsy node …``: what site IT runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from fedpsy.errors import cli_errors
from fedpsy.node_approvals_cli import approve, approve_app, approve_project

if TYPE_CHECKING:
    from node.site import NodeSite

app = typer.Typer(help="Run a site's node: create it, load data, serve it.", no_args_is_help=True)
out = Console(highlight=False)

DirArg = Annotated[Path, typer.Argument(help="The node directory.")]
MAX_WARNINGS = 20


def _open(directory: Path, extensions: tuple[Path, ...] = ()) -> NodeSite:
    # deferred: the node (store, dictionary, ingest) loads only in commands that open one
    from node.site import NodeSite

    return NodeSite.open(directory, extensions)


@app.command()
@cli_errors
def init(
    directory: DirArg,
    site: Annotated[str, typer.Option(help="Site id, e.g. 'berlin'.")],
    database_url: Annotated[
        str | None,
        typer.Option(
            help="Store URL, e.g. postgresql+psycopg://user@host/db (default: SQLite in DIR)."
        ),
    ] = None,
) -> None:
    """Create a node directory: config, store, keys, default policy, admin token."""
    # deferred: the node's store and keys load only in the commands that need them
    from node.site import NodeSite

    with NodeSite.create(directory, site, database_url) as node:
        out.print(f"node '{node.config.site}' created in {directory}")
        out.print(f"store: {node.store_url_redacted}")
        out.print(f"policy: {node.dir.policy} (edit it to set the site's disclosure rules)")


@app.command()
@cli_errors
def ingest(
    directory: DirArg,
    file: Annotated[Path, typer.Argument(help="A CSV/Parquet file or a folder of them.")],
    table: Annotated[
        str | None,
        typer.Option(
            help="person|visit|observations|drug_exposure|mrs_measure|event "
            "(default: from the file name, else a flat observation file)."
        ),
    ] = None,
    mapping: Annotated[
        Path | None, typer.Option(help="Mapping YAML (rename, recode, units).")
    ] = None,
    dictionary: Annotated[
        list[Path] | None,
        typer.Option(help="Extension dictionary YAML adding site variables (repeatable)."),
    ] = None,
) -> None:
    """Validate and load data in one transaction (all or nothing)."""
    # deferred: progress bars load with the data they show
    from fedpsy.progress import progress_bar

    with (
        _open(directory, tuple(dictionary or ())) as node,
        progress_bar(f"ingest {file.name}", node.rows_to_ingest(file, table)) as tick,
    ):
        report = node.ingest(file, table, mapping, tick)
    for f in report.files:
        if f.unchanged:
            out.print(f"{f.file}: unchanged (already loaded, same sha256)")
        else:
            what = f"{f.values:,} values from " if f.table == "observation" else ""
            rows = f"{f.rows:,} row{'s' * (f.rows != 1)}"
            out.print(f"{f.file}: {what}{rows} into the {f.table} table")
    out.print(f"derived values recomputed: {report.derived_values:,}")
    for warning in report.warnings[:MAX_WARNINGS]:
        out.print(f"[yellow]warning[/] {escape(warning)}", soft_wrap=True)
    if len(report.warnings) > MAX_WARNINGS:
        out.print(f"[yellow]warning[/] ... and {len(report.warnings) - MAX_WARNINGS} more")


@app.command()
@cli_errors
def status(
    directory: DirArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Rows per table and the latest ingest batches."""
    # deferred: the quick status reads a SQLite store with the standard library only
    from node.status import quick_status

    info = quick_status(directory)
    if info is None:  # a PostgreSQL store, a changed dictionary: open the node
        with _open(directory) as node:
            info = node.status()
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    out.print(f"site {info['site']}  dictionary {info['dictionary_hash'][:12]}")
    tab = Table("table", "rows")
    for name, rows in info["tables"].items():
        tab.add_row(name, str(rows))
    out.print(tab)
    if info["batches"]:
        bt = Table("batch", "file", "table", "rows", "outcome", "loaded at")
        for b in info["batches"]:
            bt.add_row(
                str(b["batch_id"]),
                b["file_name"],
                b["table_name"],
                str(b["rows"]),
                b["outcome"],
                b["loaded_at"],
            )
        out.print(bt)


@app.command()
@cli_errors
def trust(
    directory: DirArg,
    coordinator_key: Annotated[Path, typer.Option(help="The coordinator's public key (PEM).")],
) -> None:
    """Trust a coordinator's public key: signed requests from it will be answered."""
    # deferred: key handling loads only in the command that trusts a key
    from node.auth.trust import add_trusted_key

    with _open(directory) as node:
        added = add_trusted_key(node.dir.root, coordinator_key)
    out.print(f"trusted coordinator key {added.fingerprint}")


@app.command()
@cli_errors
def serve(
    directory: DirArg,
    host: Annotated[
        str | None,
        typer.Option(
            help="Interface to listen on [default: FEDPSY_NODE_HOST, node.toml [serve] host, "
            "else 127.0.0.1].",
            show_default=False,
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            help="Port to listen on [default: FEDPSY_NODE_PORT, node.toml [serve] port, else "
            "8701].",
            show_default=False,
        ),
    ] = None,
    pull: Annotated[
        str | None,
        typer.Option(
            "--pull",
            metavar="COORDINATOR_URL",
            help="Outbound-only: poll this coordinator for requests instead of receiving them "
            "(the API is then served only for the local admin pages; keep the host "
            "127.0.0.1).",
        ),
    ] = None,
    supernode: Annotated[
        str | None,
        typer.Option(
            "--supernode",
            metavar="SUPERLINK",
            help="Also run this site's Flower SuperNode, connected to the consortium's SuperLink "
            "(HOST:PORT). With tls_ca_certs it connects over TLS and signs with the site's "
            "SuperNode key (see `supernode-key`; the coordinator must have registered it); "
            "without, in plain gRPC and unauthenticated (loopback only). Log in DIR/flwr.",
        ),
    ] = None,
    supernode_port: Annotated[
        int, typer.Option(help="The SuperNode's local port (with --supernode).")
    ] = 9094,
) -> None:
    """Serve the node's API (health, info, signed tasks, admin); HTTPS when TLS is set.
    With --pull, poll the coordinator for requests and post the answers back. With
    --supernode, the site's Flower SuperNode runs alongside (training apps the site
    approved with `fedpsy node approve-app` only)."""
    import logging

    import uvicorn

    # deferred: the API, Flower and uvicorn load only in the command that serves them
    from fedpsy.flower import site_supernode
    from fedpsy.serving import serve_config
    from node.http.api import create_app
    from node.service import NodeService
    from node.settings import node_settings
    from node.training.supernode_keys import supernode_key
    from schemas.logs import configure_json_logs

    settings = node_settings(directory, host=host, port=port)
    node = _open(directory)
    configure_json_logs(logging.getLevelNamesMapping()[settings.log_level.upper()])
    service = NodeService(node)
    app = create_app(service, settings.admin_token.get_secret_value())
    tls = settings.server_tls
    with site_supernode(
        directory, supernode, port=supernode_port, ca_certs=settings.tls_ca_certs
    ) as flower:
        if flower:
            if settings.tls_ca_certs is None:
                how = "plain gRPC, unauthenticated"
            else:
                how = f"TLS, SuperNode key {supernode_key(directory).fingerprint}"
            out.print(f"SuperNode of '{node.config.site}' connecting to {supernode} ({how})")
        if pull is not None:
            _serve_pull(service, node, app, pull, settings)
            return
        mode = "" if tls is None else f" (TLS, client certificates: {tls.client_auth})"
        out.print(
            f"node '{node.config.site}' serving on {'https' if tls else 'http'}://"
            f"{settings.host}:{settings.port}{mode}"
        )
        uvicorn.Server(serve_config(app, settings)).run()


@app.command("supernode-key")
@cli_errors
def supernode_key_command(directory: DirArg) -> None:
    """The site's Flower SuperNode public key (created with its private key on first use):
    send DIR/keys/supernode.pub to the coordinator operator, who admits the SuperNode with
    `fedpsy coordinator register-supernode`. Never send DIR/keys/supernode.key."""
    # deferred: SuperNode keys load only in this command
    from node.layout import NodeDir
    from node.training.supernode_keys import supernode_key

    key = supernode_key(NodeDir(directory).require().root)
    state = "created" if key.created else "existing"
    out.print(f"SuperNode public key ({state}): {key.public}")
    out.print(f"fingerprint {key.fingerprint}")
    typer.echo(key.line)


def _serve_pull(
    service: Any, node: NodeSite, app: Any, coordinator_url: str, settings: Any
) -> None:
    """Poll ``coordinator_url`` and serve the local API (admin pages) at the same time."""
    import asyncio

    import uvicorn

    # deferred: pull mode's poller loads only when a node serves in pull mode
    from fedpsy.serving import serve_config
    from node.auth.identity import load_identity
    from node.http.pull import Poller, pull_client

    cert = (
        (settings.tls_certfile, settings.tls_keyfile)
        if settings.tls_certfile and settings.tls_keyfile
        else None
    )
    client = pull_client(coordinator_url, settings.tls_ca_certs, cert, settings.key_password)
    server = uvicorn.Server(serve_config(app, settings))

    async def main() -> None:
        async with client:
            poller = Poller(service, app, coordinator_url, load_identity(node.dir), client)
            polling = asyncio.create_task(poller.run(lambda: server.should_exit))
            try:
                await server.serve()
            finally:
                polling.cancel()

    out.print(
        f"node '{node.config.site}' polling {coordinator_url} (outbound only); admin "
        f"pages on {'https' if settings.server_tls else 'http'}://{settings.host}:{settings.port}"
    )
    asyncio.run(main())


app.command()(approve)
app.command("approve-app")(approve_app)
app.command("approve-project")(approve_project)


@app.command()
@cli_errors
def audit(
    directory: DirArg,
    verify: Annotated[bool, typer.Option(help="Check the hash chain; exit 1 if broken.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    receipt: Annotated[
        Path | None,
        typer.Option(
            metavar="RESULT.json",
            help="Check that this result's receipt of this site matches the audit log.",
        ),
    ] = None,
) -> None:
    """The audit log: every task, decision and exactly what left."""
    # deferred: the audit log's store code and the receipt check load only in this command
    from fedpsy.receipt_audit import check_receipt
    from node.audit import AuditLog

    if receipt is not None:
        with _open(directory) as node:
            out.print(check_receipt(node, receipt))
        return
    with _open(directory) as node:
        log = AuditLog(node.engine)
        report = log.verify()
        entries = log.entries(json=True)
    if verify:
        if as_json:
            typer.echo(json.dumps(report.__dict__))
        elif report.ok:
            out.print(f"audit log intact ({report.checked} entries)")
        else:
            out.print(
                f"[bold red]audit log broken[/] at entry {report.first_broken_seq}: {report.reason}"
            )
        raise typer.Exit(0 if report.ok else 1)
    if as_json:
        typer.echo(json.dumps(entries, indent=2))
        return
    for e in entries:
        out.print(f"{e['seq']:>5} {e['at']} {e['kind']:<9} {e.get('task_id') or ''}")


@app.command()
@cli_errors
def policy(directory: DirArg) -> None:
    """Show the site's policy in force (edit DIR/policy.toml to change it)."""
    # deferred: the policy model loads only in this command
    from node.privacy.policy import load_policy

    with _open(directory) as node:
        policy_in_force = load_policy(node.dir.policy)
    typer.echo(json.dumps(policy_in_force.model_dump(mode="json"), indent=2))
