"""The dashboard and the node admin page in a real browser (Playwright driving Debian's
chromium): log in, browse the catalog, build and run analyses, watch them finish, check the
rendered plots and their data against pooled references, download CSV, approve a pending
request at a node and see it leave. Screenshots go to ``test-artifacts/``.

``make browsers`` installs chromium; without it these tests skip, except under CI=true,
where they fail. ``FEDPSY_UPDATE_DOCS=1`` also refreshes ``docs/dashboard.png`` and
``docs/dashboard-glm.png``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import shutil
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

from coordinator.http.api import create_app
from coordinator.service import Coordinator
from coordinator.store import jobs, registry
from coordinator.web.app import issue_login_code
from coordinator.web.plots import plots_for
from fedpsy.serving import BackgroundServer
from node.http.api import create_app as node_app
from node.service import NodeService
from schemas.analyses import RESULTS
from tests.support.consortium import LocalConsortium, clinical_sites
from tests.support.web_results import SAMPLES, envelope

try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError:  # the dev extras bring it; CI must have it
    if os.environ.get("CI") == "true":
        raise
    pytest.skip("playwright is not installed (pip install -e '.[dev]')", allow_module_level=True)

pytestmark = pytest.mark.xdist_group("browser")
SIZES = {"amsterdam": 160, "berlin": 120, "copenhagen": 90}
MANUAL_SITE = "copenhagen"
ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
FINISHED_TIMEOUT_MS = 60_000


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = shutil.which("chromium")
    if executable is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is missing: run `make browsers` (apt-get install chromium)")
        pytest.skip("chromium is not installed (`make browsers`)")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=executable, args=ARGS)
        yield launched
        launched.close()


def _with_follow_up(seed: int = 11) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    rng = np.random.default_rng(seed)
    data = clinical_sites(SIZES)
    for _site, (_person, obs) in data.items():
        obs["followup_days"] = rng.integers(200, 720, len(obs))
    return data


def _manual_count(consortium: LocalConsortium, site: str) -> None:
    """Ask ``site`` for manual approval of ``count`` and restart its node on the same port,
    as a site does after editing its policy."""
    node = consortium.nodes[site]
    text = node.dir.policy.read_text(encoding="utf-8")
    node.dir.policy.write_text(
        text.replace("[approval]\n", '[approval]\ncount = "manual"\n', 1), encoding="utf-8"
    )
    old = consortium.servers[site]
    old.stop()
    service = NodeService(node)
    server = BackgroundServer(
        node_app(service, node.dir.admin_token.read_text().strip()), port=old.port
    )
    consortium.stack.enter_context(server)
    consortium.services[site], consortium.servers[site] = service, server


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A consortium with relapse events, its dashboard served, and a researcher token."""
    root = tmp_path_factory.mktemp("browser")
    data = _with_follow_up()
    consortium = LocalConsortium.build(root, data)
    rng = np.random.default_rng(12)
    for name, (person, obs) in data.items():
        folder = root / "events" / name
        folder.mkdir(parents=True)
        relapsed = rng.random(len(person)) < 0.7
        days = (rng.random(len(person)) * obs["followup_days"].to_numpy()).astype(int)
        pd.DataFrame(
            {"person_id": person["person_id"][relapsed], "kind": "relapse", "day": days[relapsed]}
        ).to_csv(folder / "event.csv", index=False)
        consortium.nodes[name].ingest(folder)
    _manual_count(consortium, MANUAL_SITE)
    token = registry.add_user(consortium.coordinator.engine, "ada")
    app = create_app(Coordinator.open(consortium.coordinator.dir.root))
    with BackgroundServer(app) as server:
        yield {"consortium": consortium, "url": server.url, "token": token, "app": app}
    consortium.close()


