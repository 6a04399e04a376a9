"""Table-makers of the models' results (regression, survival, harmonization, clustering,
training), by name in :data:`MODELS`; the shared pieces are in :mod:`fedpsy.show_tables`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.table import Table

from fedpsy.show_tables import (
    RATIOS,
    Z95,
    Part,
    Shower,
    coefficient_table,
    esc,
    exp,
    interval,
    num,
    numbers,
    p_value,
    ratio_table,
    test_line,
)


def _ols(r: dict[str, Any], q: Mapping[str, Any]) -> list[Part]:
    df = r.get("df_residual")
    quantile = _t_quantile(df) if df else None
    return [
        *coefficient_table(r["coefficients"], quantile, statistic="t"),
        f"n = {num(r.get('n'))}, R² = {num(r.get('r_squared'))}, adjusted R² = "
        f"{num(r.get('adj_r_squared'))}, σ = {num(r.get('sigma'))}, df residual = {num(df)}",
    ]


def _t_quantile(df: int) -> float:
    """The 97.5 % quantile of Student's t with ``df`` degrees of freedom."""
    from scipy.special import stdtrit

    return float(stdtrit(df, 0.975))


def _glm(r: dict[str, Any], q: Mapping[str, Any]) -> list[Part]:
    family, link = r.get("family"), r.get("link")
    ratio = RATIOS.get((str(family), str(link)))
    converged = "" if r.get("converged", True) else " (did not converge)"
    return [
        *coefficient_table(r["coefficients"], Z95, ratio),
        f"{family} GLM, {link} link; n = {num(r.get('n'))}, "
        f"{r.get('iterations')} Newton iterations{converged}",
        f"deviance {num(r.get('deviance'))} (null {num(r.get('null_deviance'))}), "
        f"df residual = {num(r.get('df_residual'))}, dispersion = {num(r.get('dispersion'))}",
    ]


def _lmm(r: dict[str, Any], q: Mapping[str, Any]) -> list[Part]:
    v = r.get("variance_components") or {}
    converged = "" if r.get("converged", True) else " (did not converge)"
    return [
        *coefficient_table(r["coefficients"], Z95, title="fixed effects"),
        f"n = {num(r.get('n'))} in {num(r.get('groups'))} sites; random intercept per site: "
        f"variance {num(v.get('site'))}, residual variance {num(v.get('residual'))} (REML)"
        f"{converged}",
    ]


def _meta(r: dict[str, Any], q: Mapping[str, Any]) -> list[Part]:
    label = f"{num(r.get('level', 0.95) * 100)}% CI"
    t = numbers("site", "n", esc(r.get("term", "estimate")), "SE", label, "weight")
    rows = [(s["site"], s.get("n"), s, s.get("weight")) for s in r["per_site"]]
    rows += [("fixed effect", r.get("n"), r["fixed"], None)]
    rows += [("random effects", r.get("n"), r["random"], None)]
    for name, n, e, weight in rows:
        bold = weight is None
        t.add_row(
            f"[bold]{esc(name)}[/]" if bold else esc(name),
            num(n),
            num(e["estimate"]),
            num(e.get("std_error")),
            interval(e.get("ci_low"), e.get("ci_high")),
            "" if bold else num(weight),
        )
    random = r["random"]
    parts: list[Part] = [t]
    if q.get("family") == "binomial":  # the term's log-odds: its odds ratio reads better
        ratios = [
            (name, exp(e["estimate"]), exp(e.get("ci_low")), exp(e.get("ci_high")))
            for name, _, e, _ in rows
        ]
        parts.append(ratio_table("OR", ratios, "site"))
    return [
        *parts,
        f"random effects ({r.get('method')}): z = {num(random.get('statistic'))}, "
        f"p = {p_value(random.get('p_value'))}; I² = {num(r.get('i_squared'))}, "
        f"τ² = {num(r.get('tau2'))}; heterogeneity " + test_line("Q", r.get("q")),
    ]


