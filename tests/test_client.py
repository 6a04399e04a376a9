"""The Python client against a live consortium: every analysis's method over real HTTP.

One consortium for the module: the demo's synthetic data (``fedpsy synth``, 3 sites × 400
persons, seed 7) in three nodes served on loopback ports, a coordinator served the same
way, and a researcher's :class:`Consortium`. Each method's tables are checked against the
envelope's numbers and, where a pooled reference is cheap, against pandas, scipy,
statsmodels or scikit-learn on the rows the nodes hold (1e-8 relative for exact methods).
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from scipy import stats
from sklearn.cluster import KMeans
from sklearn.mixture import GaussianMixture
from statsmodels.duration.hazard_regression import PHReg
from statsmodels.duration.survfunc import survdiff

from coordinator.http.api import create_app as coordinator_app
from coordinator.http.client import (
    AnalysisFailed,
    AnalysisRefused,
    Consortium,
    CoordinatorError,
    Result,
)
from coordinator.http.client.asking import REQUEST_FIELDS
from coordinator.http.client.consortium import TABLES
from coordinator.http.client.result import finish
from coordinator.http.client.tables import scalars
from coordinator.service import Coordinator
from coordinator.store import registry
from fedpsy.serving import BackgroundServer
from fedpsy.synth import generate
from node.privacy.approvals import approve_app
from schemas.analyses import ANALYSIS_NAMES, parse_request
from schemas.envelope import Envelope
from schemas.errors import ErrorCode, FedpsyError
from schemas.training.bundle import app_hash
from tests.support.consortium import LocalConsortium
from tests.test_models_lmm import reference as lmm_reference
from tests.test_survival import km_reference

pytestmark = pytest.mark.xdist_group("client")
RTOL = 1e-8
Z = stats.norm.ppf(0.975)
TIME, EVENT = "time_to_rehospitalization", "rehospitalization"
MRS = ["dacc_glu", "dacc_naa"]
CURVE_COLUMNS = ["group", "time", "survival", "std_error", "ci_low", "ci_high", "at_risk", "events"]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalConsortium]:
    root = tmp_path_factory.mktemp("client")
    built = LocalConsortium.from_folders(root, generate(3, 400, 7, root / "data"))
    for node in built.nodes.values():
        approve_app(node.dir.root, app_hash())
    yield built
    built.close()


@pytest.fixture(scope="module")
def url(live: LocalConsortium) -> Iterator[str]:
    with BackgroundServer(coordinator_app(Coordinator.open(live.coordinator.dir.root))) as server:
        yield server.url


@pytest.fixture(scope="module")
def client(live: LocalConsortium, url: str) -> Iterator[Consortium]:
    token = registry.add_user(live.coordinator.engine, "ada")
    with Consortium(url, token, poll=0.05) as c:
        yield c


def close(got: object, want: object, rtol: float = RTOL) -> None:
    np.testing.assert_allclose(np.asarray(got, float), np.asarray(want, float), rtol=rtol)


def assert_sites(res: Result, live: LocalConsortium, variables: list[str]) -> None:
    """``sites`` holds each site's rows used, as the envelope says and the nodes hold."""
    assert res.sites["n"].to_dict() == {s: r.n for s, r in res.envelope.sites.items()}
    for site, n in res.sites["n"].items():
        assert n == len(live.rows(variables, [str(site)]))
    assert res.n == res.sites["n"].sum()


def test_every_analysis_has_a_method_whose_docstring_shows_a_valid_request() -> None:
    for name in ANALYSIS_NAMES:
        method = getattr(Consortium, name)
        doc = inspect.getdoc(method) or ""
        found = re.search(r"Sends::\n\n(.+?)(\n\n|$)", doc, re.S)
        assert found, f"{name}: no request in the docstring"
        sent = json.loads(found.group(1))
        assert sent["analysis"] == name
        parse_request(sent)
        named = set(inspect.signature(method).parameters) - {"self", "options"}
        assert named <= REQUEST_FIELDS[name], f"{name}: {named - REQUEST_FIELDS[name]}"


