"""Differential privacy at the node: sensitivity, Gaussian noise, calibration (OpenDP).

Mechanism: the Gaussian mechanism on the released vector (all summed numbers of a step
result), with standard deviation ``σ`` calibrated by OpenDP to (``ε``, ``δ``) for the
vector's L2 sensitivity ``Δ`` — OpenDP's Gaussian measurement is ρ-zCDP with ``ρ =
Δ²/(2σ²)`` (Bun & Steinke, TCC 2016) and is converted to (ε, δ) exactly
(``make_zCDP_to_approxDP``, Canonne, Kamath & Steinke 2020); ``σ`` is found by binary
search. Samples come from OpenDP's ``make_gaussian`` (exact sampling, no floating-point
attack surface; Mironov, CCS 2012).

Calibration: a cleartext release carries the full noise (``local``). Under secure
aggregation the coordinator only sees the sum over ``n`` sites, so each site adds
``N(0, σ²/n)`` and the sum carries ``N(0, σ²)`` (``distributed``; Kairouz, Liu &
Steinke, ICML 2021, for the idea). This assumes the other sites add their share: a site
that colludes with the coordinator and adds none lowers the noise to ``σ²(n−1)/n``.

Neighbouring data sets differ by one person (add or remove). Sensitivities: a count, a
histogram and a contingency table change in one cell by 1 (``Δ = 1``); moments need each
variable's range from the data dictionary (values are checked against it at ingest) and
``Δ² = 2 + k + Σ B_v² + Σ B_v⁴ + Σ_vw B_v² B_w²`` with ``B_v = max |x_v − c_v| / s_v`` over
the range (total, missing, the ``k`` counts, sums, squares, cross-products; ``+ Σ B_v⁶ +
Σ B_v⁸`` with the cubes and fourth powers of skewness and kurtosis). Other steps
(models) have no bounded sensitivity here and are refused (``dp_unsupported``).
"""

from __future__ import annotations

import functools
import logging
import math
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

from schemas.dictionary.model import Dictionary
from schemas.errors import ErrorCode, FedpsyError
from schemas.steps.base import StepBase
from schemas.steps.moments import MomentsStep

logger = logging.getLogger(__name__)

COUNTING_STEPS = ("count", "histogram", "crosstab")


def _unsupported(detail: str) -> FedpsyError:
    return FedpsyError(detail, code=ErrorCode.DP_UNSUPPORTED)


def _bound(dictionary: Dictionary, code: str, centers: list[float]) -> float:
    variable = dictionary.get(code)
    if variable.type == "binary":
        low, high = 0.0, 1.0
    elif variable.min is None or variable.max is None:
        raise _unsupported(
            f"variable {code!r} has no range in the data dictionary; noise "
            "for its sums needs a minimum and a maximum"
        )
    else:
        low, high = float(variable.min), float(variable.max)
    return max(max(abs(low - c), abs(high - c)) for c in centers or [0.0])


def sensitivity(step: StepBase, dictionary: Dictionary) -> float:
    """The L2 sensitivity of ``step``'s released vector to one person."""
    if step.step in COUNTING_STEPS:
        return 1.0
    if isinstance(step, MomentsStep):
        groups = len(step.center or step.scale or [[]])
        centers = step.center or [[0.0] * len(step.variables)] * groups
        scales = step.scale or [[1.0] * len(step.variables)] * groups
        bounds = np.array(
            [
                max(
                    _bound(dictionary, v, [row[i]]) / scale[i]
                    for row, scale in zip(centers, scales, strict=True)
                )
                for i, v in enumerate(step.variables)
            ]
        )
        squared = 2.0 + len(bounds) + float(np.sum(bounds**2))
        if step.products:
            squared += float(np.sum(bounds**4))
            if step.complete_cases:
                squared += float(np.sum(np.outer(bounds**2, bounds**2)))
        if step.higher:
            chosen = bounds[[step.variables.index(v) for v in step.higher]]
            squared += float(np.sum(chosen**6) + np.sum(chosen**8))
        return math.sqrt(squared)
    raise _unsupported(
        f"step {step.step!r} has no differential privacy mechanism at this "
        "site; only counts, histograms, contingency tables and moments do"
    )


def _opendp() -> ModuleType:
    import opendp.prelude as dp

    dp.enable_features("contrib")
    return dp


def _space(size: int) -> tuple[Any, Any]:
    dp = _opendp()
    return (
        dp.vector_domain(dp.atom_domain(T=float, nan=False), size=size),
        dp.l2_distance(T=float),
    )


def _epsilon(unit_sigma: float, delta: float) -> float:
    """ε at ``delta`` of OpenDP's Gaussian measurement with Δ = 1 and σ = ``unit_sigma``."""
    dp = _opendp()
    space = _space(1)
    measurement = dp.c.make_zCDP_to_approxDP(dp.m.make_gaussian(*space, scale=unit_sigma))
    try:
        return float(measurement.map(1.0).epsilon(delta))
    except dp.OpenDPException:  # the conversion overflows for tiny σ: far from private
        return math.inf


@functools.lru_cache(maxsize=64)
def unit_sigma(epsilon: float, delta: float) -> float:
    """σ for L2 sensitivity 1 at (ε, δ), rounded up: bisection on OpenDP's exact
    zCDP → (ε, δ) conversion, bracketed by the looser Bun–Steinke conversion ``ε = ρ +
    2√(ρ ln(1/δ))`` (its σ is always private enough). σ for sensitivity Δ is Δ times this.
    """
    log_term = math.log(1.0 / delta)
    rho = (math.sqrt(log_term + epsilon) - math.sqrt(log_term)) ** 2
    high = 1.0 / math.sqrt(2.0 * rho)
    low = high / 2.0
    while _epsilon(low, delta) <= epsilon:
        high, low = low, low / 2.0
    for _ in range(30):
        middle = math.sqrt(low * high)
        if _epsilon(middle, delta) <= epsilon:
            high = middle
        else:
            low = middle
    return high


def gaussian_sigma(sens: float, epsilon: float, delta: float) -> float:
    """The σ making the Gaussian mechanism (ε, δ)-DP for L2 sensitivity ``sens``."""
    return 0.0 if sens <= 0 else sens * unit_sigma(epsilon, delta)


def add_noise(vector: npt.NDArray[np.float64], sigma: float) -> npt.NDArray[np.float64]:
    """``vector`` plus independent N(0, σ²) noise per element (OpenDP's sampler)."""
    values = np.asarray(vector, dtype=np.float64)
    if sigma <= 0 or values.size == 0:
        return values.copy()
    dp = _opendp()
    measurement = dp.m.make_gaussian(*_space(values.size), scale=sigma)
    return np.asarray(measurement([float(v) for v in values]), dtype=np.float64)


def node_sigma(total_sigma: float, participants: int, secure: bool) -> float:
    """This node's share of the noise: all of it in the clear, 1/n of the variance when
    only the sum over ``participants`` sites is seen."""
    return total_sigma / math.sqrt(participants) if secure else total_sigma
