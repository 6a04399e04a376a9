"""Attack class 5: one contributor dominates a sum.

The target's dACC glutamate is 987654 while everyone else's is about 10. The pooled sum
and sum of squares are then essentially the target's: ``x ≈ sqrt(M2 + S²/n)`` gives the
value to 8 digits, and a correlation with another variable gives the target's value of
that variable (``y ≈ ȳ + r·sqrt(M2_y·(1 − 1/n))``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from typer.testing import CliRunner

from fedpsy.cli import app
from node.steps.disclosure import dominance_ratios
from tests.attacks.support import (
    TARGET,
    Consortium,
    Envelope,
    assert_details_clean,
    close_to,
    coefficient,
    ok,
    summary_of,
)

pytestmark = pytest.mark.xdist_group("attacks")

RELATIVE = 0.01  # recovering the dominant value within 1 % is a disclosure
MADRS_MARGIN = 2.0


def dominant_from_moments(n: int, mean: float, var: float) -> float:
    """The dominant value from ``n``, mean and variance: ``Σx² = M2 + S²/n ≈ x²``."""
    total = n * mean
    return math.sqrt(var * (n - 1) + total * total / n)


def refused_codes(envelope: Envelope) -> set[str]:
    reason = envelope.get("reason") or {}
    return {str(c) for c in (reason.get("sites") or {}).values()}


def test_dominant_value_and_its_other_variables_stay_hidden(fresh: Consortium) -> None:
    """Class 5, dominant contributor. ``summary [dacc_glu]`` (and the same through
    ``ols dacc_glu ~ 1``: intercept and sigma are the mean and sd) recovers the target's
    987654; ``correlation [dacc_glu, madrs_total]`` with ``summary [madrs_total]``
    recovers the target's MADRS. Stopped by: a p%-dominance rule (code ``dominance``) on
    every sum that leaves, and, for a value so far from all others, the variable being
    nearly two-valued (``cell_too_small``)."""
    glu = fresh.run({"analysis": "summary", "variables": ["dacc_glu"]})
    mean_model = fresh.run({"analysis": "ols", "formula": "dacc_glu ~ 1"})
    madrs = fresh.run({"analysis": "summary", "variables": ["madrs_total"]})
    corr = fresh.run({"analysis": "correlation", "variables": ["dacc_glu", "madrs_total"]})

    estimates: dict[str, float] = {}
    if ok(glu):
        s = summary_of(glu, "dacc_glu")
        estimates["summary"] = dominant_from_moments(s["n"], s["mean"], s["var"])
    if ok(mean_model):
        r = mean_model["result"]
        estimates["ols"] = dominant_from_moments(
            r["n"], coefficient(mean_model, "Intercept"), r["sigma"] ** 2
        )
    recovered = {
        k: v
        for k, v in estimates.items()
        if close_to(v, TARGET.dacc_glu, RELATIVE * TARGET.dacc_glu)
    }
    assert recovered == {}, f"the dominant dACC Glu recovered: {recovered}"

    madrs_estimate = None
    if ok(madrs) and ok(corr) and corr["result"]["matrix"][0][1] is not None:
        m = summary_of(madrs, "madrs_total")
        n = corr["result"]["n"]
        m2 = m["var"] * (m["n"] - 1)
        madrs_estimate = m["mean"] + corr["result"]["matrix"][0][1] * math.sqrt(m2 * (1 - 1 / n))
    assert not close_to(madrs_estimate, TARGET.madrs_total, MADRS_MARGIN), (
        f"the dominant person's MADRS recovered as {madrs_estimate}"
    )
    # one value far from all others makes the variable nearly two-valued (the outlier and
    # the rest): a cell of one, or, when the others spread more, a dominated sum
    for envelope in (glu, mean_model, corr):
        if not ok(envelope):
            codes = refused_codes(envelope)
            assert {"dominance", "cell_too_small"} & codes, envelope["reason"]
    assert_details_clean(fresh.log)


def test_a_value_dominating_fourth_powers_withholds_skewness_and_kurtosis(
    tmp_path: Path,
) -> None:
    """Class 5 on the summary's third round. One MADRS total of 45 among 18–26 at site
    ``a``: its squared deviation passes the p%-rule, but its fourth power is nearly all of
    the sum of fourth powers, which would give the value away (``Σz⁴ ≈ z⁴``). Site ``a``
    refuses that round (``dominance``); the summary still answers with the mean and sd
    of every variable and withholds (null) the skewness and kurtosis of MADRS only, which
    the coordinator asks again one variable at a time."""
    rng = np.random.default_rng(17)
    madrs_a = np.append(rng.integers(18, 27, 39), 45).astype(float)
    sites = {
        "a": pd.DataFrame({"madrs_total": madrs_a, "age": rng.uniform(18, 70, 40).round(1)}),
        "b": pd.DataFrame(
            {"madrs_total": rng.integers(10, 31, 25), "age": rng.uniform(18, 70, 25).round(1)}
        ),
    }
    # the premise: at site a the squares pass the rule (p = 10 %), the fourth powers do not
    (squares,) = dominance_ratios(madrs_a[:, None])
    (fourths,) = dominance_ratios(madrs_a[:, None], 4)
    assert squares > 0.1 > fourths
    for name, frame in sites.items():
        frame.insert(0, "person_id", [f"{name.upper()}{i}" for i in range(len(frame))])
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
    (tmp_path / "r.json").write_text(
        json.dumps({"analysis": "summary", "variables": ["madrs_total", "age"]})
    )
    outcome = CliRunner().invoke(
        app,
        [
            "sandbox",
            *("--site", f"a={tmp_path / 'a.csv'}", "--site", f"b={tmp_path / 'b.csv'}"),
            str(tmp_path / "r.json"),
        ],
    )
    (envelope,) = [json.loads(x) for x in outcome.stdout.splitlines() if x.startswith("{")]
    assert envelope["status"] == "ok", envelope
    assert envelope["sites"] == {"a": {"n": 40}, "b": {"n": 25}}  # the summary's rows
    pooled = pd.concat(sites.values())
    got = envelope["result"]["variables"]
    madrs = pooled["madrs_total"].to_numpy(dtype=float)
    assert got["madrs_total"]["mean"] == pytest.approx(madrs.mean(), rel=1e-12)
    assert got["madrs_total"]["sd"] == pytest.approx(madrs.std(ddof=1), rel=1e-10)
    assert got["madrs_total"]["skewness"] is None and got["madrs_total"]["kurtosis"] is None
    age = pooled["age"].to_numpy()
    assert got["age"]["skewness"] == pytest.approx(stats.skew(age, bias=False), rel=1e-10)
    assert got["age"]["kurtosis"] == pytest.approx(stats.kurtosis(age, bias=False), rel=1e-10)
