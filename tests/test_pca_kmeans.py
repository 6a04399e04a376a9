"""PCA, k-means and Gaussian mixtures over unequal sites equal scikit-learn on pooled rows.

Real data shipped with scikit-learn (wine, iris, breast cancer), split into 3 unequal sites
with different case mix. Per-person outputs (scores, cluster labels) stay at the nodes; the
privacy tests check that nothing leaving a node describes fewer than the minimum persons.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import load_breast_cancer
from sklearn.decomposition import PCA
from sklearn.mixture import GaussianMixture

from coordinator.analyses.registry import run_analysis
from coordinator.federation.failures import SitesFailed
from node.data.frame_memory import DataFrameSource
from schemas.analyses import parse_request
from schemas.analyses.gmm import GmmResult
from schemas.analyses.kmeans import KmeansResult
from schemas.analyses.pca import PcaResult
from schemas.clustering import CHUNK_ROWS, cluster_sums, nearest
from schemas.errors import FedpsyError
from tests.support.datasets import iris, wine
from tests.support.federation import InProcessFederation, pooled, run_request, split_sites

Array = npt.NDArray[np.float64]
WINE = [
    "alcohol",
    "malic_acid",
    "ash",
    "magnesium",
    "flavanoids",
    "color_intensity",
    "proline",
    "hue",
]
IRIS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
CULTIVAR = {"cultivar": ["c0", "c1", "c2"]}
SPECIES = {"species": ["setosa", "versicolor", "virginica"]}
MIN = 5


def wine_sites() -> dict[str, DataFrameSource]:
    return split_sites(wine(), [5, 2, 3], seed=11, sort_by="proline", categories=CULTIVAR)


def iris_sites() -> dict[str, DataFrameSource]:
    return split_sites(iris(), [2, 3, 5], seed=3, sort_by="petal_length", categories=SPECIES)


def iris_mixed_sites() -> dict[str, DataFrameSource]:
    """Unequal sites with every species at each (a gate can pass every iteration)."""
    return split_sites(iris(), [2, 3, 5], seed=3, categories=SPECIES)


def rows_of(sources: Mapping[str, DataFrameSource], variables: list[str]) -> Array:
    return pooled(sources, variables)[variables].to_numpy(dtype=np.float64)


def aligned(ours: Array, theirs: Array) -> Array:
    """``ours`` with each row's sign flipped to match ``theirs``."""
    signs = np.sign(np.sum(ours * theirs, axis=1))
    return np.asarray(ours * signs[:, None], dtype=np.float64)


def run(sources: Mapping[str, DataFrameSource], **request: Any) -> Any:
    result, _, _ = run_request(sources, request)
    return result


# ---- PCA ---------------------------------------------------------------------------