def test_count_summary_and_correlation(client: Consortium, live: LocalConsortium) -> None:
    count = client.count()
    assert count.table["n"].tolist() == [count.n] == [len(live.rows(["age"]))]
    assert count.envelope.status == "ok" and count.envelope["result"]["n"] == count.n
    assert_sites(count, live, ["age"])

    variables = ["age", "panss_total", "dacc_glx"]
    summary = client.summary(variables)
    assert summary.table.index.name == "variable" and list(summary.table.index) == variables
    for var in variables:
        got, x = summary.table.loc[var], live.rows([var])[var]
        assert summary.result["variables"][var]["mean"] == got["mean"]
        assert got["n"] == len(x) and got["missing"] == 1200 - len(x)
        close(got[["mean", "sd", "var"]], [x.mean(), x.std(ddof=1), x.var(ddof=1)])
        close(
            got[["skewness", "kurtosis"]],
            [stats.skew(x, bias=False), stats.kurtosis(x, bias=False)],
        )
        low, high = stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
        close(got[["se", "ci_low", "ci_high"]], [stats.sem(x), low, high])

    corr = client.correlation(variables)
    rows = live.rows(variables)
    assert corr.table.index.name == corr.table.columns.name == "variable"
    close(corr.table.loc[variables, variables], rows[variables].corr())
    assert corr.n == len(rows) and corr.missing == 1200 - len(rows)
    assert_sites(corr, live, variables)


def test_histogram_and_quantiles(client: Consortium, live: LocalConsortium) -> None:
    hist = client.histogram("age", [0, 40, 100])
    age = live.rows(["age"])["age"]
    assert hist.table[["low", "high"]].to_numpy().tolist() == [[0, 40], [40, 100]]
    assert hist.table["count"].tolist() == [int((age < 40).sum()), int((age >= 40).sum())]
    assert hist.below == hist.above == 0 and not hist.merged

    quant = client.quantiles("cpz_eq_current", [0.25, 0.5, 0.75], bins=20)
    x = live.rows(["cpz_eq_current"])["cpz_eq_current"]
    assert quant.table.index.name == "probability"
    assert quant.table["value"].tolist() == quant.result["values"]
    exact = np.quantile(x, [0.25, 0.5, 0.75])
    assert (quant.table["lower"] <= exact).all() and (exact <= quant.table["upper"]).all()
    close(quant.table["upper"] - quant.table["lower"], [2 * quant.error_bound] * 3)


def test_crosstab_drops_a_refusing_site_and_names_its_axes(
    client: Consortium, live: LocalConsortium
) -> None:
    with pytest.raises(AnalysisRefused, match="copenhagen") as refused:
        client.crosstab("sex", "primary_diagnosis")
    exc = refused.value
    assert isinstance(exc, FedpsyError) and exc.code == ErrorCode.REFUSED
    assert str(exc).startswith("[refused]") and exc.envelope.status == "refused"
    assert exc.extra["sites"] == {"copenhagen": ErrorCode.CELL_TOO_SMALL}

    tab = client.crosstab("sex", "primary_diagnosis", on_refusal="drop_site")
    assert tab.dropped_sites == {"copenhagen": ErrorCode.CELL_TOO_SMALL}
    assert tab.sites.loc["copenhagen", "dropped"] == ErrorCode.CELL_TOO_SMALL
    assert pd.isna(tab.sites.loc["copenhagen", "n"])
    assert (tab.table.index.name, tab.table.columns.name) == ("sex", "primary_diagnosis")
    rows = live.rows(["sex", "primary_diagnosis"], ["amsterdam", "berlin"]).astype(str)
    expected = pd.crosstab(rows["sex"], rows["primary_diagnosis"])
    assert tab.table.to_numpy().tolist() == tab.result["counts"]
    pd.testing.assert_frame_equal(tab.table, expected, check_index_type=False, check_dtype=False)
    chi2 = stats.chi2_contingency(expected, correction=False)
    close([tab.chi2["statistic"], tab.chi2["p_value"]], [chi2.statistic, chi2.pvalue])


