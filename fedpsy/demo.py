"""``fedpsy demo``: the whole local story, from synthetic sites to pooled-quality answers.

1. synthesize a 3-site consortium; 2. create and load one node per site; 3. serve each
node on a loopback port, create a coordinator that the sites trust, register the nodes;
4. run a tour of analyses over real signed HTTP and print readable tables; 5. train a
TRS-risk model across the sites (model updates as secure sums) and keep its scores there;
6. report data quality across the sites (the scanners' effect on MRS is flagged) and
harmonize the flagged measures with ComBat; 7. save a result, verify its signed receipts
and print its methods paragraph.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from coordinator.http.api import create_app as coordinator_app
from coordinator.service import Coordinator
from coordinator.store.registry import add_user
from coordinator.web.app import issue_login_code
from fedpsy.demo_quality import quality_step
from fedpsy.demo_receipts import receipt_step
from fedpsy.demo_training import SPECTRUM, training_step
from fedpsy.progress import progress_bar
from fedpsy.serving import BackgroundServer
from fedpsy.show import show_result, show_sites
from fedpsy.synth import generate
from node.auth.trust import add_trusted_key
from node.http.api import create_app
from node.service import NodeService
from node.site import NodeSite

out = Console(highlight=False)

TOUR: list[tuple[str, dict[str, Any]]] = [
    (
        "How many persons with schizophrenia (F20/F25), TRS and PANSS recorded, are there?",
        {"analysis": "count", "cohort": SPECTRUM},
    ),
    (
        "PANSS at baseline (schizophrenia spectrum)",
        {
            "analysis": "summary",
            "variables": ["panss_total", "panss_positive", "panss_negative"],
            "cohort": SPECTRUM,
        },
    ),
    (
        "PANSS total: treatment-resistant (TRS) vs not",
        {"analysis": "ttest", "variable": "panss_total", "group": "trs", "cohort": SPECTRUM},
    ),
    (
        "dACC glutamate+glutamine (Glx): TRS vs not",
        {"analysis": "ttest", "variable": "dacc_glx", "group": "trs", "cohort": SPECTRUM},
    ),
    (
        "TRS by sex (a site whose table has a cell under its minimum refuses)",
        {"analysis": "crosstab", "row": "sex", "column": "trs", "cohort": SPECTRUM},
    ),
    (
        "The same, answered by the sites whose policy allows it",
        {
            "analysis": "crosstab",
            "row": "sex",
            "column": "trs",
            "cohort": SPECTRUM,
            "on_refusal": "drop_site",
        },
    ),
    (
        "A logistic model of treatment resistance (sites too small for 4 parameters drop out)",
        {
            "analysis": "glm",
            "formula": "trs ~ age + sex + panss_negative",
            "family": "binomial",
            "cohort": SPECTRUM,
            "on_refusal": "drop_site",
        },
    ),
    (
        "Random-effects meta-analysis across sites: negative symptoms and TRS",
        {
            "analysis": "meta",
            "formula": "trs ~ panss_negative",
            "family": "binomial",
            "term": "panss_negative",
            "cohort": SPECTRUM,
        },
    ),
]


def build_nodes(root: Path, persons: int, seed: int) -> dict[str, NodeSite]:
    out.rule("1. synthesize a 3-site consortium")
    with progress_bar("synthesizing", 3 * persons) as tick:
        folders = generate(3, persons, seed, root / "data", tick)
    out.rule("2. one node per site: create it, load its data")
    nodes = {}
    for site, folder in folders.items():
        node = NodeSite.create(root / "nodes" / site, site, None)
        with progress_bar(f"ingest {site}", node.rows_to_ingest(folder, None)) as tick:
            node.ingest(folder, None, None, tick)
        nodes[site] = node
    show_sites(out, {site: node.status()["tables"] for site, node in nodes.items()})
    return nodes


def serve_consortium(stack: ExitStack, root: Path, nodes: dict[str, NodeSite]) -> Coordinator:
    out.rule("3. serve the nodes, create a coordinator the sites trust")
    coord = Coordinator.create(root / "coordinator")
    for site, node in nodes.items():
        add_trusted_key(node.dir.root, coord.dir.public_key)
        token = node.dir.admin_token.read_text().strip()
        server = stack.enter_context(BackgroundServer(create_app(NodeService(node), token)))
        coord.add_node(site, server.url)
        out.print(f"  node {site} serving on {server.url}, registered with the coordinator")
    return coord


def tour(coord: Coordinator) -> None:
    out.rule("4. a tour of federated analyses (rows never leave the sites)")
    for title, request in TOUR:
        out.print(f"\n[bold]{title}[/]")
        out.print(f"[dim]{escape(json.dumps(request))}[/]")
        show_result(out, asyncio.run(coord.run(request)), request)


def run_demo(out_dir: Path, persons: int, seed: int, serve: bool, port: int) -> None:
    """What ``fedpsy demo`` does (:mod:`fedpsy.demo_cli`)."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    nodes = build_nodes(out_dir, persons, seed)
    with ExitStack() as stack:
        coord = stack.enter_context(serve_consortium(stack, out_dir, nodes))
        tour(coord)
        training_step(out, coord, nodes)
        quality_step(out, coord)
        receipt_step(out, coord, TOUR[1][1], out_dir)
        out.rule("done")
        out.print(f"Everything is in {out_dir}/ (data, nodes, coordinator).")
        if serve:
            serve_dashboard(coord, port)


def serve_dashboard(coord: Coordinator, port: int) -> None:
    """Serve the coordinator with its dashboard; print a one-time login URL."""
    import uvicorn

    app = coordinator_app(coord)
    code = issue_login_code(app, add_user(coord.engine, f"demo-{uuid.uuid4().hex[:6]}"))
    out.rule("dashboard")
    out.print(f"Open http://127.0.0.1:{port}/login?token={code}")
    out.print("(a one-time link that logs you in; Ctrl-C stops everything)")
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", ws="none")
