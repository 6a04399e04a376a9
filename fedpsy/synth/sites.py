"""Site profiles: names, sizes, case mix, treatment services, rating habits and scanners.

Sites differ the way consortium members do: a psychosis service enrols mostly F20/F25, a
mood-disorder centre mostly F32/F33 and offers esketamine and rTMS, sizes differ by up to
a factor of two, and every site has one or two MR scanners with their own calibration
(see :mod:`fedpsy.synth.assumptions`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from schemas.errors import BadInput

CITIES: tuple[str, ...] = (
    "amsterdam",
    "berlin",
    "copenhagen",
    "dublin",
    "edinburgh",
    "florence",
    "geneva",
    "helsinki",
    "istanbul",
    "lisbon",
)
DIAGNOSES: tuple[str, ...] = ("F20", "F25", "F31", "F32", "F33", "HC")
ARMS: tuple[str, ...] = ("pharmacotherapy", "ect", "ketamine", "esketamine", "rtms")
RTMS_PROTOCOLS: tuple[str, ...] = ("hf_rtms", "lf_rtms", "itbs", "dtms")

# archetype: (case mix over DIAGNOSES, weights of ARMS for TRD patients)
ARCHETYPES: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "psychosis": ((0.45, 0.12, 0.08, 0.08, 0.07, 0.20), (0.35, 0.35, 0.15, 0.15, 0.0)),
    "mixed": ((0.25, 0.07, 0.12, 0.20, 0.18, 0.18), (0.25, 0.25, 0.20, 0.15, 0.15)),
    "mood": ((0.08, 0.04, 0.15, 0.30, 0.28, 0.15), (0.20, 0.20, 0.20, 0.20, 0.20)),
    "neuromodulation": ((0.10, 0.04, 0.10, 0.30, 0.31, 0.15), (0.15, 0.20, 0.10, 0.15, 0.40)),
}
ARCHETYPE_CYCLE: tuple[str, ...] = ("psychosis", "mixed", "mood", "psychosis", "neuromodulation")

# model, vendor, field strength (T), TE (ms) of the short-TE sequence
SCANNER_MODELS: tuple[tuple[str, str, float, float], ...] = (
    ("prisma", "Siemens", 3.0, 30.0),
    ("skyra", "Siemens", 3.0, 30.0),
    ("mr750", "GE", 3.0, 35.0),
    ("premier", "GE", 3.0, 35.0),
    ("ingenia", "Philips", 3.0, 32.0),
    ("achieva", "Philips", 3.0, 32.0),
)
SEVEN_TESLA = ("terra", "Siemens", 7.0, 5.0)
MEGA_PRESS_TE_MS = 68.0
N_METABOLITES_MEASURED = 4  # Glu, Gln, NAA, GABA (Glx is their sum)


@dataclass(frozen=True)
class Scanner:
    """One MR scanner and its calibration relative to the true concentrations.

    A measured value is ``scale[m] * true + shift_sd[m] * sd[m]`` for metabolite ``m`` in
    (Glu, Gln, NAA, GABA), with ``sd[m]`` the between-person SD of that metabolite.
    """

    scanner_id: str
    vendor: str
    field_strength_t: float
    te_ms: float
    gaba_te_ms: float
    share: float
    scale: tuple[float, ...]
    shift_sd: tuple[float, ...]


@dataclass(frozen=True)
class SiteProfile:
    """Everything that makes one synthetic site differ from another."""

    name: str
    prefix: str
    index: int
    n_persons: int
    archetype: str
    case_mix: tuple[float, ...]
    arm_weights: tuple[float, ...]
    rtms_protocols: tuple[str, ...]
    rates_hamd: bool
    rates_madrs: bool
    rates_bprs: bool
    retention: float
    mrs_share: float
    scanners: tuple[Scanner, ...]


def site_name(index: int) -> str:
    """The site id of the ``index``-th site (0-based): a city, then ``site11``, ``site12``…"""
    return CITIES[index] if index < len(CITIES) else f"site{index + 1}"


def site_prefix(index: int) -> str:
    """The person-id prefix of the ``index``-th site: ``AMS``, ``BER``…, then ``S11``…"""
    return CITIES[index][:3].upper() if index < len(CITIES) else f"S{index + 1}"


def site_sizes(n_sites: int, persons: int, rng: np.random.Generator) -> list[int]:
    """Unequal site sizes (0.6×–1.4× the average ``persons``) summing to n_sites × persons."""
    total = n_sites * persons
    factors = np.linspace(0.6, 1.4, n_sites) if n_sites > 1 else np.ones(1)
    factors = rng.permutation(factors)
    exact = factors / factors.sum() * total
    sizes = np.floor(exact).astype(np.int64)
    short = total - int(sizes.sum())
    order = np.argsort(-(exact - sizes), kind="stable")
    sizes[order[:short]] += 1
    return [int(s) for s in sizes]


def _scanner(
    site: str, model: tuple[str, str, float, float], share: float, rng: np.random.Generator
) -> Scanner:
    name, vendor, field, te = model
    common = rng.uniform(0.85, 1.15)
    scale = tuple(round(float(common * rng.normal(1.0, 0.05)), 4) for _ in range(4))
    shift = tuple(round(float(rng.normal(0.0, 0.3)), 4) for _ in range(4))
    return Scanner(
        scanner_id=f"{site}-{name}-{int(field)}T",
        vendor=vendor,
        field_strength_t=field,
        te_ms=te,
        gaba_te_ms=te if field >= 7.0 else MEGA_PRESS_TE_MS,
        share=share,
        scale=scale,
        shift_sd=shift,
    )


def _scanners(site: str, rng: np.random.Generator) -> tuple[Scanner, ...]:
    models = [SCANNER_MODELS[i] for i in rng.permutation(len(SCANNER_MODELS))]
    if rng.random() < 0.6:
        return (_scanner(site, models[0], 1.0, rng),)
    second = SEVEN_TESLA if rng.random() < 0.4 else models[1]
    share = round(float(rng.uniform(0.3, 0.5)), 2)
    return (_scanner(site, models[0], 1.0 - share, rng), _scanner(site, second, share, rng))


def _jitter(
    base: tuple[float, ...], rng: np.random.Generator, concentration: float
) -> tuple[float, ...]:
    weights = np.asarray(base, dtype=float)
    out = np.zeros_like(weights)
    keep = weights > 0
    out[keep] = rng.dirichlet(weights[keep] * concentration)
    return tuple(float(x) for x in out / out.sum())


def make_site(index: int, n_persons: int, rng: np.random.Generator) -> SiteProfile:
    """The profile of the ``index``-th site, drawn from ``rng`` around its archetype."""
    name = site_name(index)
    archetype = ARCHETYPE_CYCLE[index % len(ARCHETYPE_CYCLE)]
    mix, arms = ARCHETYPES[archetype]
    protocols = tuple(p for p in RTMS_PROTOCOLS if p in ("hf_rtms", "itbs") or rng.random() < 0.35)
    hamd = bool(rng.random() < 0.7)
    return SiteProfile(
        name=name,
        prefix=site_prefix(index),
        index=index,
        n_persons=n_persons,
        archetype=archetype,
        case_mix=_jitter(mix, rng, 300.0),
        arm_weights=_jitter(arms, rng, 200.0),
        rtms_protocols=protocols,
        rates_hamd=hamd,
        rates_madrs=(not hamd) or bool(rng.random() < 0.6),
        rates_bprs=bool(rng.random() < 0.5),
        retention=round(float(rng.uniform(0.95, 1.03)), 3),
        mrs_share=round(float(rng.uniform(0.25, 0.6)), 2),
        scanners=_scanners(name, rng),
    )


def make_sites(n_sites: int, persons: int, seed: int) -> list[SiteProfile]:
    """Profiles of ``n_sites`` sites averaging ``persons`` persons, deterministic in ``seed``."""
    if n_sites < 1:
        raise BadInput(f"--sites is {n_sites}; give at least 1 site")
    if persons < 1:
        raise BadInput(f"--persons is {persons}; give at least 1 person per site")
    rng = np.random.default_rng([seed, 0x5175])
    sizes = site_sizes(n_sites, persons, rng)
    return [make_site(i, sizes[i], np.random.default_rng([seed, 0x51E, i])) for i in range(n_sites)]