def test_pca_of_the_correlation_matrix_equals_sklearn_on_standardized_rows() -> None:
    sources = wine_sites()
    result = run(sources, analysis="pca", variables=WINE, scale=True)
    assert isinstance(result, PcaResult)
    x = rows_of(sources, WINE)
    z = (x - x.mean(axis=0)) / x.std(axis=0, ddof=1)
    ref = PCA().fit(z)
    got = np.asarray(result.components)
    np.testing.assert_allclose(
        aligned(got, ref.components_), ref.components_, rtol=1e-8, atol=1e-12
    )
    np.testing.assert_allclose(result.explained_variance, ref.explained_variance_, rtol=1e-8)
    np.testing.assert_allclose(
        result.explained_variance_ratio, ref.explained_variance_ratio_, rtol=1e-8
    )
    np.testing.assert_allclose(result.mean, x.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(result.sd, x.std(axis=0, ddof=1), rtol=1e-10)
    assert result.n == len(x) == 178 and result.new_variables == [] and result.run_id is None
    # the same sign rule as scikit-learn: each component's largest loading is positive
    assert all(row[np.argmax(np.abs(row))] > 0 for row in got)


def test_pca_of_the_covariance_matrix_with_missing_values() -> None:
    data = load_breast_cancer(as_frame=True).frame
    columns = {c: c.replace(" ", "_") for c in data.columns}
    df = data.rename(columns=columns)
    variables = [
        "mean_radius",
        "mean_texture",
        "mean_area",
        "mean_smoothness",
        "worst_area",
        "worst_concavity",
    ]
    rng = np.random.default_rng(2)
    for v in ("mean_texture", "worst_area"):
        df.loc[rng.random(len(df)) < 0.05, v] = np.nan
    sources = split_sites(df.drop(columns=["target"]), [1, 3, 2], seed=5, sort_by="mean_area")
    result = run(sources, analysis="pca", variables=variables, scale=False, n_components=3)
    assert isinstance(result, PcaResult)
    x = pooled(sources, variables)[variables].dropna().to_numpy()
    ref = PCA(n_components=3).fit(x)
    assert result.n == len(x) and result.missing == len(df) - len(x)
    np.testing.assert_allclose(
        aligned(np.asarray(result.components), ref.components_),
        ref.components_,
        rtol=1e-8,
        atol=1e-12,
    )
    np.testing.assert_allclose(result.explained_variance, ref.explained_variance_, rtol=1e-8)
    np.testing.assert_allclose(
        result.explained_variance_ratio, ref.explained_variance_ratio_, rtol=1e-8
    )


def test_pca_scores_stay_at_the_nodes() -> None:
    sources = wine_sites()
    result, _, federation = run_request(
        sources, {"analysis": "pca", "variables": WINE, "n_components": 3, "scores_prefix": "wine"}
    )
    assert isinstance(result, PcaResult)
    codes = ["wine_pc1", "wine_pc2", "wine_pc3"]
    assert result.new_variables == codes and result.run_id is not None
    x = rows_of(sources, WINE)
    ref = PCA(n_components=3).fit((x - x.mean(axis=0)) / x.std(axis=0, ddof=1))
    expected = ref.transform((x - x.mean(axis=0)) / x.std(axis=0, ddof=1))
    scores = rows_of(sources, codes)
    signs = np.sign(np.sum(scores * expected, axis=0))
    np.testing.assert_allclose(scores * signs, expected, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(scores.var(axis=0, ddof=1), result.explained_variance, rtol=1e-10)
    steps = [e.step.step for e in federation.log]
    assert steps == ["moments", "moments", "pca_scores", "commit_derived"]
    for exchange in federation.log[2:]:
        for part in exchange.results.values():
            assert set(part.model_dump()) <= {"n", "rows", "variables"}


def test_pca_needs_the_minimum_persons_at_every_site() -> None:
    df = wine()
    sources = split_sites(df, [170, 4, 4], seed=1, categories=CULTIVAR)
    assert len(sources["site2"].frame(["alcohol"], "baseline", None)) < MIN
    request = {"analysis": "pca", "variables": WINE, "scores_prefix": "w"}
    with pytest.raises(SitesFailed) as err:
        run_request(sources, request, min_rows=MIN, min_cell=MIN)
    assert {s: f.code for s, f in err.value.failures.items()} == {
        "site2": "cohort_too_small",
        "site3": "cohort_too_small",
    }
    for source in sources.values():  # no site kept scores of a refused run
        with pytest.raises(FedpsyError):
            source.frame(["w_pc1"], "baseline", None)
    result, _, federation = run_request(wine_sites(), request, min_rows=MIN, min_cell=MIN)
    assert isinstance(result, PcaResult) and result.n == len(df)
    for exchange in federation.log:
        for disclosure in exchange.disclosures.values():
            assert disclosure.rows >= MIN
            assert all(c == 0 or c >= MIN for c in disclosure.cells)


# ---- k-means -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("picks", "max_iter"), [((0, 60, 120), 300), ((5, 6, 7), 300), ((10, 80, 140), 2)]
)
def test_kmeans_from_given_centers_equals_sklearn_lloyd(
    picks: tuple[int, int, int], max_iter: int
) -> None:
    sources = iris_sites()
    x = rows_of(sources, IRIS)
    init = x[list(picks)]
    result = run(
        sources,
        analysis="kmeans",
        variables=IRIS,
        k=3,
        init=init.tolist(),
        max_iter=max_iter,
        labels_prefix="iris",
    )
    assert isinstance(result, KmeansResult)
    ref = KMeans(3, init=init, n_init=1, algorithm="lloyd", tol=0, max_iter=max_iter).fit(x)
    assert result.iterations == ref.n_iter_
    assert result.converged == (ref.n_iter_ < max_iter)
    np.testing.assert_allclose(np.asarray(result.centers), ref.cluster_centers_, rtol=1e-12)
    assert result.inertia == pytest.approx(ref.inertia_, rel=1e-12)
    assert result.sizes == np.bincount(ref.labels_, minlength=3).tolist()
    labels = pooled(sources, ["iris_cluster"])["iris_cluster"].astype(int).to_numpy() - 1
    np.testing.assert_array_equal(labels, ref.labels_)
    assert result.new_variables == ["iris_cluster"] and result.restarts == 1


def test_kmeans_seeded_from_site_candidates_finds_the_best_clustering() -> None:
    sources = wine_sites()
    x = rows_of(sources, WINE)
    z = (x - x.mean(axis=0)) / x.std(axis=0, ddof=1)
    frames = {s: src.frame(WINE, "baseline", None) for s, src in sources.items()}
    scaled = {
        s: DataFrameSource(
            s,
            ((f - x.mean(axis=0)) / x.std(axis=0, ddof=1)).assign(
                person_id=[f"{s}-{i}" for i in range(len(f))]
            ),
            {},
        )
        for s, f in frames.items()
    }
    result, _, federation = run_request(
        scaled,
        {"analysis": "kmeans", "variables": WINE, "k": 3, "seed": 4, "n_init": 3},
    )
    assert isinstance(result, KmeansResult)
    best = KMeans(3, n_init=20, random_state=0).fit(z)
    assert result.inertia == pytest.approx(best.inertia_, rel=1e-9)
    assert sorted(s for s in result.sizes if s is not None) == sorted(
        np.bincount(best.labels_).tolist()
    )
    again, _, _ = run_request(
        scaled, {"analysis": "kmeans", "variables": WINE, "k": 3, "seed": 4, "n_init": 3}
    )
    assert again == result  # reproducible from the seed
    candidates = [e for e in federation.log if e.step.step == "kmeans_candidates"]
    assert len(candidates) == 1 and result.restarts == 3
    for exchange in candidates:
        for site, part in exchange.results.items():
            assert all(size >= MIN for size in part.model_dump()["sizes"])
            assert exchange.disclosures[site].cells == tuple(part.model_dump()["sizes"])


def _iris_with_outliers() -> tuple[dict[str, DataFrameSource], Array]:
    df = iris()
    extra = pd.DataFrame(
        {
            "sepal_length": [12.0, 12.2],
            "sepal_width": [9.0, 9.1],
            "petal_length": [12.0, 12.1],
            "petal_width": [6.0, 6.2],
            "species": ["virginica", "virginica"],
        }
    )
    sources = split_sites(
        pd.concat([df, extra], ignore_index=True),
        [2, 3, 5],
        seed=3,
        sort_by="petal_length",
        categories=SPECIES,
    )
    x = rows_of(sources, IRIS)
    init = np.vstack([x[0], x[60], extra[IRIS].to_numpy()[0]])
    return sources, init


def test_kmeans_never_discloses_a_small_cluster() -> None:
    sources, init = _iris_with_outliers()
    request = {"analysis": "kmeans", "variables": IRIS, "k": 3, "init": init.tolist()}
    with pytest.raises(SitesFailed) as err:
        run_request(sources, request, min_cell=MIN)
    assert {f.code for f in err.value.failures.values()} == {"cell_too_small"}
    # without a gate at the nodes the result still suppresses the two-person cluster
    result = run(sources, **request)
    assert isinstance(result, KmeansResult)
    assert result.sizes.count(None) == 1 and result.centers.count(None) == 1
    assert all(s is None or s >= MIN for s in result.sizes)


def test_every_kmeans_exchange_respects_the_minimum_cell() -> None:
    sources = iris_mixed_sites()
    frame = pooled(sources, [*IRIS, "species"])
    shift = np.array([-0.3, -0.3, -0.3, 0.3])
    init = frame.groupby("species", observed=True)[IRIS].mean().to_numpy() + shift
    federation = InProcessFederation(sources, min_cell=MIN, min_rows=MIN)
    request = parse_request(
        {
            "analysis": "kmeans",
            "variables": IRIS,
            "k": 3,
            "init": init.tolist(),
            "labels_prefix": "grp",
        }
    )
    result = asyncio.run(run_analysis(request, federation))[0]
    assert isinstance(result, KmeansResult) and result.iterations > 2
    ref = KMeans(3, init=init, n_init=1, algorithm="lloyd", tol=0).fit(rows_of(sources, IRIS))
    np.testing.assert_allclose(np.asarray(result.centers), ref.cluster_centers_, rtol=1e-12)
    for exchange in federation.log:
        for disclosure in exchange.disclosures.values():
            assert disclosure.rows >= MIN
            assert all(c == 0 or c >= MIN for c in disclosure.cells)


def test_biotypes_from_pca_scores_kept_at_the_nodes() -> None:
    """PCA scores stored at the nodes, then clustered there: the usual biotyping chain."""
    sources = wine_sites()
    run(sources, analysis="pca", variables=WINE, n_components=2, scores_prefix="bio")
    scores = rows_of(sources, ["bio_pc1", "bio_pc2"])
    init = scores[[3, 90, 150]]
    result = run(
        sources,
        analysis="kmeans",
        variables=["bio_pc1", "bio_pc2"],
        k=3,
        init=init.tolist(),
        labels_prefix="biotype",
    )
    ref = KMeans(3, init=init, n_init=1, algorithm="lloyd", tol=0).fit(scores)
    np.testing.assert_allclose(np.asarray(result.centers), ref.cluster_centers_, rtol=1e-12)
    labels = pooled(sources, ["biotype_cluster", "cultivar"])
    np.testing.assert_array_equal(labels["biotype_cluster"].astype(int) - 1, ref.labels_)
    table = pd.crosstab(labels["biotype_cluster"], labels["cultivar"])
    assert (table.max(axis=1) / table.sum(axis=1)).min() > 0.8  # biotypes track cultivars


# ---- Gaussian mixture -----------------------------------------------------------------


def _species_start(sources: Mapping[str, DataFrameSource]) -> dict[str, Any]:
    frame = pooled(sources, [*IRIS, "species"])
    groups = [frame[frame["species"] == s][IRIS].to_numpy() for s in SPECIES["species"]]
    return {
        "weights": [0.2, 0.3, 0.5],
        "means": [(g.mean(axis=0) + 0.3).tolist() for g in groups],
        "covariances": [(np.cov(g.T) * 1.5).tolist() for g in groups],
    }


def test_gmm_from_given_start_equals_sklearn() -> None:
    sources = iris_sites()
    x = rows_of(sources, IRIS)
    init = _species_start(sources)
    result = run(sources, analysis="gmm", variables=IRIS, k=3, init=init, labels_prefix="mix")
    assert isinstance(result, GmmResult)
    ref = GaussianMixture(
        3,
        covariance_type="full",
        weights_init=init["weights"],
        means_init=init["means"],
        precisions_init=np.linalg.inv(np.asarray(init["covariances"])),
    ).fit(x)
    assert result.iterations == ref.n_iter_ and result.converged == ref.converged_
    np.testing.assert_allclose(result.weights, ref.weights_, rtol=1e-8)
    np.testing.assert_allclose(result.means, ref.means_, rtol=1e-8)
    np.testing.assert_allclose(result.covariances, ref.covariances_, rtol=1e-8, atol=1e-12)
    assert result.lower_bound == pytest.approx(ref.lower_bound_, rel=1e-10)
    assert result.log_likelihood == pytest.approx(ref.score(x), rel=1e-10)
    assert result.bic == pytest.approx(ref.bic(x), rel=1e-10)
    assert result.aic == pytest.approx(ref.aic(x), rel=1e-10)
    labels = pooled(sources, ["mix_cluster"])["mix_cluster"].astype(int).to_numpy() - 1
    np.testing.assert_array_equal(labels, ref.predict(x))


def test_gmm_chooses_k_by_bic() -> None:
    sources = iris_sites()
    x = rows_of(sources, IRIS)
    result = run(sources, analysis="gmm", variables=IRIS, k=[1, 2, 3, 4], seed=2)
    assert isinstance(result, GmmResult)
    assert set(result.bic_by_k) == {"1", "2", "3", "4"}
    assert result.bic == min(result.bic_by_k.values()) == result.bic_by_k[str(result.k)]
    # the BIC of the chosen fit is scikit-learn's for the same parameters
    ref = GaussianMixture(result.k, covariance_type="full")
    ref.weights_ = np.asarray(result.weights)
    ref.means_ = np.asarray(result.means)
    ref.covariances_ = np.asarray(result.covariances)
    ref.precisions_cholesky_ = np.linalg.cholesky(np.linalg.inv(ref.covariances_))
    assert result.bic == pytest.approx(ref.bic(x), rel=1e-10)
    chosen = min(
        range(1, 5),
        key=lambda k: (
            GaussianMixture(k, covariance_type="full", n_init=5, random_state=0).fit(x).bic(x)
        ),
    )
    assert result.k == chosen == 2  # iris's two well-separated groups


def test_gmm_exchanges_respect_the_minimum_cell() -> None:
    sources = iris_mixed_sites()
    init = _species_start(sources)
    result, _, federation = run_request(
        sources,
        {"analysis": "gmm", "variables": IRIS, "k": 3, "init": init},
        min_cell=MIN,
        min_rows=MIN,
    )
    assert isinstance(result, GmmResult)
    for exchange in federation.log:
        for disclosure in exchange.disclosures.values():
            assert all(c == 0 or c >= MIN for c in disclosure.cells)


def test_cluster_request_checks() -> None:
    sources = iris_sites()
    with pytest.raises(FedpsyError, match="init"):
        run(sources, analysis="kmeans", variables=IRIS, k=3, init=[[1.0, 2.0]])
    with pytest.raises(FedpsyError, match="fewer than k"):
        run(sources, analysis="kmeans", variables=IRIS, k=40, min_size=10, candidates=3)
    with pytest.raises(FedpsyError, match="k:"):
        run(sources, analysis="gmm", variables=IRIS, k=[2, 2])


def test_nearest_in_blocks_and_cluster_sums_equal_the_whole_computation() -> None:
    """Rows spanning several of ``nearest``'s blocks get the labels of one product over
    all rows, and ``cluster_sums`` adds exactly as ``np.add.at`` does."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2 * CHUNK_ROWS + 123, 3)) * [10.0, 1.0, 100.0]
    centers = x[rng.choice(len(x), 7, replace=False)]
    whole = np.argmin((centers * centers).sum(axis=1)[None, :] - 2.0 * (x @ centers.T), axis=1)
    labels = nearest(x, centers)
    assert np.array_equal(labels, whole) and len(np.unique(labels)) == 7
    expected = np.zeros((8, 3))
    np.add.at(expected, labels, x)
    assert np.array_equal(cluster_sums(x, labels, 8), expected)  # an empty eighth cluster