def test_ttest_differences_with_scipy_intervals(client: Consortium, live: LocalConsortium) -> None:
    res = client.ttest("dacc_glx", "sex")
    rows = live.rows(["dacc_glx", "sex"])
    first, second = (rows.loc[rows["sex"] == lv, "dacc_glx"] for lv in res.groups.index)
    assert res.groups.index.name == "sex" and res.groups["n"].tolist() == [len(first), len(second)]
    for kind, equal_var in (("welch", False), ("pooled", True)):
        ref = stats.ttest_ind(first, second, equal_var=equal_var)
        ci = ref.confidence_interval(0.95)
        got = res.table.loc[kind]
        close(got["difference"], first.mean() - second.mean())
        close(got[["statistic", "df", "p_value"]], [ref.statistic, ref.df, ref.pvalue])
        close(got[["ci_low", "ci_high"]], [ci.low, ci.high])
        close(got["difference"] / got["std_error"], res.result[kind]["statistic"])


def test_ols_and_binomial_glm_equal_statsmodels(client: Consortium, live: LocalConsortium) -> None:
    ols = client.ols("dacc_glx ~ age + sex")
    ref = smf.ols("dacc_glx ~ age + sex", live.rows(["dacc_glx", "age", "sex"])).fit()
    terms = list(ols.table.index)
    assert sorted(terms) == sorted(ref.params.index)
    close(ols.table["estimate"], ref.params[terms])
    close(ols.table["std_error"], ref.bse[terms])
    close(ols.table[["ci_low", "ci_high"]], ref.conf_int().loc[terms])
    assert [c["estimate"] for c in ols.coefficients] == ols.table["estimate"].tolist()
    assert ols.r_squared == pytest.approx(ref.rsquared, rel=RTOL)
    assert_sites(ols, live, ["dacc_glx", "age", "sex"])

    glm = client.glm("trs ~ age + sex", family="binomial")
    data = live.rows(["trs", "age", "sex"])
    ref = smf.glm("trs ~ age + sex", data, family=sm.families.Binomial()).fit(tol=1e-14)
    terms = list(glm.table.index)
    close(glm.table["estimate"], ref.params[terms])
    close(glm.table[["ci_low", "ci_high"]], ref.conf_int().loc[terms])
    close(glm.table["odds_ratio"], np.exp(ref.params[terms]))
    close(glm.table[["odds_ratio_ci_low", "odds_ratio_ci_high"]], np.exp(ref.conf_int().loc[terms]))
    assert glm.missing == 1200 - len(data) and glm.deviance == pytest.approx(ref.deviance, rel=RTOL)

    counts = client.glm("education_years ~ trs + sex", family="poisson")
    data = live.rows(["education_years", "trs", "sex"])
    ref = smf.glm("education_years ~ trs + sex", data, family=sm.families.Poisson()).fit(tol=1e-14)
    terms = list(counts.table.index)
    assert "odds_ratio" not in counts.table
    close(counts.table["rate_ratio"], np.exp(ref.params[terms]))
    close(
        counts.table[["rate_ratio_ci_low", "rate_ratio_ci_high"]], np.exp(ref.conf_int().loc[terms])
    )


