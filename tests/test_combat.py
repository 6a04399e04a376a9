"""Distributed ComBat equals pooled ComBat (neuroCombat) and leaves its values at the nodes.

Data: sklearn's diabetes (442 persons; serum measures s1–s6 and bmi as the variables, age
and sex as biological covariates), split into 3 unequal sites with different case mix, with
known additive and multiplicative site effects added on the residual scale. neuroCombat
casts continuous covariates to float32 and stops its empirical-Bayes loop at a relative
change of 1e-4 (METHODS.md): ages are made float32-exact here, and the tight reference is
neuroCombat's own functions with its loop run to 1e-13 in float64.
"""

from __future__ import annotations

import contextlib
import importlib
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from coordinator.federation.failures import SitesFailed
from node.data.frame_memory import DataFrameSource
from schemas.analyses.combat import CombatResult
from schemas.errors import FedpsyError
from tests.support.datasets import diabetes
from tests.support.federation import pooled, run_request

nc = importlib.import_module("neuroCombat.neuroCombat")  # the module, not the function

Array = npt.NDArray[np.float64]
VARIABLES = ["s1", "s2", "s3", "s4", "s5", "s6", "bmi"]
NEW = [f"{v}_combat" for v in VARIABLES]
SEX = {"sex": ["F", "M"]}
SHIFT = {"site1": 0.8, "site2": -0.3, "site3": 0.1}  # in residual SDs
SCALE = {"site1": 1.6, "site2": 0.7, "site3": 1.0}


def clean_data() -> pd.DataFrame:
    df = diabetes()
    df["age"] = df["age"].astype(np.float32).astype(np.float64)  # exact under float32
    df["orig"] = np.arange(len(df), dtype=np.float64)
    return df


def with_site_effects(
    df: pd.DataFrame, weights: Sequence[float] = (2, 5, 3), seed: int = 4
) -> dict[str, DataFrameSource]:
    """Sites with different sex ratios (not age: site and a covariate fully confounded
    leave the covariate's effect unidentifiable), each with its own shift and scale of
    every variable's residual from the pooled fit on age and sex."""
    rng = np.random.default_rng(seed)
    key = (df["sex"] == "M").to_numpy() * len(df) / 4 + rng.normal(0, len(df) / 2, len(df))
    order = np.argsort(key, kind="stable")
    bounds = np.round(np.cumsum(weights) / np.sum(weights) * len(df)).astype(int)
    data = df.copy()
    site_of = np.empty(len(df), dtype=object)
    for i, chunk in enumerate(np.split(order, bounds[:-1])):
        site_of[chunk] = f"site{i + 1}"
    for v in VARIABLES:
        fit = smf.ols(f"{v} ~ age + C(sex)", data=df).fit()
        resid, sd = fit.resid.to_numpy(), float(np.sqrt(fit.scale))
        shift = np.array([SHIFT[s] for s in site_of]) * sd
        scale = np.array([SCALE[s] for s in site_of])
        data[v] = fit.fittedvalues.to_numpy() + shift + scale * resid
    data.insert(0, "person_id", [f"p{i:04d}" for i in range(len(df))])
    return {
        s: DataFrameSource(s, data[site_of == s].reset_index(drop=True), SEX)
        for s in ("site1", "site2", "site3")
    }


