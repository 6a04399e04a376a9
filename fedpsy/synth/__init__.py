"""Realistic, deterministic synthetic data for a multi-site psychiatric research consortium.

``generate`` writes one folder of CDM v1 ingest files per site (see CDM.md) and a README:
sites of unequal size and case mix (F20/F25, F31, F32/F33, healthy controls), drug
histories from which the node derives TRRIP treatment resistance (~30 % of F20/F25, a
third of them clozapine-resistant) and treatment-resistant depression (~35 % of F32/F33),
PANSS and QIDS-SR16 items with treatment trajectories (ketamine, esketamine, ECT, rTMS),
1H-MRS from site-specific scanners, and relapse/rehospitalization events. The figures and
their sources are in :mod:`fedpsy.synth.assumptions`.

The same seed gives byte-identical files; persons are generated in chunks of
:data:`CHUNK_PERSONS`, each from its own random stream.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

from fedpsy.synth.readme import write_readme
from fedpsy.synth.sites import SiteProfile, make_sites
from fedpsy.synth.tables import OBSERVATION_COLUMNS, make_chunk
from fedpsy.synth.writer import SiteWriter

__all__ = ["CHUNK_PERSONS", "generate"]

logger = logging.getLogger(__name__)

CHUNK_PERSONS = 20_000


def _site(
    site: SiteProfile, seed: int, out: Path, progress: Callable[[int], None] | None
) -> tuple[Path, Counter[str]]:
    folder = out / site.name
    counts: Counter[str] = Counter()
    with SiteWriter(folder, OBSERVATION_COLUMNS) as writer:
        for chunk_index, start in enumerate(range(0, site.n_persons, CHUNK_PERSONS)):
            n = min(CHUNK_PERSONS, site.n_persons - start)
            rng = np.random.default_rng([seed, site.index, chunk_index])
            chunk = make_chunk(rng, site, start, n)
            writer.append(chunk.tables)
            counts.update(chunk.counts)
            if progress is not None:
                progress(n)
        logger.info("synthetic site %s: %s", site.name, writer.rows())
    return folder, counts


def generate(
    sites: int,
    persons: int,
    seed: int,
    out: Path,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Path]:
    """Write a synthetic consortium of ``sites`` sites to ``out`` and return each site's folder.

    ``persons`` is the average site size (sizes vary 0.6×–1.4× and sum to sites × persons).
    ``progress(n)`` is called with the number of persons just finished (an increment, up
    to :data:`CHUNK_PERSONS` at a time; the calls add up to sites × persons). Raises
    :class:`schemas.errors.BadInput` for fewer than one site or person.
    """
    out = Path(out)
    profiles = make_sites(sites, persons, seed)
    out.mkdir(parents=True, exist_ok=True)
    folders: dict[str, Path] = {}
    counts: dict[str, Counter[str]] = {}
    for site in profiles:
        folders[site.name], counts[site.name] = _site(site, seed, out, progress)
    write_readme(out, profiles, counts, persons, seed)
    return folders