def test_lmm_and_meta(client: Consortium, live: LocalConsortium) -> None:
    lmm = client.lmm("dacc_glx ~ age + sex")
    fixed = pd.DataFrame(lmm.coefficients).set_index("term")
    close(lmm.table["ci_low"], fixed["estimate"] - Z * fixed["std_error"])
    close(lmm.table["ci_high"], fixed["estimate"] + Z * fixed["std_error"])
    assert lmm.variance_components["variance"].to_dict() == lmm.result["variance_components"]
    ref = lmm_reference("dacc_glx ~ age + sex", live.rows(["dacc_glx", "age", "sex"]))
    close(lmm.table["estimate"], ref.fe_params[list(lmm.table.index)])
    close(lmm.variance_components["variance"], [ref.cov_re.iloc[0, 0], ref.scale])

    meta = client.meta("dacc_glx ~ age + sex", term="age", method="dl")
    sites = sorted(live.services)
    assert list(meta.table.index) == [*sites, "fixed", "random"]
    assert meta.table["kind"].tolist() == ["site"] * 3 + ["pooled"] * 2
    fits = [
        smf.ols("dacc_glx ~ age + sex", live.rows(["dacc_glx", "age", "sex"], [s])).fit()
        for s in sites
    ]
    per_site = meta.table.loc[sites]
    close(per_site["estimate"], [f.params["age"] for f in fits])
    close(per_site["std_error"], [f.bse["age"] for f in fits])
    w = np.array([1 / f.bse["age"] ** 2 for f in fits])
    pooled = (w * [f.params["age"] for f in fits]).sum() / w.sum()
    close(meta.table.loc["fixed", ["estimate", "std_error"]], [pooled, w.sum() ** -0.5])
    assert per_site["n"].sum() == meta.n == meta.table.loc["random", "n"]


def test_kaplan_meier_is_a_tidy_frame_from_zero(client: Consortium, live: LocalConsortium) -> None:
    grid = [30, 60, 90, 180, 270, 365, 545, 730]
    km = client.kaplan_meier(TIME, EVENT, grid, group="sex")
    table = km.table
    assert list(table.columns) == CURVE_COLUMNS
    rows = live.rows([TIME, EVENT, "sex"])
    for label, curve in table.groupby("group"):
        first = curve.iloc[0]
        assert (first["time"], first["survival"]) == (0.0, 1.0)
        estimated = curve.iloc[1:]
        sent = km.result["groups"][label]
        assert estimated["time"].tolist() == sent["time"]
        assert estimated["at_risk"].tolist() == sent["at_risk"]
        group = rows[rows["sex"] == label]
        survival, se = km_reference(group[TIME], group[EVENT], sent["time"])
        close(estimated["survival"], survival)
        close(estimated["std_error"], se)
        close(estimated["ci_low"], np.clip(survival - Z * se, 0, 1))
    merged = km.merged_points
    assert sorted([*km.result["groups"]["F"]["time"], *merged["time"]]) == grid
    assert merged["code"].eq(ErrorCode.CELL_TOO_SMALL).all()


def test_logrank_and_cox_equal_statsmodels(client: Consortium, live: LocalConsortium) -> None:
    rows = live.rows([TIME, EVENT, "sex", "age"])
    logrank = client.logrank(TIME, EVENT, "sex")
    chisq, p = survdiff(rows[TIME], rows[EVENT], rows["sex"])
    close([logrank.statistic, logrank.p_value], [chisq, p])
    assert logrank.table.index.name == "sex"
    assert logrank.table["observed"].to_dict() == rows.groupby("sex")[EVENT].sum().to_dict()

    cox = client.cox(TIME, EVENT, "age + sex")
    exog = pd.DataFrame({"age": rows["age"], "sex[T.M]": (rows["sex"] == "M").astype(float)})
    # the fit's time axis: each time counted at its axis point ⌈t / resolution⌉
    axis = np.ceil(rows[TIME] / cox.resolution)
    ref = PHReg(axis, exog, rows[EVENT], ties="efron").fit()
    assert list(cox.table.index) == list(exog.columns)
    close(cox.table["estimate"], ref.params)
    close(cox.table["std_error"], ref.bse)
    close(cox.table[["hazard_ratio_ci_low", "hazard_ratio_ci_high"]], np.exp(ref.conf_int()))
    sent = pd.DataFrame(cox.hazard_ratios).set_index("term")
    close(cox.table[["hazard_ratio", "hazard_ratio_ci_low", "hazard_ratio_ci_high"]], sent)