def reference_combat(
    frame: pd.DataFrame,
    batch: str,
    *,
    eb: bool,
    ref_batch: str | None = None,
    conv: float = 1e-13,
) -> tuple[Array, dict[str, Array], dict[str, Array]]:
    """neuroCombat's own steps on the pooled rows, its EB loop run to ``conv``.

    Returns the harmonized data (rows × variables) and γ*, δ* per batch label.
    """
    dat = frame[VARIABLES].to_numpy(dtype=np.float64).T
    covars = np.array(frame[[batch, "age", "sex"]], dtype="object")
    levels, codes = np.unique(covars[:, 0].astype(str), return_inverse=True)
    covars[:, 0] = codes
    ref = None if ref_batch is None else int(np.flatnonzero(levels == ref_batch)[0])
    with contextlib.redirect_stdout(io.StringIO()):
        design = nc.make_design_matrix(covars, 0, [2], [1], ref)
        batch_levels, per_batch = np.unique(covars[:, 0], return_counts=True)
        info = {
            "batch_levels": batch_levels,
            "ref_level": ref,
            "n_batch": len(batch_levels),
            "n_sample": int(covars.shape[0]),
            "sample_per_batch": per_batch.astype(int),
            "batch_info": [list(np.where(covars[:, 0] == i)[0]) for i in batch_levels],
            "design": design,
        }
        s, stand, var_pooled, mod = nc.standardize_across_features(dat, design, info)
        ls = nc.fit_LS_model_and_find_priors(s, design, info, False)
        gammas, deltas = [], []
        for i, idx in enumerate(info["batch_info"]):
            if eb:
                g, d = nc.it_sol(
                    s[:, idx],
                    ls["gamma_hat"][i],
                    ls["delta_hat"][i],
                    ls["gamma_bar"][i],
                    ls["t2"][i],
                    ls["a_prior"][i],
                    ls["b_prior"][i],
                    conv=conv,
                )
            else:
                g, d = ls["gamma_hat"][i], ls["delta_hat"][i]
            gammas.append(g)
            deltas.append(d)
        gamma, delta = np.array(gammas), np.array(deltas)
        if ref is not None:
            gamma[ref], delta[ref] = 0.0, 1.0
        data = nc.adjust_data_final(
            s.copy(), design, gamma, delta, stand, mod, var_pooled, info, dat
        )
    labels = [str(lv) for lv in levels]
    return (
        np.asarray(data).T,
        dict(zip(labels, gamma, strict=True)),
        dict(zip(labels, delta, strict=True)),
    )


def harmonized(sources: Mapping[str, DataFrameSource]) -> pd.DataFrame:
    return pooled(sources, [*VARIABLES, *NEW, "age", "sex", "orig"])


def run_combat(sources: Mapping[str, DataFrameSource], **fields: Any) -> CombatResult:
    request = {"analysis": "combat", "variables": VARIABLES, "covariates": ["age", "sex"]}
    result, _, _ = run_request(sources, {**request, **fields})
    assert isinstance(result, CombatResult)
    return result


def assert_estimates(
    result: CombatResult, gamma: dict[str, Array], delta: dict[str, Array], rtol: float
) -> None:
    assert sorted(result.batches) == sorted(gamma)
    for label, fit in result.batches.items():
        np.testing.assert_allclose([fit.gamma[v] for v in VARIABLES], gamma[label], rtol=rtol)
        np.testing.assert_allclose([fit.delta[v] for v in VARIABLES], delta[label], rtol=rtol)


@pytest.mark.parametrize("eb", [True, False])
def test_node_values_equal_pooled_combat_run_to_convergence(eb: bool) -> None:
    sources = with_site_effects(clean_data())
    result = run_combat(sources, eb=eb)
    assert result.new_variables == NEW and result.run_id is not None
    assert {s: f.n for s, f in result.batches.items()} == {"site1": 88, "site2": 221, "site3": 133}
    frame = harmonized(sources)
    expected, gamma, delta = reference_combat(frame, "site", eb=eb)
    got = frame[NEW].to_numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10 * np.abs(expected).max())
    assert_estimates(result, gamma, delta, rtol=1e-9)


def test_close_to_neurocombat_itself() -> None:
    """neuroCombat proper (EB loop stopped at 1e-4): the same to its own precision."""
    sources = with_site_effects(clean_data())
    run_combat(sources)
    frame = harmonized(sources)
    covars = frame[["site", "age", "sex"]].copy()
    with contextlib.redirect_stdout(io.StringIO()):
        out = nc.neuroCombat(
            frame[VARIABLES].to_numpy().T,
            covars,
            "site",
            categorical_cols=["sex"],
            continuous_cols=["age"],
        )
    spread = frame[VARIABLES].std().to_numpy()
    assert np.all(np.abs(frame[NEW].to_numpy() - out["data"].T) < 1e-5 * spread)
    assert np.abs(frame[NEW].to_numpy() - out["data"].T).max() > 0  # not the same loop