def _kaplan_meier(r: dict[str, Any], q: Mapping[str, Any]) -> list[Part]:
    t = numbers(
        esc(r.get("group") or ""), esc(r.get("time")), "at risk", "events", "survival", "std. error"
    )
    for label, c in r["groups"].items():
        rows = zip(c["time"], c["at_risk"], c["events"], c["survival"], c["std_error"], strict=True)
        for time, at_risk, events, survival, se in rows:
            t.add_row(esc(label), num(time), num(at_risk), num(events), num(survival), num(se))
    notes: list[Part] = [t, f"n = {num(r.get('n'))}; event: {r.get('event')}"]
    for point in r.get("merged_points") or []:
        where = f" in group {point['group']}" if point.get("group") else ""
        if point.get("sites"):
            why = f"{point['code']} at {', '.join(point['sites'])}"
        else:
            why = f"{point['code']}: fewer events than the minimum, merged with its neighbour"
        notes.append(f"time {num(point['time'])}{where} left out ({why})")
    if r.get("coarsened"):
        notes.append(f"{r['coarsened']} round(s) refused by a site before these times were kept")
    return notes


def _logrank(r: dict[str, Any], q: Mapping[str, Any]) -> list[Part]:
    t = numbers(esc(r["group"]), "n", "observed events", "expected events")
    for label, g in r["groups"].items():
        t.add_row(esc(label), num(g.get("n")), num(g.get("observed")), num(g.get("expected")))
    return [t, "log-rank " + test_line("χ²", r)]


def _cox(r: dict[str, Any], q: Mapping[str, Any]) -> list[Part]:
    tables = coefficient_table(r["coefficients"], Z95, "HR")
    if r.get("hazard_ratios"):  # the coordinator's own hazard ratios
        rows = [(h["term"], h["hazard_ratio"], h["lower"], h["upper"]) for h in r["hazard_ratios"]]
        tables = [tables[0], ratio_table("HR", rows)]
    converged = "" if r.get("converged", True) else " (did not converge)"
    notes: list[Part] = [
        *tables,
        f"n = {num(r.get('n'))}, {num(r.get('events'))} events; Efron ties; "
        f"{r.get('iterations')} Newton iterations{converged}",
    ]
    if r.get("resolution") is not None:
        coarse = r.get("coarsened") or 0
        why = f" (coarsened {coarse} time(s): a site asked for a coarser axis)" if coarse else ""
        notes.append(f"time axis resolution {num(r['resolution'])}{why}")
    return notes


def _combat(r: dict[str, Any], q: Mapping[str, Any]) -> list[Part]:
    t = numbers(esc(r.get("batch", "batch")), "n", "variable", "γ (shift)", "δ (scale)")
    for batch, b in r["batches"].items():
        for variable in r["variables"]:
            t.add_row(
                esc(batch),
                num(b.get("n")),
                esc(variable),
                num(b["gamma"].get(variable)),
                num(b["delta"].get(variable)),
            )
    stored = ", ".join(r.get("new_variables") or []) or "not stored"
    eb = "empirical Bayes" if r.get("eb") else "no empirical Bayes"
    ref = f", reference batch {r['ref_batch']}" if r.get("ref_batch") else ""
    return [t, f"n = {num(r.get('n'))}; {eb}{ref}; harmonized values at the sites: {stored}"]


def _pca(r: dict[str, Any], q: Mapping[str, Any]) -> list[Part]:
    ratios = r["explained_variance_ratio"]
    t = numbers("component", "variance", "share", "cumulative")
    for i, (var, share) in enumerate(zip(r["explained_variance"], ratios, strict=True)):
        t.add_row(f"PC{i + 1}", num(var), num(share), num(sum(ratios[: i + 1])))
    loadings = numbers(
        "variable", *(f"PC{i + 1}" for i in range(len(r["components"]))), title="loadings"
    )
    for j, variable in enumerate(r["variables"]):
        loadings.add_row(esc(variable), *(num(c[j]) for c in r["components"]))
    scaled = "standardized variables" if r.get("scale") else "centred variables"
    scores = ", ".join(r.get("new_variables") or []) or "not stored"
    return [t, loadings, f"n = {num(r.get('n'))}, {scaled}; scores at the sites: {scores}"]


