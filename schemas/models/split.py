"""The deterministic split of a site's complete-case rows into train, validation and test.

Rows are permuted with a generator seeded by the request's seed, the site id and the
site's secret ``salt`` (a node derives it from its private identity key), so a site's
split is the same in every round and every run of the same request, differs between
sites, and cannot be predicted by whoever chose the seed: a researcher cannot aim a test
row at a person. ``test_fraction`` of the rows (rounded) are test rows (none when 0: then
the model is scored on its training rows); ``validation_fraction`` of the remaining rows
are validation rows for early stopping (at least one row stays for training).
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Index = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Split:
    """Row positions (into the complete-case design) of each part."""

    train: Index
    validation: Index
    test: Index


def split_rows(
    n: int,
    site: str,
    seed: int,
    test_fraction: float,
    validation_fraction: float,
    salt: bytes = b"",
) -> Split:
    """The split of ``n`` rows at ``site`` for ``seed`` (and the site's secret ``salt``)."""
    entropy = [seed, zlib.crc32(site.encode("utf-8"))]
    if salt:
        entropy.append(int.from_bytes(hashlib.sha256(salt).digest()[:16], "big"))
    rng = np.random.default_rng(entropy)
    order = rng.permutation(n).astype(np.int64)
    n_test = round(n * test_fraction)
    test, rest = np.sort(order[:n_test]), order[n_test:]
    n_val = min(round(len(rest) * validation_fraction), max(len(rest) - 1, 0))
    validation, train = np.sort(rest[:n_val]), np.sort(rest[n_val:])
    if n_test == 0:
        test = np.sort(train)
    return Split(train=train, validation=validation, test=test)


__all__ = ["Split", "split_rows"]
