"""Visit schedule: which of baseline, week2, week6, week12, week26 each person attends, and when.

Everyone has a baseline visit on day 0. Patients then continue from visit to visit with
the probabilities of :data:`fedpsy.synth.assumptions.CONTINUE_PROB` (scaled by the site's
retention) and skip a single visit now and then; days scatter around the nominal day.
Healthy controls come at baseline and, some of them, at week 26 for a repeat scan.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from fedpsy.synth import assumptions as A
from fedpsy.synth.persons import Cohort

N_VISITS = len(A.VISITS)
HC_REPEAT_SHARE = 0.3


@dataclass(frozen=True)
class Schedule:
    """Visits of one cohort: ``present[i, v]`` and ``day[i, v]`` (day is 0 where absent)."""

    present: NDArray[np.bool_]
    day: NDArray[np.int64]

    @property
    def last_index(self) -> NDArray[np.int64]:
        """Index of each person's latest attended visit."""
        reversed_first = np.argmax(self.present[:, ::-1], axis=1)
        return np.asarray(N_VISITS - 1 - reversed_first, dtype=np.int64)

    @property
    def last_day(self) -> NDArray[np.int64]:
        """Day of each person's latest attended visit."""
        rows = np.arange(self.present.shape[0])
        return np.asarray(self.day[rows, self.last_index], dtype=np.int64)


def make_schedule(rng: np.random.Generator, cohort: Cohort) -> Schedule:
    """Draw attendance (monotone dropout plus occasional missed visits) and visit days."""
    n = cohort.n
    cont = np.minimum(np.asarray(A.CONTINUE_PROB) * cohort.site.retention, 0.99)
    cont[0] = 1.0
    staying = np.cumprod(rng.random((n, N_VISITS)) < cont, axis=1).astype(bool)
    missed = rng.random((n, N_VISITS)) < A.MISSED_VISIT_PROB
    missed[:, 0] = False
    present = staying & ~missed
    control = cohort.has("HC")
    hc = np.zeros((n, N_VISITS), dtype=bool)
    hc[:, 0] = True
    hc[:, -1] = rng.random(n) < HC_REPEAT_SHARE
    present = np.where(control[:, None], hc, present)
    nominal = np.asarray(A.VISIT_DAYS, dtype=np.int64)
    jitter = np.asarray(A.VISIT_JITTER, dtype=np.int64)
    day = nominal + rng.integers(-jitter, jitter + 1, size=(n, N_VISITS))
    day = np.where(present, day, 0).astype(np.int64)
    return Schedule(present=present, day=day)
