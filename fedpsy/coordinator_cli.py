"""``fedpsy coordinator …``: what the consortium's coordinator runs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from fedpsy.errors import cli_errors
from fedpsy.project_cli import add_project, add_user, projects, revoke
from schemas.errors import ErrorCode, FedpsyError

if TYPE_CHECKING:
    from coordinator.service import Coordinator

app = typer.Typer(
    help="Run the coordinator: register nodes and researchers, serve the API.", no_args_is_help=True
)
out = Console(highlight=False)
DirArg = Annotated[Path, typer.Argument(help="The coordinator directory.")]
app.command("add-project")(add_project)
app.command()(projects)
app.command("add-user")(add_user)
app.command()(revoke)


def _open(directory: Path) -> Coordinator:
    # deferred: the coordinator's service (store, analyses, federation) loads in the
    # commands that open it, so that `fedpsy --help` stays fast
    from coordinator.service import Coordinator

    return Coordinator.open(directory)


@app.command()
@cli_errors
def init(
    directory: DirArg,
    database_url: Annotated[
        str | None, typer.Option(help="State store URL (default: SQLite in DIR).")
    ] = None,
) -> None:
    """Create a coordinator: config, state store and its Ed25519 signing key."""
    # deferred: the coordinator's service loads only in the commands that need it
    from coordinator.service import Coordinator

    with Coordinator.create(directory, database_url) as coord:
        public_key = coord.dir.public_key
    out.print(f"coordinator created in {directory}")
    out.print(
        f"public key: {public_key}  (give it to every site: "
        "`fedpsy node trust NODE_DIR --coordinator-key coordinator.pub`)"
    )


@app.command("add-node")
@cli_errors
def add_node(
    directory: DirArg,
    site: Annotated[str, typer.Option(help="The site id the node was created with.")],
    url: Annotated[
        str | None,
        typer.Option(help="The node's base URL, e.g. https://node.site:8701 (not with --pull)."),
    ] = None,
    pull: Annotated[
        bool,
        typer.Option(
            "--pull",
            help="The node accepts no inbound connections and polls this coordinator; "
            "give its public key with --key.",
        ),
    ] = False,
    key: Annotated[
        Path | None,
        typer.Option(help="With --pull: the node's public key (its DIR/keys/*.pub PEM)."),
    ] = None,
) -> None:
    """Register a node: fetch its /v1/info and pin its key and dictionary; or, with --pull,
    pin the key from a file (the dictionary arrives with the node's first poll)."""
    if pull == (url is not None) or (key is not None) != pull:
        raise FedpsyError(
            "give either --url URL, or --pull --key NODE_PUBLIC_KEY.pem", code=ErrorCode.BAD_INPUT
        )
    with _open(directory) as coord:
        if pull and key is not None:
            record = coord.add_pull_node(site, key)
        else:
            record = coord.add_node(site, str(url))
    where = "polling (pull mode)" if record.mode == "pull" else f"at {record.url}"
    out.print(f"node {record.site} {where} registered (key {record.fingerprint[:16]}…)")


@app.command()
@cli_errors
def nodes(directory: DirArg) -> None:
    """List registered nodes."""
    # deferred: the registry's store code loads only in the commands that need it
    from coordinator.store import registry

    table = Table("site", "url", "key", "dictionary", "last seen")
    with _open(directory) as coord:
        records = registry.list_nodes(coord.engine)
    for n in records:
        table.add_row(
            n.site,
            n.url,
            n.fingerprint[:16],
            n.dictionary_hash[:12],
            f"{n.last_seen:.0f}" if n.last_seen else "",
        )
    out.print(table)


@app.command()
@cli_errors
def serve(
    directory: DirArg,
    host: Annotated[
        str | None,
        typer.Option(
            help="Interface to listen on [default: FEDPSY_COORDINATOR_HOST, coordinator.toml "
            "[serve] host, else 127.0.0.1].",
            show_default=False,
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            help="Port to listen on [default: FEDPSY_COORDINATOR_PORT, coordinator.toml [serve] "
            "port, else 8700].",
            show_default=False,
        ),
    ] = None,
    flower: Annotated[
        bool,
        typer.Option(
            "--flower",
            help="Also run a Flower SuperLink (log in DIR/flwr) for train requests "
            "with runtime 'superlink'. With the coordinator's TLS (certificate, key and CA) "
            "it admits only SuperNodes registered with `register-supernode`; without TLS "
            "it admits any SuperNode (Flower authenticates only over TLS) and stays on "
            "127.0.0.1.",
        ),
    ] = False,
    superlink: Annotated[
        str | None,
        typer.Option(
            metavar="ADDRESS",
            help="Attach to a SuperLink already running on this host "
            "(HOST:PORT) instead of starting one.",
        ),
    ] = None,
    flower_port: Annotated[int, typer.Option(help="The SuperLink's port (with --flower).")] = 9092,
    flower_host: Annotated[
        str,
        typer.Option(
            help="Interface the SuperLink listens on (with --flower; other than loopback "
            "only with TLS). Its port also serves Flower's Control API: open it to the "
            "sites' SuperNodes only."
        ),
    ] = "127.0.0.1",
) -> None:
    """Serve the researcher API; HTTPS when TLS is set. Jobs a previous run left unfinished
    are first closed as `job_interrupted`. With --flower (or --superlink) training can
    also run on Flower's deployment runtime (SuperLink and the sites' SuperNodes)."""
    import logging

    import uvicorn

    # deferred: the API, Flower and uvicorn load only in the command that serves them
    from coordinator.http.api import create_app
    from coordinator.jobs.recovery import fail_interrupted_jobs
    from coordinator.settings import coordinator_settings
    from fedpsy.flower import coordinator_superlink
    from fedpsy.serving import serve_config
    from schemas.logs import configure_json_logs

    settings = coordinator_settings(directory, host=host, port=port)
    configure_json_logs(logging.getLevelNamesMapping()[settings.log_level.upper()])
    tls = settings.server_tls
    with _open(directory) as coord:
        interrupted = fail_interrupted_jobs(coord.engine)
        if interrupted:
            out.print(
                f"{len(interrupted)} job(s) left unfinished by the previous run closed "
                f"as job_interrupted: {', '.join(interrupted)}"
            )
        out.print(
            f"coordinator serving on {'https' if tls else 'http'}://{settings.host}:{settings.port}"
        )
        with coordinator_superlink(
            directory, start=flower, attach=superlink, port=flower_port, tls=tls, host=flower_host
        ) as address:
            if address is not None:
                secure = tls is not None and tls.ca_certs is not None
                mode = (
                    "TLS, registered SuperNodes only"
                    if secure
                    else "plain, any SuperNode: loopback only"
                )
                out.print(f"Flower SuperLink at {address} ({mode}; train runtime 'superlink')")
            uvicorn.Server(serve_config(create_app(coord), settings)).run()


@app.command("register-supernode")
@cli_errors
def register_supernode(
    directory: DirArg,
    public_key: Annotated[
        Path,
        typer.Argument(
            help="The site's SuperNode public key: its DIR/keys/supernode.pub (an OpenSSH "
            "line 'ecdsa-sha2-nistp384 …'), from `fedpsy node supernode-key` at the site."
        ),
    ],
) -> None:
    """Admit a site's SuperNode to the SuperLink of `serve --flower` (which must be running,
    with TLS): register its public key. Compare the fingerprint printed here with the one
    the site sees. Without TLS the SuperLink admits any SuperNode and this is refused."""
    # deferred: Flower's registration code loads only in this command
    from coordinator.layout import CoordinatorDir
    from coordinator.training.supernodes import register_supernode as register

    home = (CoordinatorDir(directory).require().root / "flwr").resolve()
    done = register(home, public_key)
    if done.node_id is None:
        out.print(f"SuperNode key {done.fingerprint} was already registered")
    else:
        out.print(f"SuperNode key {done.fingerprint} registered (SuperNode {done.node_id})")


@app.command()
@cli_errors
def supernodes(
    directory: DirArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The SuperNodes the running SuperLink knows: registered (never connected), online,
    offline."""
    import json

    # deferred: Flower's SuperNode listing loads only in this command
    from coordinator.layout import CoordinatorDir
    from coordinator.training.supernodes import list_supernodes

    nodes = list_supernodes((CoordinatorDir(directory).require().root / "flwr").resolve())
    if as_json:
        typer.echo(json.dumps(nodes, indent=2))
        return
    table = Table("SuperNode", "status", "registered at", "online since")
    for node in nodes:
        table.add_row(
            str(node.get("node-id", "")),
            str(node.get("status", "")),
            str(node.get("created-at", "")),
            str(node.get("online-at", "")),
        )
    out.print(table)
