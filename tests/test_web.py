"""Dashboard and node admin pages without a browser: plot specs and tables built from
result envelopes (intervals checked against statsmodels and scipy), the builder's forms,
login cookies, one-time login codes, cross-origin refusals and the admin form token."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from scipy import stats

from coordinator.http.api import create_app
from coordinator.service import Coordinator
from coordinator.store import jobs, registry
from coordinator.web.app import issue_login_code
from coordinator.web.forms import COMMON, analysis_forms
from coordinator.web.plots import plots_for
from coordinator.web.tables import tables_for
from fedpsy.serving import BackgroundServer
from node.http.api import create_app as node_app
from node.service import NodeService
from node.site import NodeSite
from schemas.analyses import RESULTS, AnalysisBase
from tests.support.web_results import SAMPLES, envelope

PARTIAL = {"cox"}  # samples holding only the fields their plots read
WEB = Path(__file__).resolve().parents[1] / "coordinator" / "web"


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_sample_plots_and_tabulates(name: str) -> None:
    request, env = envelope(name)
    if name in RESULTS and name not in PARTIAL:
        RESULTS[name].model_validate(env["result"])  # the sample has the model's shape
    plots = plots_for(env, request)
    assert plots, f"no plot for {name}"
    assert len({p.name for p in plots}) == len(plots)
    for p in plots:
        assert p.rows and p.spec["data"] == {"name": "table", "values": p.rows}
        assert p.spec["description"] == p.description and p.spec["$schema"].endswith("v6.json")
    for table in tables_for(env, request):
        assert all(len(row) == len(table.columns) for row in table.rows)
        parsed = list(csv.reader(io.StringIO(table.to_csv())))
        assert parsed[0] == table.columns and len(parsed) == len(table.rows) + 1


def test_refused_or_unknown_results_get_no_plot() -> None:
    request, env = envelope("glm")
    assert plots_for({**env, "status": "refused"}, request) == []
    assert tables_for({**env, "status": "error"}, request) == []
    assert plots_for({**env, "analysis": "brand_new"}, request) == []
    broken = {**env, "result": {"coefficients": "not a list"}}
    assert plots_for(broken, request) == []  # an unexpected shape is no plot, not an error


@pytest.fixture(scope="module")
def logistic_fit() -> tuple[pd.DataFrame, Any]:
    rng = np.random.default_rng(4)
    df = pd.DataFrame({"age": rng.uniform(18, 80, 400), "sex": rng.choice(["F", "M"], 400)})
    eta = -2 + 0.04 * df["age"] - 0.5 * (df["sex"] == "M")
    df["y"] = (rng.random(400) < 1 / (1 + np.exp(-eta))).astype(int)
    return df, smf.glm("y ~ age + sex", df, family=sm.families.Binomial()).fit()


def _coefficients(fit: Any) -> list[dict[str, Any]]:
    return [
        {
            "term": t,
            "estimate": float(fit.params[t]),
            "std_error": float(fit.bse[t]),
            "statistic": float(fit.tvalues[t]),
            "p_value": float(fit.pvalues[t]),
        }
        for t in fit.params.index
    ]


def test_glm_odds_ratios_and_intervals_equal_statsmodels(
    logistic_fit: tuple[pd.DataFrame, Any],
) -> None:
    _, fit = logistic_fit
    result: dict[str, Any] = {"coefficients": _coefficients(fit), "family": "binomial"}
    env = {"status": "ok", "analysis": "glm", "result": result}
    (coef,) = plots_for(env, {"formula": "y ~ age + sex"})
    ci = np.exp(fit.conf_int())
    assert sorted(r["term"] for r in coef.rows) == ["age", "sex[T.M]"]  # intercept: table only
    for row in coef.rows:
        assert row["estimate"] == pytest.approx(np.exp(fit.params[row["term"]]), rel=1e-12)
        assert row["low"] == pytest.approx(ci.loc[row["term"], 0], rel=1e-9)
        assert row["high"] == pytest.approx(ci.loc[row["term"], 1], rel=1e-9)
    labels = {r["term"]: r["label"] for r in coef.rows}
    assert labels["sex[T.M]"] == "sex: M vs F (reference)"  # the dictionary's first level
    rule, point, reference = coef.spec["layer"]
    assert point["encoding"]["x"]["scale"] == {"type": "log"}
    assert rule["encoding"]["x"]["scale"] == {"type": "log"}
    assert reference["data"]["values"] == [{"reference": 1.0}]
    assert coef.title == "Odds ratios with 95% confidence intervals"
    assert point["encoding"]["x"]["title"] == "odds ratio (log scale)"
    # a gaussian glm keeps its coefficients on their own scale, around 0
    gaussian = {**env, "result": {**result, "family": "gaussian"}}
    (coef,) = plots_for(gaussian, {})
    assert {r["term"]: r["estimate"] for r in coef.rows} == dict(fit.params.drop("Intercept"))
    assert coef.spec["layer"][2]["data"]["values"] == [{"reference": 0.0}]
    assert coef.spec["layer"][1]["encoding"]["x"]["scale"] == {"zero": False}


def test_cox_coefficients_are_drawn_as_hazard_ratios() -> None:
    request, env = envelope("cox")
    (coef,) = plots_for(env, request)
    for row, given in zip(coef.rows, env["result"]["coefficients"], strict=True):
        assert row["coefficient"] == given["estimate"]
        assert row["estimate"] == pytest.approx(np.exp(given["estimate"]), rel=1e-15)
        half = stats.norm.ppf(0.975) * given["std_error"]
        assert row["low"] == pytest.approx(np.exp(given["estimate"] - half), rel=1e-12)
    assert coef.title.startswith("Hazard ratios")


def test_summary_panels_clip_the_sd_bar_to_the_variable_range() -> None:
    request, env = envelope("summary")
    (means,) = plots_for(env, request)
    rows = {r["variable"]: r for r in means.rows}
    # ketamine is binary: mean 0.39 − SD 0.488 would go below 0
    assert (rows["ketamine"]["low"], rows["ketamine"]["high"]) == (0.0, 0.39 + 0.488)
    assert rows["ketamine"]["clipped"] and not rows["age"]["clipped"]
    assert (rows["age"]["low"], rows["age"]["high"]) == (48.2 - 16.9, 48.2 + 16.9)
    assert "clipped to the variable's possible range for ketamine." in means.description
    assert means.spec["facet"]["field"] == "variable"  # one panel per variable
    assert means.spec["resolve"] == {"scale": {"y": "independent"}}
    assert "width" not in means.spec and means.spec["spec"]["width"] > 0


def test_training_tables_name_fields_in_words_and_explain_the_rows() -> None:
    request, env = envelope("train")
    tables = {t.name: t for t in tables_for(env, request)}
    assert list(tables) == ["model", "metrics", "sites", "history", "coefficients"]
    text = repr([t.rows for t in tables.values()] + [t.columns for t in tables.values()])
    assert "auc_error_bound" not in text and "hidden" not in text  # a logistic model
    assert tables["model"].rows[0] == ["model", "logistic regression"]
    assert tables["metrics"].rows[0][:3] == ["all sites (pooled)", 226, "0.540 ± 0.260"]
    assert "between 0.280 and 0.800" in tables["metrics"].note
    assert "leave each site in the clear" in tables["metrics"].note
    assert tables["sites"].rows == [["amsterdam", 70, 96], ["berlin", 45, 130]]
    assert tables["sites"].note.startswith(
        "The rows used per site are the rows each site fitted the model on"
    )
    # 566 = 115 training + 226 test + 225 validation rows
    assert "n = 566: 115 training rows, 226 test rows" in tables["sites"].note
    assert "225 validation rows" in tables["sites"].note
    hidden_rows = {**env, "sites": {"amsterdam": {"n": 0}, "berlin": {"n": 0}}}  # as under DP
    (split,) = [t for t in tables_for(hidden_rows, request) if t.name == "sites"]
    assert split.note == "The rows used per site are each site's training rows; none were released."
    mlp = {**env["result"], "model_kind": "mlp", "coefficients": []}
    mlp["model"] = {**mlp["model"], "spec": {"kind": "mlp", "hidden": 16}}
    withheld = {**mlp["metrics"], "auc": None, "auc_lower": 0.0, "auc_upper": 1.0}
    mlp["metrics"] = withheld
    tables = {t.name: t for t in tables_for({**env, "result": mlp}, request)}
    assert tables["model"].rows[0] == ["model", "MLP, one hidden layer of 16 units"]
    assert tables["metrics"].rows[0][2] == "withheld"
    assert "Pooled AUC withheld: no split of the scores into two bins" in tables["metrics"].note
    assert "coefficients" not in tables
    (history, coefficients) = plots_for(env, request)
    assert coefficients.title == (
        "Coefficients (no CI: federated training does not estimate standard errors)"
    )
    assert {r["metric"] for r in history.rows} == {"training loss", "validation loss"}


def test_ols_intervals_use_t_like_statsmodels() -> None:
    rng = np.random.default_rng(9)
    df = pd.DataFrame({"x": rng.normal(size=30), "z": rng.normal(size=30)})
    df["y"] = 1 + 0.5 * df["x"] + rng.normal(size=30)
    fit = smf.ols("y ~ x + z", df).fit()
    env = {
        "status": "ok",
        "analysis": "ols",
        "result": {"coefficients": _coefficients(fit), "df_residual": int(fit.df_resid)},
    }
    (coef,) = plots_for(env, {})
    ci = fit.conf_int()
    for row in coef.rows:
        assert (row["low"], row["high"]) == pytest.approx(tuple(ci.loc[row["term"]]), rel=1e-9)


def test_ttest_group_intervals_equal_scipy() -> None:
    rng = np.random.default_rng(2)
    groups = {"F": rng.normal(30, 6, 41), "M": rng.normal(32, 7, 57)}
    result = {
        "variable": "madrs_total",
        "group": "sex",
        "groups": {
            k: {"n": len(v), "mean": float(v.mean()), "sd": float(v.std(ddof=1))}
            for k, v in groups.items()
        },
    }
    (plot,) = plots_for({"status": "ok", "analysis": "ttest", "result": result}, {})
    for row in plot.rows:
        values = groups[row["group"]]
        low, high = stats.t.interval(
            0.95, len(values) - 1, loc=values.mean(), scale=stats.sem(values)
        )
        assert (row["low"], row["high"]) == pytest.approx((low, high), rel=1e-12)


def test_kaplan_meier_curves_start_at_one_and_step_only_at_estimated_points() -> None:
    request, env = envelope("kaplan_meier")
    (km,) = plots_for(env, request)
    female = [r for r in km.rows if r["group"] == "F"]
    assert [(r["time"], r["survival"]) for r in female] == [
        (0.0, 1.0),
        (100.0, 0.85),
        (200.0, 0.66),
        (300.0, 0.5),
    ]
    assert female[1]["lower"] == pytest.approx(0.85 - 1.959963984540054 * 0.03)
    assert "lower" not in female[3]  # no standard error there, no band
    # a step at each reported time and nowhere else (step-after), bands likewise
    assert [layer["mark"]["interpolate"] for layer in km.spec["layer"]] == [
        "step-after",
        "step-after",
    ]
    # a curve reported only at day 730 (every earlier time merged away) is (0, 1) and that
    # point, with one step there; the description says times were left out
    only = {"time": [730.0], "survival": [0.75], "std_error": [0.02], "at_risk": [400]}
    merged = [
        {"time": t, "code": "cell_too_small", "sites": ["c"], "group": None} for t in (90, 365)
    ]
    result = {**env["result"], "groups": {"all": {**only, "events": [95]}}, "merged_points": merged}
    (km,) = plots_for({**env, "result": result}, request)
    assert [(r["time"], r["survival"]) for r in km.rows] == [(0.0, 1.0), (730.0, 0.75)]
    assert "2 requested times were left out" in km.description
    (table,) = [
        t for t in tables_for({**env, "result": result}, request) if t.name == "merged_points"
    ]
    assert table.rows == [[90, "cell_too_small", "c", None], [365, "cell_too_small", "c", None]]


def test_forest_quantile_box_and_cluster_plots_hold_the_result_values() -> None:
    request, env = envelope("meta")
    (forest,) = plots_for(env, request)
    assert [r["kind"] for r in forest.rows] == ["site"] * 3 + ["pooled"] * 2
    assert forest.rows[3]["estimate"] == env["result"]["random"]["estimate"]
    request, env = envelope("quantiles")
    box = plots_for(env, request)[0].rows[0]
    assert (box["whisker_low"], box["q1"], box["median"], box["q3"], box["whisker_high"]) == (
        21.0,
        33.5,
        48.0,
        63.2,
        76.0,
    )
    request, env = envelope("kmeans")
    profiles, sizes = plots_for(env, request)
    assert {r["cluster"] for r in profiles.rows} == {"cluster 1", "cluster 2"}
    assert "1 cluster(s) too small" in profiles.description
    assert [r["size"] for r in sizes.rows] == [60, 75]
    request, env = envelope("combat")
    location = plots_for(env, request)[0]
    before = {
        (r["site"], r["variable"]): r["location"] for r in location.rows if r["stage"] == "before"
    }
    assert before[("berlin", "glx_dacc")] == 0.15
    assert {r["location"] for r in location.rows if r["stage"] == "after"} == {0.0}


def test_result_tables_label_matrices_and_keyed_members() -> None:
    request, env = envelope("crosstab")
    counts = next(t for t in tables_for(env, request) if t.name == "counts")
    assert counts.columns == ["", "none", "hf_rtms", "itbs"]
    assert counts.rows[1] == ["M", 30, 25, 30]
    request, env = envelope("combat")
    batches = next(t for t in tables_for(env, request) if t.name == "batches")
    assert batches.columns == ["batch", "index", "n", "gamma", "delta"]
    assert ["berlin", "glx_dacc", 45, 0.15, 1.1] in batches.rows
    request, env = envelope("histogram")
    bins = next(t for t in tables_for(env, request) if t.name == "bins")
    assert bins.rows == [[18.0, 38.0, 50], [38.0, 58.0, 46], [58.0, 80.0, 49]]


def test_every_analysis_has_a_builder_form() -> None:
    forms = analysis_forms()
    assert set(forms) == set(RESULTS)
    kinds = {name: {f.name: f.kind for f in form.fields} for name, form in forms.items()}
    assert kinds["summary"]["variables"] == "variables"
    assert (kinds["glm"]["formula"], kinds["glm"]["family"]) == ("formula", "choice")
    assert all("cohort" not in k and "visit" not in k for k in kinds.values())
    shared = set(AnalysisBase.model_fields) - set(COMMON)
    assert all({f.name for f in form.common} == shared for form in forms.values())
    assert kinds["histogram"]["edges"] == "numbers"
    assert kinds["ttest"]["group"] == "variable"
    family = next(f for f in forms["glm"].fields if f.name == "family")
    assert family.choices == ("binomial", "poisson", "gaussian") and family.required


def test_templates_and_scripts_load_nothing_from_elsewhere() -> None:
    files = [*WEB.glob("templates/*.html"), *WEB.glob("static/*.js"), *WEB.glob("static/*.css")]
    node_web = WEB.parents[1] / "node" / "web"
    files += [*node_web.glob("templates/*.html"), *node_web.glob("static/*.css")]
    assert files
    for path in files:
        assert not re.search(r"(src|href)=\"(https?:)?//", path.read_text()), path


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[tuple[httpx.Client, str, Any]]:
    coordinator = Coordinator.create(tmp_path / "coordinator")
    token = registry.add_user(coordinator.engine, "ada")
    app = create_app(coordinator)
    with BackgroundServer(app) as server, httpx.Client(base_url=server.url) as client:
        yield client, token, app


def test_login_sets_an_httponly_cookie_the_api_accepts(
    dashboard: tuple[httpx.Client, str, Any],
) -> None:
    client, token, _ = dashboard
    page = client.get("/catalog", follow_redirects=False)
    assert (page.status_code, page.headers["location"]) == (303, "/login?next=/catalog")
    wrong = client.post("/login", data={"token": "fpy_wrong", "next": "/catalog"})
    assert wrong.status_code == 401 and "not valid" in wrong.text
    ok = client.post("/login", data={"token": token, "next": "/catalog"}, follow_redirects=False)
    assert (ok.status_code, ok.headers["location"]) == (303, "/catalog")
    cookie = ok.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and token in cookie
    assert client.get("/v1/nodes").status_code == 200  # the cookie alone authenticates
    catalog = client.get("/catalog")
    assert catalog.status_code == 200 and "madrs_total" in catalog.text
    assert "default-src 'self'" in catalog.headers["content-security-policy"]
    assert client.get("/static/vendor/vega-embed.min.js").status_code == 200
    client.post("/logout", headers={"Origin": str(client.base_url).rstrip("/")})
    assert client.get("/v1/nodes").status_code == 401


def test_cookie_requests_from_another_origin_are_refused(
    dashboard: tuple[httpx.Client, str, Any],
) -> None:
    client, token, _ = dashboard
    client.post("/login", data={"token": token})
    foreign = {"Origin": "http://evil.example"}
    refused = client.post("/v1/analyses", json={"analysis": "count"}, headers=foreign)
    assert refused.status_code == 401 and refused.json()["code"] == "unauthorized"
    bearer = client.post(
        "/v1/analyses?wait=false",
        json={"analysis": "count"},
        headers={**foreign, "Authorization": f"Bearer {token}"},
    )
    assert bearer.status_code == 202  # a bearer token is not a cookie: no origin rule
    login = client.post("/login", data={"token": token}, headers=foreign)
    assert login.status_code == 403


def test_one_time_login_codes_work_once_and_only_redirect_locally(
    dashboard: tuple[httpx.Client, str, Any],
) -> None:
    client, token, app = dashboard
    code = issue_login_code(app, token)
    first = client.get(f"/login?token={code}&next=//evil.example/x", follow_redirects=False)
    assert (first.status_code, first.headers["location"]) == (303, "/")
    assert client.get("/").status_code == 200
    again = client.get(f"/login?token={code}", follow_redirects=False)
    assert again.status_code == 401 and "already used" in again.text


def test_builder_validates_requests(dashboard: tuple[httpx.Client, str, Any]) -> None:
    client, token, _ = dashboard
    client.post("/login", data={"token": token})
    page = client.get("/analyses/new?analysis=glm")
    assert page.status_code == 200
    assert 'id="f-formula"' in page.text and '<label for="f-formula">' in page.text
    good = client.post(
        "/analyses/validate", json={"analysis": "glm", "formula": "trs ~ age", "family": "binomial"}
    ).json()
    assert good == {"ok": True, "variables": ["age", "trs"]}
    bad = client.post("/analyses/validate", json={"analysis": "glm", "formula": "trs ~ age"})
    assert bad.json()["ok"] is False and "family" in bad.json()["detail"]


@pytest.fixture
def node_client(tmp_path: Path) -> Iterator[tuple[httpx.Client, str]]:
    site = NodeSite.create(tmp_path / "node", "oslo", None)
    token = site.dir.admin_token.read_text().strip()
    app = node_app(NodeService(site), token)
    with BackgroundServer(app) as server, httpx.Client(base_url=server.url) as client:
        yield client, token
    site.close()


def test_node_admin_pages_need_the_token_and_the_form_token(
    node_client: tuple[httpx.Client, str],
) -> None:
    client, token = node_client
    first = client.get("/ui/queue", follow_redirects=False)
    assert (first.status_code, first.headers["location"]) == (303, "/ui/login?next=%2Fui%2Fqueue")
    assert client.post("/ui/login", data={"token": "nope"}).status_code == 401
    logged = client.post(
        "/ui/login", data={"token": token, "next": "/ui/queue"}, follow_redirects=False
    )
    assert (
        "HttpOnly" in logged.headers["set-cookie"]
        and "SameSite=strict" in logged.headers["set-cookie"]
    )
    assert (logged.status_code, logged.headers["location"]) == (303, "/ui/queue")
    for elsewhere in ("//evil.example/ui/", "https://evil.example/ui/x", "/ui/login", "/docs"):
        sent = client.post(
            "/ui/login", data={"token": token, "next": elsewhere}, follow_redirects=False
        )
        assert sent.headers["location"] == "/ui/", elsewhere  # only this node's admin pages
    queue = client.get("/ui/queue")
    assert "No request is waiting" in queue.text
    assert "script-src" not in queue.headers["content-security-policy"]  # no scripts at all
    forged = client.post("/ui/queue/t1/approve", data={"form_token": "guess"})
    assert forged.status_code == 403
    token_field = re.search(r'name="form_token" value="([0-9a-f]+)"', client.get("/ui/queue").text)
    assert token_field is None  # no pending task, no form
    for page in ("/ui/", "/ui/policy", "/ui/audit"):
        assert client.get(page).status_code == 200
    assert "Verified" in client.get("/ui/audit").text


def test_a_training_job_page_reads_in_words_and_says_why(
    dashboard: tuple[httpx.Client, str, Any],
) -> None:
    """The job page of a trained model: no internal key, the spec fields of its kind only,
    the reason a pooled AUC is withheld, what the rows per site are and what left in the
    clear."""
    client, token, app = dashboard
    request, env = envelope("train")
    metrics = {**env["result"]["metrics"], "auc": None, "auc_lower": 0.0, "auc_upper": 1.0}
    env = {**env, "result": {**env["result"], "metrics": metrics}}
    engine = app.state.coordinator.engine
    jobs.create_job(engine, "job-train", "ada", request)
    jobs.finish_job(engine, "job-train", env)
    client.post("/login", data={"token": token, "next": "/"})
    page = client.get("/jobs/job-train").text
    for raw in ("auc_error_bound", "model_spec", "metrics_", "hidden", "local_only"):
        assert raw not in page, raw
    assert "Pooled AUC withheld: no split of the scores into two bins" in page
    assert "they do not add up to n = 566: 115 training rows, 226 test rows" in page
    assert "these numbers leave each site in the clear" in page
    assert "Coefficients (no CI: federated training does not estimate standard errors)" in page
    table = client.get("/jobs/job-train/tables/metrics.csv").text.splitlines()
    assert table[0] == ",test rows,AUC,accuracy,Brier score,log loss,local-only AUC"
    assert table[1].startswith("all sites (pooled),226,withheld,")
