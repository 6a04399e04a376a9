"""Table-makers of results: ``maker(result, request)`` gives the tables and note lines
:func:`fedpsy.show.show_result` prints. This module holds the shared pieces and the
descriptive analyses; :mod:`fedpsy.show_models` the models.

Coefficients carry 95 % confidence intervals on the scale the coordinator tested them on
(z for GLM, LMM and Cox; t with the residual degrees of freedom for OLS), and the ratio
that reads naturally where the link is a log: odds ratios for a logistic model, rate ratios
for a Poisson one, hazard ratios for Cox (each ``exp`` of the estimate and its interval).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from statistics import NormalDist
from typing import Any

from rich.markup import escape
from rich.table import Table

Part = Table | str
Shower = Callable[[dict[str, Any], Mapping[str, Any]], list[Part]]
Z95 = NormalDist().inv_cdf(0.975)
RATIOS = {("binomial", "logit"): "OR", ("poisson", "log"): "RR"}
"""(family, link) → the ratio ``exp(estimate)`` is: odds ratio, rate ratio."""
RATIO_NAMES = {"OR": "odds ratio", "RR": "rate ratio", "HR": "hazard ratio"}
"""What each ratio is; its table says so (each is exp of the term's estimate)."""


def num(value: Any, digits: int = 4) -> str:
    """A number as a table shows it: ``digits`` significant digits (trailing zeros kept:
    1.00 is not 1), one decimal from ``10**(digits-1)`` on, thousands separated; integral
    values (counts, degrees of freedom) without decimals; ``–`` for none."""
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int) or (
        math.isfinite(value) and value == int(value) and abs(value) < 1e15
    ):
        return f"{int(value):,}"
    if not math.isfinite(value):
        return str(value)
    if abs(value) >= 10 ** (digits - 1):
        return f"{value:,.1f}"
    return f"{value:#.{digits}g}".replace(".e", "e").removesuffix(".")


def esc(value: Any) -> str:
    """A name from the data (a term, variable or level) as literal text, never markup:
    ``C(site)[berlin]`` is not a style."""
    return escape(str(value))


def plural(count: Any, noun: str) -> str:
    return f"{num(count)} {noun}{'' if count == 1 else 's'}"


def p_value(p: float | None) -> str:
    if p is None:
        return "–"
    if p == 0:
        return "< 1e-300"
    return f"{p:.2e}" if p < 1e-3 else f"{p:.3f}"


def interval(low: float | None, high: float | None) -> str:
    """A confidence interval, its bounds to 3 significant digits."""
    return "–" if low is None or high is None else f"{num(low, 3)} … {num(high, 3)}"


def test_line(name: str, stat: Mapping[str, Any] | None) -> str:
    if not stat:
        return ""
    statistic, df = num(stat.get("statistic")), num(stat.get("df"))
    return f"{name} = {statistic}, df = {df}, p = {p_value(stat.get('p_value'))}"


def numbers(*headers: str, title: str | None = None) -> Table:
    """A table whose first column is a name (folded when the page is narrow) and whose
    other columns are numbers, right-aligned, never wrapped or cut."""
    table = Table(title=title)
    table.add_column(headers[0], overflow="fold")
    for header in headers[1:]:
        table.add_column(header, no_wrap=True, justify="right")
    return table


def coefficient_table(
    coefficients: Sequence[Mapping[str, Any]],
    quantile: float | None,
    ratio: str | None = None,
    statistic: str = "z",
    title: str | None = None,
) -> list[Table]:
    """Terms with estimate, standard error, test and 95 % CI (``quantile`` × SE); then,
    for a ``ratio``, a second table of ``exp`` of each term but the intercept with its
    interval (two narrow tables fit an 80-column terminal). Without any standard error (a
    trained model's weights) only the estimates and ratios."""
    tested = any(c.get("std_error") is not None for c in coefficients)
    headers = ["term", "estimate", *(["SE", statistic, "p", "95% CI"] if tested else [])]
    table = numbers(*headers, title=title)
    ratios: list[tuple[str, float | None, float | None, float | None]] = []
    for c in coefficients:
        estimate, se = c.get("estimate"), c.get("std_error")
        low = high = None
        if estimate is not None and se is not None and quantile is not None:
            low, high = estimate - quantile * se, estimate + quantile * se
        row = [esc(c.get("term")), num(estimate)]
        if tested:
            row += [num(se), num(c.get("statistic")), p_value(c.get("p_value"))]
            row.append(interval(low, high))
        table.add_row(*row)
        if c.get("term") != "Intercept" and estimate is not None:
            ratios.append((str(c.get("term")), exp(estimate), exp(low), exp(high)))
    if not ratio:
        return [table]
    return [table, ratio_table(ratio, ratios, with_interval=tested)]