def test_combat_and_pca(client: Consortium, live: LocalConsortium) -> None:
    combat = client.combat(["dacc_glu", "dacc_glx"], covariates=["age", "sex"], store=False)
    assert combat.table.index.names == ["batch", "variable"]
    for batch, sent in combat.result["batches"].items():
        for var in ("dacc_glu", "dacc_glx"):
            row = combat.table.loc[(batch, var)]
            assert (row["gamma"], row["delta"]) == (sent["gamma"][var], sent["delta"][var])
            assert row["n"] == sent["n"] == len(live.rows(["dacc_glu", "dacc_glx"], [batch]))
    assert combat.variables["grand_mean"].to_dict() == combat.result["grand_mean"]
    assert list(combat.coefficients.columns) == ["dacc_glu", "dacc_glx"]

    variables = ["dacc_glu", "dacc_gln", "dacc_naa"]
    pca = client.pca(variables)
    values, vectors = np.linalg.eigh(np.corrcoef(live.rows(variables)[variables].T))
    order = np.argsort(values)[::-1]
    close(pca.explained["explained_variance"], values[order])
    close(pca.explained["cumulative_ratio"].iloc[-1], 1.0)
    loadings = pca.table.to_numpy()
    signs = np.sign((loadings * vectors[:, order]).sum(axis=0))
    close(loadings, vectors[:, order] * signs)
    assert pca.table.index.tolist() == variables and pca.table.columns[0] == "PC1"


def test_kmeans_and_gmm_equal_scikit_learn(client: Consortium, live: LocalConsortium) -> None:
    x = live.rows(MRS)[MRS].to_numpy()
    init = [[10.5, 10.5], [12.5, 11.0]]
    km = client.kmeans(MRS, k=2, init=init)
    ref = KMeans(2, init=np.array(init), n_init=1, algorithm="lloyd", tol=0).fit(x)
    assert km.table.index.name == "cluster" and km.table.index.tolist() == ["1", "2"]
    close(km.table[MRS], ref.cluster_centers_)
    assert km.table["size"].tolist() == np.bincount(ref.labels_).tolist()
    assert km.inertia == pytest.approx(ref.inertia_, rel=RTOL)

    start = {"weights": [0.5, 0.5], "means": init, "covariances": [np.cov(x.T).tolist()] * 2}
    gmm = client.gmm(MRS, k=2, init=start)
    ref = GaussianMixture(
        2,
        covariance_type="full",
        weights_init=start["weights"],
        means_init=start["means"],
        precisions_init=np.linalg.inv(np.asarray(start["covariances"])),
    ).fit(x)
    close(gmm.table["weight"], ref.weights_)
    close(gmm.table[MRS], ref.means_)
    close(gmm.covariances.loc["1"], ref.covariances_[0])
    assert gmm.bic_by_k["bic"].tolist() == [gmm.bic]


def test_train_and_predict(client: Consortium, live: LocalConsortium) -> None:
    fit = client.train("trs ~ age + sex", rounds=3, seed=1, on_refusal="drop_site")
    metrics = fit.result["metrics"]
    assert fit.table.index.name == "site" and fit.table.index[0] == "pooled"
    assert fit.table.loc["pooled", "n"] == metrics["n"]
    assert fit.table.loc["pooled", "accuracy"] == metrics["accuracy"]
    for site, row in metrics["per_site"].items():
        assert fit.table.loc[site, "n"] == row["n"]
    assert set(fit.sites.index) == set(live.services)
    assert set(fit.dropped_sites) == set(fit.sites.index[fit.sites["dropped"].notna()])
    assert fit.history.index.name == "round" and len(fit.history) == len(fit.result["history"])
    close(fit.coefficients["odds_ratio"], np.exp(fit.coefficients["estimate"]))
    assert fit.model_id in set(client.models()["model_id"])

    scored = client.predict(fit.model_id, "trs_risk")
    assert scored.table.loc[0, "new_variable"] == "trs_risk"
    assert scored.table.loc[0, "n"] == scored.n == len(live.rows(["age", "sex"]))