@pytest.fixture
def page(browser: Browser, site: dict[str, Any]) -> Iterator[Page]:
    """A fresh browser context logged in through the login form; on teardown, no script
    error, no policy violation, and no request left this machine."""
    context = browser.new_context(viewport={"width": 1366, "height": 860}, accept_downloads=True)
    problems: list[str] = []
    requests: list[str] = []
    opened = context.new_page()
    context.on("request", lambda r: requests.append(r.url))
    opened.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    opened.on(
        "console",
        lambda m: (
            problems.append(f"console: {m.text}")
            if m.type in ("error", "warning") and "status of 401" not in m.text
            else None
        ),
    )
    opened.goto(site["url"] + "/")
    assert opened.url.startswith(site["url"] + "/login"), "pages need a login"
    opened.fill("#token", "fpy_not-a-token")
    opened.click("form[action='/login'] button")
    assert "not valid" in opened.inner_text("[role=alert]")
    opened.fill("#token", site["token"])
    opened.click("form[action='/login'] button")
    opened.wait_for_url(site["url"] + "/")
    yield opened
    context.close()
    assert problems == []
    foreign = [u for u in requests if not re.match(r"(http://127\.0\.0\.1:\d+/|data:|blob:)", u)]
    assert foreign == [], "every asset and call must stay on this machine"


def wait_finished(page: Page) -> dict[str, Any]:
    """Wait for the job page to show its result; the job as the API reports it."""
    page.wait_for_selector("#result", timeout=FINISHED_TIMEOUT_MS)
    job_id = page.url.rsplit("/", 1)[1]
    return dict(page.evaluate(f"fetch('/v1/analyses/{job_id}').then(r => r.json())"))


def rendered(page: Page, name: str) -> list[dict[str, Any]]:
    """The data the Vega view of plot ``name`` drew (after it rendered as SVG)."""
    holder = page.locator(f".vega[data-plot='{name}']")
    holder.locator("svg.marks").wait_for(timeout=20_000)
    page.wait_for_selector(f".vega[data-plot='{name}'][data-rendered='true']")
    return list(page.evaluate(f"window.fedpsyViews['{name}'].data('table')"))


def unlabelled(page: Page) -> list[str]:
    """Form controls on the page without a label (every one must have one)."""
    return list(
        page.evaluate("""() => [...document.querySelectorAll(
        "input:not([type=hidden]), select, textarea")]
        .filter(e => e.labels.length === 0 && !e.getAttribute("aria-label"))
        .map(e => e.id || e.name || e.outerHTML)""")
    )


def test_overview_shows_sites_and_their_state(page: Page, site: dict[str, Any]) -> None:
    page.keyboard.press("Tab")  # the first stop skips the navigation
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    rows = page.locator("#sites tbody tr")
    assert rows.count() == len(SIZES)
    for name in SIZES:
        row = page.locator(f"#sites tr[data-site='{name}']")
        assert "online" in row.inner_text()
        assert "compatible" in row.inner_text()
    shot(page, "dashboard-overview")


def test_catalog_search_filters_and_shows_availability(page: Page) -> None:
    page.click("nav >> text=Catalog")
    page.wait_for_url("**/catalog")  # loaded: the search script listens for typing
    page.locator("#q").press_sequentially("madrs")
    visible = page.locator("#catalog tbody tr:visible")
    codes = [visible.nth(i).get_attribute("data-code") for i in range(visible.count())]
    assert "madrs_total" in codes and all("madrs" in str(c) for c in codes)
    cells = page.locator("#catalog tr[data-code='madrs_total'] td[data-site]")
    assert [cells.nth(i).locator(".badge").inner_text() for i in range(cells.count())] == [
        "same"
    ] * len(SIZES)
    page.fill("#q", "")
    page.select_option("#type", "binary")
    page.click("form[role=search] button")
    types = page.locator("#catalog tbody tr td:nth-child(3)").all_inner_texts()
    assert types and set(types) == {"binary"}
    assert unlabelled(page) == []
    shot(page, "dashboard-catalog")