def test_site_effect_removed_and_covariate_effects_kept() -> None:
    clean = clean_data()
    sources = with_site_effects(clean)
    run_combat(sources)
    frame = harmonized(sources)
    truth = clean.set_index("orig").loc[frame["orig"]]
    for v, new in zip(VARIABLES, NEW, strict=True):
        raw = smf.ols(f"{v} ~ C(site) + age + C(sex)", data=frame).fit()
        fixed = smf.ols(f"{new} ~ C(site) + age + C(sex)", data=frame).fit()
        site_terms = [t for t in raw.params.index if t.startswith("C(site)")]
        hypothesis = ", ".join(f"{t} = 0" for t in site_terms)
        assert raw.f_test(hypothesis).pvalue < 1e-6
        after = fixed.f_test(hypothesis)  # what is left is the empirical-Bayes shrinkage
        assert after.fvalue < 1.0 and after.pvalue > 0.3
        # site spreads equalized: raw SD ratio about 1.6 / 0.7, harmonized close to 1
        sds = frame.groupby("site", observed=True)[new].std()
        raw_sds = frame.groupby("site", observed=True)[v].std()
        assert sds.max() / sds.min() < 1.15 and raw_sds.max() / raw_sds.min() > 1.7
        # biological effects: as on the data before site effects were added, and closer to
        # them than pooling the raw values without regard to site
        before = smf.ols(f"{v} ~ age + C(sex)", data=truth).fit()
        naive = smf.ols(f"{v} ~ age + C(sex)", data=frame).fit().params
        for term in ("age", "C(sex)[T.M]"):
            if abs(before.tvalues[term]) > 3:
                miss = abs(fixed.params[term] - before.params[term])
                assert miss < 0.15 * abs(before.params[term])
                assert miss < abs(naive[term] - before.params[term])
        assert np.corrcoef(frame[new], truth[v])[0, 1] > 0.97


def test_scanner_batches_nested_in_sites() -> None:
    """A categorical batch (scanner): two scanners at one site, one at each other site."""
    df = clean_data()
    sources = with_site_effects(df)
    rebuilt = {}
    for site, src in sources.items():
        frame = src.frame([*VARIABLES, "age", "sex", "orig"], "baseline", None).reset_index(
            drop=True
        )
        frame["sex"] = frame["sex"].astype(str)
        if site == "site2":
            frame["scanner"] = np.where(frame.index % 3 == 0, "prisma_b", "prisma_a")
            frame.loc[frame["scanner"] == "prisma_b", VARIABLES] *= 1.3
        else:
            frame["scanner"] = {"site1": "skyra", "site3": "achieva"}[site]
        frame.insert(0, "person_id", [f"{site}-{i:04d}" for i in range(len(frame))])
        rebuilt[site] = DataFrameSource(
            site, frame, {**SEX, "scanner": ["achieva", "prisma_a", "prisma_b", "skyra"]}
        )
    result = run_combat(rebuilt, batch="scanner")
    assert sorted(result.batches) == ["achieva", "prisma_a", "prisma_b", "skyra"]
    frame = pooled(rebuilt, [*VARIABLES, *NEW, "age", "sex", "scanner"])
    expected, gamma, delta = reference_combat(frame, "scanner", eb=True)
    np.testing.assert_allclose(
        frame[NEW].to_numpy(), expected, rtol=1e-10, atol=1e-10 * np.abs(expected).max()
    )
    assert_estimates(result, gamma, delta, rtol=1e-9)