def ratio_table(
    ratio: str,
    rows: Sequence[tuple[str, float | None, float | None, float | None]],
    first: str = "term",
    with_interval: bool = True,
) -> Table:
    """``(name, ratio, low, high)`` rows as a table titled by what the ratio is."""
    headers = [first, ratio, *(["95% CI"] if with_interval else [])]
    table = numbers(*headers, title=f"{RATIO_NAMES[ratio]}s")
    for name, value, low, high in rows:
        table.add_row(esc(name), num(value), *([interval(low, high)] if with_interval else []))
    return table


def exp(x: float | None) -> float | None:
    if x is None:
        return None
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def _count(r: dict[str, Any], q: Mapping[str, Any]) -> list[Part]:
    return [f"n = {num(r.get('n'))} persons"]


def _summary(r: dict[str, Any], q: Mapping[str, Any]) -> list[Part]:
    t = numbers("variable", "n", "mean", "sd", "skewness", "kurtosis", "missing")
    for code, s in r["variables"].items():
        t.add_row(
            esc(code),
            num(s.get("n")),
            num(s.get("mean")),
            num(s.get("sd")),
            num(s.get("skewness")),
            num(s.get("kurtosis")),
            num(s.get("missing")),
        )
    return [t]


def _histogram(r: dict[str, Any], q: Mapping[str, Any]) -> list[Part]:
    edges, counts = r["edges"], r["counts"]
    t = numbers(f"{esc(r.get('variable', ''))} bin", "count")
    if r.get("below"):
        t.add_row(f"< {num(edges[0])}", num(r["below"]))
    for i, count in enumerate(counts):
        close = "]" if i == len(counts) - 1 else ")"
        t.add_row(f"[{num(edges[i])}, {num(edges[i + 1])}{close}", num(count))
    if r.get("above"):
        t.add_row(f"> {num(edges[-1])}", num(r["above"]))
    notes: list[Part] = [f"n = {num(r.get('n'))}"]
    if r.get("coarsened"):
        notes.append(
            f"bins coarsened {r['coarsened']} time(s): a site refused a finer bin below its "
            "minimum cell size, so adjacent bins were merged pairwise"
        )
    if r.get("merged"):
        notes.append("bins under the minimum count were merged with a neighbour")
    return [t, *notes]


def _quantiles(r: dict[str, Any], q: Mapping[str, Any]) -> list[Part]:
    t = numbers("probability", f"{esc(r.get('variable', ''))} quantile")
    for p, value in zip(r["probabilities"], r["values"], strict=True):
        t.add_row(num(p), num(value))
    return [
        t,
        f"n = {num(r.get('n'))}; approximate: each value within ± {num(r.get('error_bound'))} "
        f"({plural(r.get('bins'), 'bin')} over {num(r.get('lower'))} … {num(r.get('upper'))})",
    ]


def _crosstab(r: dict[str, Any], q: Mapping[str, Any]) -> list[Part]:
    row, column = esc(q.get("row", "row")), esc(q.get("column", "column"))
    t = numbers(
        f"{row} \\ {column}",
        *map(esc, r["columns"]),
        "total",
        title=f"rows: {row}, columns: {column}",
    )
    counts = r["counts"]
    for label, cells in zip(r["rows"], counts, strict=True):
        t.add_row(esc(label), *map(num, cells), num(sum(cells)))
    totals = [sum(col) for col in zip(*counts, strict=True)] if counts else []
    t.add_row("total", *map(num, totals), num(sum(totals)))
    return [t, "Pearson " + test_line("χ²", r.get("chi2"))]


def _correlation(r: dict[str, Any], q: Mapping[str, Any]) -> list[Part]:
    t = numbers("", *map(esc, r["variables"]), title="Pearson correlation")
    for name, values in zip(r["variables"], r["matrix"], strict=True):
        t.add_row(esc(name), *map(num, values))
    return [t, f"n = {num(r.get('n'))}"]


def _ttest(r: dict[str, Any], q: Mapping[str, Any]) -> list[Part]:
    t = numbers(esc(r["group"]), "n", f"mean {esc(r['variable'])}", "sd")
    for label, g in r["groups"].items():
        t.add_row(esc(label), num(g.get("n")), num(g.get("mean")), num(g.get("sd")))
    notes: list[Part] = [t]
    means = [(label, g.get("mean")) for label, g in r["groups"].items()]
    if len(means) == 2 and None not in (means[0][1], means[1][1]):
        (a, ma), (b, mb) = means
        notes.append(f"difference in means ({a} − {b}) = {num(ma - mb)}")
    notes.append("Welch " + test_line("t", r.get("welch")))
    notes.append("pooled " + test_line("t", r.get("pooled")))
    return notes


DESCRIPTIVE: dict[str, Shower] = {
    "count": _count,
    "summary": _summary,
    "histogram": _histogram,
    "quantiles": _quantiles,
    "crosstab": _crosstab,
    "correlation": _correlation,
    "ttest": _ttest,
}