def test_summary_built_in_the_form_matches_pooled(page: Page, site: dict[str, Any]) -> None:
    page.click("nav >> text=New analysis")
    page.wait_for_url("**/analyses/new")  # loaded: the form's script listens for a choice
    page.select_option("#analysis", "ttest")
    page.wait_for_url("**/analyses/new?analysis=ttest")
    assert page.locator("#f-group").is_visible()
    page.select_option("#analysis", "summary")
    page.wait_for_url("**/analyses/new?analysis=summary")
    page.locator("#f-variables").press_sequentially("ag")
    options = page.locator("#f-variables-list option")
    assert "age" in [options.nth(i).get_attribute("value") for i in range(options.count())]
    page.fill("#f-variables", "age, madrs_")
    options = page.locator("#f-variables-list option")
    assert "age, madrs_total" in [
        options.nth(i).get_attribute("value") for i in range(options.count())
    ]
    page.fill("#f-variables", "age, madrs_total")
    page.click("#add-condition")
    page.keyboard.type("education_years")
    page.select_option("#cond-1-op", ">=")
    page.fill("#cond-1-value", "10")
    expect(page.locator("#check")).to_have_text("The request is valid.")
    assert json.loads(page.inner_text("#preview")) == {
        "analysis": "summary",
        "variables": ["age", "madrs_total"],
        "cohort": {"all": [{"var": "education_years", "op": ">=", "value": 10}]},
    }
    assert page.inner_text("#check") == "The request is valid."
    assert unlabelled(page) == []
    shot(page, "dashboard-builder")
    page.click("#submit")
    page.wait_for_url("**/jobs/*")
    job = wait_finished(page)
    assert job["status"] == "ok"
    pooled = site["consortium"].pooled
    pooled = pooled[pooled["education_years"] >= 10]
    drawn = {row["variable"]: row for row in rendered(page, "means")}
    for var in ("age", "madrs_total"):
        values = pooled[var].dropna()
        assert drawn[var]["estimate"] == pytest.approx(values.mean(), rel=1e-12)
        assert drawn[var]["high"] - drawn[var]["estimate"] == pytest.approx(
            values.std(ddof=1), rel=1e-10
        )
        assert not drawn[var]["clipped"]  # neither bar reaches the variable's range
    assert page.locator(".vega[data-plot='means'] svg.marks .mark-symbol path").count() == 2
    titles = page.locator(".vega[data-plot='means'] svg.marks .role-title-text")
    assert set(titles.all_text_contents()) >= {"age", "madrs_total"}  # a panel per variable
    with page.expect_download() as download:
        page.click("#table-variables a[download]")
    table = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert {r["variable"]: int(r["n"]) for r in table} == {
        v: int(pooled[v].notna().sum()) for v in ("age", "madrs_total")
    }
    shot(page, "dashboard-summary-result")


def test_glm_result_plots_coefficients_like_statsmodels(page: Page, site: dict[str, Any]) -> None:
    page.goto(site["url"] + "/analyses/new?analysis=glm")
    page.fill("#f-formula", "ketamine ~ age + sex")
    page.select_option("#f-family", "binomial")
    expect(page.locator("#check")).to_have_text("The request is valid.")
    page.click("#submit")
    page.wait_for_url("**/jobs/*")
    assert wait_finished(page)["status"] == "ok"
    fit = smf.glm(
        "ketamine ~ age + sex", site["consortium"].pooled, family=sm.families.Binomial()
    ).fit()
    ci = np.exp(fit.conf_int())
    drawn = {row["term"]: row for row in rendered(page, "coefficients")}
    assert set(drawn) == {"age", "sex[T.M]"}
    for term, row in drawn.items():  # odds ratios and their intervals
        assert row["estimate"] == pytest.approx(np.exp(fit.params[term]), rel=1e-6)
        assert row["low"] == pytest.approx(ci.loc[term, 0], rel=1e-6)
        assert row["high"] == pytest.approx(ci.loc[term, 1], rel=1e-6)
    svg = page.locator(".vega[data-plot='coefficients'] svg.marks")
    assert svg.locator(".mark-symbol path").count() == 2
    labels = svg.locator(".role-axis-label text").all_text_contents()
    assert "sex: M vs F (reference)" in labels  # the reference level is named
    assert page.inner_text("#plot-coefficients h3") == "Odds ratios with 95% confidence intervals"
    assert "odds ratio (log scale)" in svg.locator(".role-axis-title").all_text_contents()
    if os.environ.get("FEDPSY_UPDATE_DOCS") == "1":
        page.locator("#plot-coefficients").screenshot(path=str(ROOT / "docs" / "dashboard-glm.png"))
    described = page.locator(".vega[data-plot='coefficients'] [aria-label*='95% intervals']")
    assert described.count() >= 1  # the spec's description is the plot's accessible name
    page.locator(".vega[data-plot='coefficients'] details summary").click()
    with page.expect_download() as download:
        page.locator(".vega[data-plot='coefficients'] a", has_text="SVG").click()
    assert Path(download.value.path()).read_text().lstrip().startswith("<svg")
    with page.expect_download() as download:
        page.click("a[href$='/plots/coefficients.csv']")
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert [r["term"] for r in rows] == ["age", "sex[T.M]"]
    shot(page, "dashboard-glm-result")