def test_reference_batch_keeps_its_values() -> None:
    sources = with_site_effects(clean_data())
    result = run_combat(sources, ref_batch="site2")
    frame = harmonized(sources)
    expected, gamma, delta = reference_combat(frame, "site", eb=True, ref_batch="site2")
    np.testing.assert_allclose(
        frame[NEW].to_numpy(), expected, rtol=1e-10, atol=1e-10 * np.abs(expected).max()
    )
    assert_estimates(result, gamma, delta, rtol=1e-9)
    at_ref = frame["site"] == "site2"
    np.testing.assert_array_equal(
        frame.loc[at_ref, NEW].to_numpy(), frame.loc[at_ref, VARIABLES].to_numpy()
    )
    assert result.batches["site2"].gamma == dict.fromkeys(VARIABLES, 0.0)


def test_harmonized_values_never_leave_the_nodes() -> None:
    sources = with_site_effects(clean_data())
    result, _, federation = run_request(
        sources, {"analysis": "combat", "variables": VARIABLES, "covariates": ["age", "sex"]}
    )
    assert isinstance(result, CombatResult)
    values = pooled(sources, NEW)[NEW].to_numpy().ravel()
    sent: list[float] = []
    for exchange in federation.log:
        for part in exchange.results.values():
            _numbers(part.model_dump(), sent)
    size = 442 * len(VARIABLES)
    assert len(sent) < size / 10  # aggregates only, nothing per person
    assert not np.isin(np.round(values, 12), np.round(np.asarray(sent), 12)).any()
    assert [e.step.step for e in federation.log] == [
        "combat_batches",
        "combat_fit",
        "combat_residuals",
        "combat_adjust",
        "commit_derived",
    ]


def _numbers(value: object, out: list[float]) -> None:
    if isinstance(value, dict):
        for v in value.values():
            _numbers(v, out)
    elif isinstance(value, list):
        for v in value:
            _numbers(v, out)
    elif isinstance(value, float):
        out.append(value)


def test_without_store_nothing_is_kept() -> None:
    sources = with_site_effects(clean_data())
    result = run_combat(sources, store=False)
    assert result.new_variables == [] and result.run_id is None
    with pytest.raises(FedpsyError) as err:
        sources["site1"].frame(NEW, "baseline", None)
    assert err.value.code == "unknown_variable"


def test_a_batch_at_two_sites_is_refused_before_anything_is_staged() -> None:
    df = clean_data()
    df["scanner"] = np.where(np.arange(len(df)) % 2 == 0, "skyra", "prisma")
    sources = {
        s: DataFrameSource(
            s,
            part.assign(person_id=[f"{s}{i}" for i in range(len(part))]),
            {**SEX, "scanner": ["prisma", "skyra"]},
        )
        for s, part in (("a", df.iloc[:200]), ("b", df.iloc[200:]))
    }
    with pytest.raises(FedpsyError, match="more than one site") as err:
        run_combat(sources, batch="scanner")
    assert err.value.code == "request_invalid"


def test_a_small_batch_is_refused_and_no_site_keeps_values() -> None:
    sources = with_site_effects(clean_data(), weights=(1, 100, 100))
    with pytest.raises(SitesFailed) as err:
        run_request(
            sources,
            {"analysis": "combat", "variables": VARIABLES, "covariates": ["age", "sex"]},
            min_cell=5,
        )
    assert err.value.failures["site1"].code == "cell_too_small"
    for source in sources.values():
        with pytest.raises(FedpsyError):
            source.frame(NEW, "baseline", None)


def test_request_checks() -> None:
    sources = with_site_effects(clean_data())
    with pytest.raises(FedpsyError, match="at least 2 variables"):
        run_combat(sources, variables=["s1"])
    with pytest.raises(FedpsyError, match="named twice"):
        run_combat(sources, covariates=["age", "s1"])
    with pytest.raises(FedpsyError, match="ref_batch"):
        run_combat(sources, ref_batch="nowhere")
    one = run_combat(sources, variables=["s1"], eb=False)
    assert one.new_variables == ["s1_combat"]