def test_data_quality_is_a_frame_per_variable_visit_and_site(
    client: Consortium, live: LocalConsortium
) -> None:
    res = client.data_quality(["age", "panss_total", "sex"], visits=["baseline"])
    assert res.table.index.names == ["variable", "visit", "site"]
    for site, service in live.services.items():
        everyone = service.frames.frame(["panss_total"], "baseline", None)
        row = res.table.loc[("panss_total", "baseline", site)]
        assert row["n"] == len(live.rows(["panss_total"], [site]))
        close(row["completeness"], row["n"] / len(everyone))
        assert res.persons.loc[site, "baseline"] == len(everyone)
        assert list(res.temporal.columns) == [
            "visit_order",
            "event_before_index",
            "exposure_end_before_start",
        ]
    flags = res.flags
    assert list(flags.columns[:5]) == ["site", "variable", "visit", "rule", "value"]
    assert len(flags) == len(res.result["flags"])
    assert ("berlin", "implausible") in set(zip(flags["site"], flags["rule"], strict=True))


def test_run_converts_like_the_method_and_the_catalog_lists_sites(
    client: Consortium, live: LocalConsortium
) -> None:
    request = {"analysis": "correlation", "variables": ["age", "cpz_eq_current"]}
    pd.testing.assert_frame_equal(
        client.run(request).table, client.correlation(request["variables"]).table
    )
    assert sorted(client.nodes()["site"]) == sorted(live.services)
    catalog = client.catalog().set_index("code")
    assert catalog.loc["dacc_glx", sorted(live.services)].tolist() == ["same"] * 3


def test_errors_name_their_code(client: Consortium, url: str) -> None:
    with pytest.raises(AnalysisFailed, match="did you mean panss_total") as failed:
        client.summary(["panss_totl"])
    assert failed.value.code == ErrorCode.UNKNOWN_VARIABLE
    assert str(failed.value).startswith("[unknown_variable]")
    assert client.count(project=None).n == 1200  # a field left None is not sent
    with pytest.raises(TypeError, match="famliy"):
        client.glm("trs ~ age", famliy="binomial")
    with Consortium(url, "fpy_not-a-token") as stranger, pytest.raises(CoordinatorError) as denied:
        stranger.count()
    assert denied.value.code == ErrorCode.UNAUTHORIZED and "[unauthorized]" in str(denied.value)


def test_a_result_without_its_own_conversion_keeps_its_plain_values() -> None:
    # an analysis of a newer coordinator than this client: its plain values in a row
    envelope = Envelope.model_validate(
        {
            "status": "ok",
            "analysis": "newer",
            "result": {"n": 12, "score": 0.5, "parts": [1, 2]},
            "sites": {"oslo": {"n": 12}},
            "dropped_sites": {"riga": "cell_too_small"},
        }
    )
    res = finish(envelope, {"analysis": "newer"}, TABLES.get("newer", scalars))
    assert res.table.to_dict("records") == [{"n": 12, "score": 0.5}]
    assert res.parts == [1, 2] and res.n == 12 and res.missing is None
    assert res.sites["dropped"].isna().tolist() == [True, False]
    assert res.sites.loc["riga", "dropped"] == "cell_too_small" and res.sites.loc["oslo", "n"] == 12
    assert "riga" in repr(res) and "<p>newer: n=12" in res._repr_html_()
    with pytest.raises(AttributeError, match="result fields: \\['n', 'parts', 'score'\\]"):
        _ = res.nothing