@pytest.mark.skipif("kaplan_meier" not in RESULTS, reason="kaplan_meier is not available")
def test_kaplan_meier_curves_are_drawn_from_the_result(page: Page, site: dict[str, Any]) -> None:
    page.goto(site["url"] + "/analyses/new?analysis=kaplan_meier")
    page.fill("#f-time", "time_to_relapse")
    page.fill("#f-event", "relapse")
    # a grid coarse enough that every site has 0 or at least 5 events, exits and censored
    # rows between reported times (the sites hold 90 to 160 persons)
    page.fill("#f-grid", "300, 600")
    expect(page.locator("#check")).to_have_text("The request is valid.")
    page.click("#submit")
    page.wait_for_url("**/jobs/*")
    job = wait_finished(page)
    assert job["status"] == "ok", job["result"]
    drawn = rendered(page, "survival")
    for label, curve in job["result"]["result"]["groups"].items():
        points = [(r["time"], r["survival"]) for r in drawn if r["group"] == label]
        assert points == [(0.0, 1.0), *zip(curve["time"], curve["survival"], strict=True)]
    lines = page.locator(".vega[data-plot='survival'] svg.marks .mark-line path")
    assert lines.count() == len(job["result"]["result"]["groups"])
    for d in lines.evaluate_all("paths => paths.map(p => p.getAttribute('d'))"):
        corners = [(float(x), float(y)) for x, y in re.findall(r"(-?[\d.]+),(-?[\d.]+)", d)]
        assert corners[0][1] == 0.0  # from survival 1, the top of the [0, 1] axis
        # steps only: every segment is flat (the estimate holds) or a drop at a reported time
        assert all(a[0] == b[0] or a[1] == b[1] for a, b in pairwise(corners)), d
    shot(page, "dashboard-kaplan-meier-result")


SUBMIT = """(request) => fetch('/v1/analyses', {method: 'POST',
    headers: {'Content-Type': 'application/json'}, body: JSON.stringify(request)})
    .then(r => r.json())"""


def test_every_plot_builder_renders_in_vega(page: Page) -> None:
    """Every builder's spec compiles and draws marks in the bundled Vega (no warnings: the
    page fixture fails on any console warning)."""
    specs = {
        f"{name}/{p.name}": p.spec
        for name in sorted(SAMPLES)
        for p in plots_for(envelope(name)[1], envelope(name)[0])
    }
    for script in ("vega", "vega-lite", "vega-embed"):
        page.add_script_tag(url=f"/static/vendor/{script}.min.js")
    drawn = page.evaluate(
        """async (specs) => {
        const out = {};
        for (const [name, spec] of Object.entries(specs)) {
            const div = document.createElement("div");
            div.style.width = "800px";
            document.querySelector("main").appendChild(div);
            const result = await vegaEmbed(div, spec, {renderer: "svg", ast: true,
                                                       actions: false});
            out[name] = [result.view.data("table").length,
                         div.querySelectorAll("svg.marks .role-mark > *").length];
        }
        return out;
    }""",
        specs,
    )
    assert set(drawn) == set(specs)
    for name, (rows, marks) in drawn.items():
        assert rows == len(specs[name]["data"]["values"]) and marks > 0, name


