"""Attack class 4: training with a test split of one row.

``train`` splits each site's rows by a published algorithm seeded by the request's
``seed`` and the site id, so the attacker can choose a seed that puts one chosen row —
the target's, given its rank in the site's (sequential, enrolment-ordered) pseudonymous
ids — alone in a site's test set (``test_fraction`` 0.01 of 100 rows). The per-site test
metrics of that site are then one person's: with the released model,
``brier = (p − y)²`` gives the target's outcome ``y``.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest

from tests.attacks.support import (
    MIN_COHORT,
    TARGET,
    Consortium,
    SiteData,
    assert_details_clean,
    coefficient,
    ok,
)

pytestmark = pytest.mark.xdist_group("attacks")

TEST_FRACTION = 0.01


def published_test_rows(n: int, site: str, seed: int, test_fraction: float) -> list[int]:
    """The test rows of the split as the code published it (the attacker's knowledge)."""
    rng = np.random.default_rng([seed, zlib.crc32(site.encode("utf-8"))])
    order = rng.permutation(n)
    return sorted(int(i) for i in order[: round(n * test_fraction)])


def test_one_row_test_split_does_not_reveal_the_outcome(
    fresh: Consortium, site_data: dict[str, SiteData]
) -> None:
    """Class 4, training on tiny test splits. ``train ketamine ~ age`` with
    ``test_fraction`` 0.01 and a seed that puts the target alone in site ``a``'s test set;
    from the released coefficients ``p = σ(b0 + b1·41)`` and site ``a``'s test Brier score
    ``(p − y)²`` the target's ketamine use ``y`` follows. Stopped by: an unpredictable split,
    and per-site test/validation rows and positives/negatives of at least min_cohort, else
    ``split_too_small``."""
    ids = sorted(site_data[TARGET.site].person["person_id"])
    rank = ids.index(TARGET.person_id)
    seed = next(
        s
        for s in range(100_000)
        if published_test_rows(len(ids), TARGET.site, s, TEST_FRACTION) == [rank]
    )
    envelope = fresh.run(
        {
            "analysis": "train",
            "formula": "ketamine ~ age",
            "test_fraction": TEST_FRACTION,
            "seed": seed,
            "rounds": 2,
        }
    )

    estimate = None
    small: dict[str, int] = {}
    if ok(envelope):
        metrics = envelope["result"]["metrics"]["per_site"]
        local = envelope["result"]["local_only"]
        small = {
            f"{kind}:{s}": m["n"]
            for kind, table in (("metrics", metrics), ("local_only", local))
            for s, m in table.items()
            if 0 < m["n"] < MIN_COHORT
        }
        mine = metrics.get(TARGET.site)
        if mine is not None and mine["n"] == 1 and mine["brier"] is not None:
            logit = coefficient(envelope, "Intercept") + coefficient(envelope, "age") * TARGET.age
            p = 1.0 / (1.0 + math.exp(-logit))
            brier = float(mine["brier"])
            estimate = 1.0 if abs(brier - (1 - p) ** 2) < abs(brier - p**2) else 0.0

    assert estimate != TARGET.ketamine, (
        f"the target's ketamine use recovered from a one-row test split (seed {seed})"
    )
    assert small == {}, f"per-site test metrics over fewer than {MIN_COHORT} rows: {small}"
    assert_details_clean(fresh.log)