def _clusters(r: dict[str, Any], centers: list[Any], first: str, weights: list[Any]) -> Table:
    t = numbers(first, "size" if first == "cluster" else "weight", *map(esc, r["variables"]))
    for i, center in enumerate(centers):
        cells = ["withheld"] * len(r["variables"]) if center is None else list(map(num, center))
        t.add_row(str(i + 1), "withheld" if weights[i] is None else num(weights[i]), *cells)
    return t


def _kmeans(r: dict[str, Any], q: Mapping[str, Any]) -> list[Part]:
    converged = "converged" if r.get("converged") else "did not converge"
    labels = ", ".join(r.get("new_variables") or []) or "not stored"
    return [
        _clusters(r, r["centers"], "cluster", r["sizes"]),
        f"n = {num(r.get('n'))}; inertia {num(r.get('inertia'))}; {r.get('iterations')} "
        f"iterations, {converged}, best of {r.get('restarts')} starts",
        f"cluster labels at the sites: {labels}",
    ]


def _gmm(r: dict[str, Any], q: Mapping[str, Any]) -> list[Part]:
    by_k = ", ".join(f"k={k}: {num(v)}" for k, v in (r.get("bic_by_k") or {}).items())
    converged = "converged" if r.get("converged") else "did not converge"
    return [
        _clusters(r, r["means"], "component", r["weights"]),
        f"n = {num(r.get('n'))}; k = {r.get('k')}; BIC {num(r.get('bic'))} ({by_k}), AIC "
        f"{num(r.get('aic'))}; {r.get('iterations')} iterations, {converged}",
    ]


def _metric(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def metrics_table(result: Mapping[str, Any], title: str | None = None) -> Table:
    """A trained model on the test rows: all sites (pooled) and each site's own, next to
    each site's local-only model."""
    metrics, local = result["metrics"], result.get("local_only") or {}
    table = numbers(
        "test rows", "n", "federated AUC", "local-only AUC", "federated Brier", title=title
    )
    pooled_auc = _metric(metrics["auc"])
    lower, upper = metrics.get("auc_lower"), metrics.get("auc_upper")
    if metrics["auc"] is not None and lower is not None and upper is not None and upper > lower:
        pooled_auc += f" [{lower:.3f}, {upper:.3f}]"
    table.add_row(
        "all sites (pooled)", num(metrics["n"]), pooled_auc, "", _metric(metrics["brier"])
    )
    for site, own in metrics["per_site"].items():
        alone = local.get(site) or {}
        table.add_row(
            site,
            num(own["n"]),
            _metric(own["auc"]),
            _metric(alone.get("auc")),
            _metric(own["brier"]),
        )
    return table


def _train(r: dict[str, Any], q: Mapping[str, Any]) -> list[Part]:
    parts: list[Part] = []
    if "metrics" in r:
        parts.append(metrics_table(r))
    if r.get("model_kind", "logistic") == "logistic" and r.get("coefficients"):
        parts += coefficient_table(r["coefficients"], None, "OR", title="model (log-odds)")
    stopped = "stopped early" if r.get("stopped_early") else "ran all rounds"
    parts.append(
        f"{len(r.get('history', []))} rounds ({stopped}), best round {r.get('best_round')}; "
        f"model {r.get('model_id')} (app {str(r.get('app_hash', ''))[:12]}…)"
    )
    return parts


def _predict(r: dict[str, Any], q: Mapping[str, Any]) -> list[Part]:
    return [
        f"{num(r.get('n'))} persons scored with model {r.get('model_id')} ({r.get('formula')}); "
        f"each site keeps the scores as {r.get('new_variable')} (run {r.get('run_id')})"
    ]


MODELS: dict[str, Shower] = {
    "ols": _ols,
    "glm": _glm,
    "lmm": _lmm,
    "meta": _meta,
    "kaplan_meier": _kaplan_meier,
    "logrank": _logrank,
    "cox": _cox,
    "combat": _combat,
    "pca": _pca,
    "kmeans": _kmeans,
    "gmm": _gmm,
    "train": _train,
    "predict": _predict,
}