def test_node_admin_approves_a_pending_request_and_it_leaves(
    page: Page, site: dict[str, Any]
) -> None:
    consortium = site["consortium"]
    page.goto(site["url"] + "/analyses/new?analysis=count")
    page.click("#submit")
    page.wait_for_url("**/jobs/*")
    job_page = page.url
    waiting = page.locator(f"#progress tr[data-site='{MANUAL_SITE}'] td")
    expect(waiting).to_have_text("waiting for approval", timeout=20_000)
    shot(page, "dashboard-job-waiting")

    admin = admin_page(page, consortium, "/ui/")
    assert admin.locator("#tables tr[data-table='person'] td").inner_text() == str(
        SIZES[MANUAL_SITE]
    )
    shot(admin, "node-data")
    admin.click("nav >> text=Policy")
    count_row = admin.locator("#analyses tr").filter(
        has=admin.locator("th", has_text=re.compile(r"^count$"))
    )
    assert count_row.locator("td").inner_text() == "manual"
    shot(admin, "node-policy")
    admin.click("nav >> text=Approval queue")
    task = admin.locator("article.task")
    assert task.count() == 1
    leaving = json.loads(task.locator("pre.leaving").inner_text())
    assert set(leaving) == {"rows", "result"} and leaving["rows"] == SIZES[MANUAL_SITE]
    review = task.locator("pre.review")  # masked answers show what they encode
    clear = json.loads(review.inner_text()) if review.count() else leaving["result"]
    assert clear == {"n": SIZES[MANUAL_SITE]}
    task_id = str(task.get_attribute("id")).removeprefix("task-")
    shot(admin, "node-queue")
    task.locator("button", has_text="Approve").click()
    assert "released" in admin.inner_text("#decision")
    assert admin.locator("#queue-empty").is_visible()
    admin.click("#decision a")
    assert admin.inner_text("#verify").startswith("Verified")
    released = admin.locator(f"#audit tr[data-kind='released'][data-task='{task_id}']")
    assert released.locator("td.analysis").inner_text() == "count"
    released.locator("summary").click()
    audited = json.loads(released.locator("pre").inner_text())
    assert (
        audited["digest"]
        == hashlib.sha256(json.dumps(leaving, sort_keys=True).encode()).hexdigest()
    )  # what was shown is what left
    # a secure-sum share is named by the digest of the masked vector that left, not by the
    # template of zeros the log keeps for its shape
    masked = audited["left"]["masked_sha256"]
    assert released.locator("summary").inner_text() == f"what left: masked, digest {masked[:16]}…"
    assert "template" not in audited["left"]
    shot(admin, "node-audit")

    page.bring_to_front()  # the job page shows the result by itself once the job is done
    job = wait_finished(page)
    assert page.url == job_page
    assert job["status"] == "ok"
    assert job["result"]["result"]["n"] == sum(SIZES.values())
    assert job["sites"][MANUAL_SITE].startswith("answered")
    shot(page, "dashboard-count-result")


def admin_page(page: Page, consortium: LocalConsortium, path: str) -> Page:
    """The manual site's admin page ``path``, through its login, which returns there."""
    admin = page.context.new_page()
    node_url = consortium.servers[MANUAL_SITE].url
    admin.goto(node_url + path)
    assert admin.url.startswith(node_url + "/ui/login?next=")
    assert unlabelled(admin) == []
    admin.fill("#token", consortium.nodes[MANUAL_SITE].dir.admin_token.read_text().strip())
    admin.click("main form button")
    admin.wait_for_load_state()
    assert admin.url == node_url + path  # a 303 to the page that was asked for
    return admin


def test_a_site_left_out_and_an_errored_job_say_why(page: Page, site: dict[str, Any]) -> None:
    """A site that rejects a request under ``drop_site`` is shown as left out with its code
    (not as running for ever), on the job page and the overview; an errored job shows its
    reason in the overview."""
    request = {"analysis": "count", "on_refusal": "drop_site"}
    job_id = page.evaluate(SUBMIT, request)["job_id"]
    page.goto(f"{site['url']}/jobs/{job_id}")
    waiting = page.locator(f"#progress tr[data-site='{MANUAL_SITE}'] td")
    expect(waiting).to_have_text("waiting for approval", timeout=20_000)
    admin = admin_page(page, site["consortium"], "/ui/queue")
    admin.locator("article.task button", has_text="Reject").click()
    assert "rejected" in admin.inner_text("#decision")
    admin.close()
    job = wait_finished(page)
    assert job["status"] == "ok" and job["result"]["dropped_sites"] == {
        MANUAL_SITE: "approval_rejected"
    }
    assert job["sites"][MANUAL_SITE] == "left out (approval_rejected)"
    state = page.locator(f"#progress tr[data-site='{MANUAL_SITE}'] td")
    assert state.inner_text() == "left out (approval_rejected)"
    assert f"{MANUAL_SITE} (approval_rejected)" in page.inner_text("#left-out")
    others = sum(n for s, n in SIZES.items() if s != MANUAL_SITE)
    assert job["result"]["result"]["n"] == others
    shot(page, "dashboard-job-left-out")

    failed = page.evaluate(SUBMIT, {"analysis": "summary", "variables": ["no_such_variable"]})
    page.goto(f"{site['url']}/jobs/{failed['job_id']}")
    error = wait_finished(page)
    assert error["status"] == "error"
    page.goto(site["url"] + "/")
    row = page.locator(f"table.jobs tr[data-job='{failed['job_id']}']")
    reason = row.locator(".reason").inner_text()
    assert reason.startswith(error["result"]["reason"]["code"] + ": ")
    assert "no_such_variable" in reason
    left_out = page.locator(f"table.jobs tr[data-job='{job_id}']").inner_text()
    assert f"{MANUAL_SITE}: left out (approval_rejected)" in left_out
    shot(page, "dashboard-overview-reasons")


def test_one_time_login_link_lands_on_the_overview(browser: Browser, site: dict[str, Any]) -> None:
    code = issue_login_code(site["app"], site["token"])
    context = browser.new_context(viewport={"width": 1366, "height": 860})
    opened = context.new_page()
    opened.goto(f"{site['url']}/login?token={code}")
    assert opened.url == site["url"] + "/"
    assert "Consortium overview" in opened.inner_text("h1")
    cookie = next(c for c in context.cookies() if c["name"] == "fedpsy_token")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert opened.evaluate("document.cookie") == ""
    shot(opened, "dashboard")
    if os.environ.get("FEDPSY_UPDATE_DOCS") == "1":
        (ROOT / "docs").mkdir(exist_ok=True)
        opened.screenshot(path=str(ROOT / "docs" / "dashboard.png"))
    again = context.new_page()
    again.goto(f"{site['url']}/login?token={code}")
    assert "already used" in again.inner_text("[role=alert]")
    context.close()
    fresh = httpx.get(site["url"] + f"/login?token={code}", follow_redirects=False)
    assert fresh.status_code == 401


def test_api_docs_render_offline(browser: Browser, site: dict[str, Any]) -> None:
    """``/docs`` (Swagger UI) and ``/redoc`` draw the API from assets the coordinator serves
    itself: no request leaves this machine, and every operation is listed."""
    context = browser.new_context()
    page = context.new_page()
    outside: list[str] = []
    local = (site["url"], f"blob:{site['url']}", "data:")  # a worker's blob is this page's
    page.on(
        "request",
        lambda r: None if r.url.startswith(local) else outside.append(r.url),
    )
    page.goto(site["url"] + "/docs")
    page.wait_for_selector(".opblock")
    paths = set(page.locator(".opblock-summary-path").all_inner_texts())
    assert {"/v1/analyses", "/v1/models", "/health"} <= {p.strip() for p in paths}
    shot(page, "api-docs")
    page.goto(site["url"] + "/redoc")
    expect(page.locator("h1").first).to_contain_text("fedpsy coordinator")
    assert outside == []
    context.close()


def test_data_quality_page_draws_completeness_and_flags(page: Page, site: dict[str, Any]) -> None:
    request = {"analysis": "data_quality", "variables": ["age", "madrs_total", "ketamine", "sex"]}
    job = page.evaluate(
        """(body) => fetch('/v1/analyses?wait=true', {method: 'POST',
        headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)})
        .then(r => r.json())""",
        request,
    )
    assert job["status"] == "ok", job
    page.click("nav >> text=Data quality")
    page.wait_for_url("**/quality")
    assert page.get_attribute("nav a[href='/quality']", "aria-current") == "page"
    pooled = site["consortium"].pooled
    drawn = rendered(page, "completeness-baseline")
    expected = {
        (code, s): pooled.loc[pooled["site"] == s, code].notna().mean()
        for code in request["variables"]
        for s in SIZES
    }
    assert {(r["variable"], r["site"]): r["completeness"] for r in drawn} == pytest.approx(expected)
    assert page.locator(
        ".vega[data-plot='completeness-baseline'] svg.marks .mark-rect.role-mark path"
    ).count() == len(expected)
    smd = {(r["variable"], r["site"]): r["smd"] for r in rendered(page, "smd")}
    amsterdam = pooled[pooled["site"] == "amsterdam"]["madrs_total"].dropna()
    others = pooled[pooled["site"] != "amsterdam"]["madrs_total"].dropna()
    sd = np.sqrt((amsterdam.var() + others.var()) / 2)
    assert smd[("madrs_total", "amsterdam")] == pytest.approx(
        (amsterdam.mean() - others.mean()) / sd, rel=1e-8
    )
    flags = job["result"]["flags"]
    assert page.locator("#flags tbody tr").count() == len(flags)
    effects = [f for f in flags if f["rule"] == "site_effect"]
    if effects:
        row = page.locator("#flags tbody tr[data-rule='site_effect']").first
        assert row.locator("a").get_attribute("href") == "/analyses/new?analysis=combat"
    with page.expect_download() as download:
        page.click("a[href$='/report.csv']")
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert {(r["variable"], r["site"]): int(r["n"]) for r in rows} == {
        (code, s): int(pooled.loc[pooled["site"] == s, code].notna().sum())
        for code in request["variables"]
        for s in SIZES
    }
    shot(page, "dashboard-data-quality")


def test_a_trained_model_page_draws_points_without_intervals(
    page: Page, site: dict[str, Any]
) -> None:
    """A stored sample result (training in this consortium is tested elsewhere); last in
    this file, so that the overview screenshots show only jobs that ran here."""
    request, env = envelope("train")
    engine = site["app"].state.coordinator.engine
    jobs.create_job(engine, "job-train-sample", "ada", request)
    jobs.finish_job(engine, "job-train-sample", env)
    page.goto(f"{site['url']}/jobs/job-train-sample")
    drawn = rendered(page, "coefficients")
    given = [c for c in env["result"]["coefficients"] if c["term"] != "Intercept"]
    assert [(r["term"], r["estimate"]) for r in drawn] == [
        (c["term"], c["estimate"]) for c in given
    ]
    assert page.inner_text("#plot-coefficients h3") == (
        "Coefficients (no CI: federated training does not estimate standard errors)"
    )
    svg = page.locator(".vega[data-plot='coefficients'] svg.marks")
    assert svg.locator(".mark-symbol path").count() == len(given)
    assert svg.locator(".mark-rule.role-mark line").count() == 1  # the line at 0 only
    losses = {(r["metric"], r["round"]): r["value"] for r in rendered(page, "history")}
    assert losses[("validation loss", 5)] == env["result"]["history"][4]["val_loss"]
    assert "auc_error_bound" not in page.inner_text("#result")
    shot(page, "dashboard-train-result")
