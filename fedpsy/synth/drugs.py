"""Drug tables and the building blocks of drug histories: doses, trial quality, row emission.

Doses follow the WHO ATC/DDD table the node uses (PHENOTYPES.md): for antipsychotics an
"adequate" dose is >= 600 mg/day chlorpromazine equivalents, i.e. >= 2 DDD (olanzapine
20 mg = 20 / 10 × 300 = 600); the "near-miss" doses are the usual step below (olanzapine
15 mg = 450). For antidepressants adequate is >= 1 DDD and near-miss one step below.
Every adequate dose is a whole multiple of its DDD or larger, so 600 stays exactly 600.

A trial has a *quality*: adequate, short (a few days under the minimum duration), low
dose, low adherence (0.50–0.79) or no adherence record (so not adequate under TRRIP).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.typing import NDArray

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]

ADEQUATE, SHORT, LOW_DOSE, LOW_ADHERENCE, NO_ADHERENCE = 0, 1, 2, 3, 4
NOT_SHORT = (LOW_DOSE, LOW_ADHERENCE, NO_ADHERENCE)

DDD_MG: dict[str, float] = {
    "chlorpromazine": 300,
    "haloperidol": 8,
    "risperidone": 5,
    "olanzapine": 10,
    "quetiapine": 400,
    "aripiprazole": 15,
    "ziprasidone": 80,
    "amisulpride": 400,
    "paliperidone": 6,
    "lurasidone": 60,
    "clozapine": 300,
    "perphenazine": 30,
    "flupentixol": 6,
    "zuclopenthixol": 30,
    "sulpiride": 800,
    "cariprazine": 3,
    "sertraline": 50,
    "fluoxetine": 20,
    "paroxetine": 20,
    "citalopram": 20,
    "escitalopram": 10,
    "venlafaxine": 100,
    "duloxetine": 60,
    "mirtazapine": 30,
    "bupropion": 300,
    "amitriptyline": 75,
    "nortriptyline": 75,
    "clomipramine": 100,
    "vortioxetine": 10,
    "agomelatine": 25,
    "trazodone": 300,
    "fluvoxamine": 100,
    "imipramine": 100,
}

# drug: (relative use, adequate doses, near-miss doses, maintenance doses) in mg/day
ANTIPSYCHOTICS: dict[str, tuple[float, tuple[float, ...], tuple[float, ...], tuple[float, ...]]] = {
    "olanzapine": (3.0, (20, 25, 30), (15, 17.5), (10, 15, 20)),
    "risperidone": (1.0, (10,), (6, 8), (3, 4, 6)),
    "aripiprazole": (2.0, (30,), (20, 25), (10, 15, 20)),
    "quetiapine": (1.5, (800,), (600, 700), (400, 600)),
    "haloperidol": (1.5, (16, 20), (10, 15), (5, 10)),
    "amisulpride": (2.0, (800, 1000, 1200), (600, 750), (400, 600)),
    "paliperidone": (1.0, (12,), (9,), (6, 9)),
    "ziprasidone": (0.7, (160,), (120, 140), (80, 120)),
    "lurasidone": (0.7, (120, 160), (74, 111), (74, 111)),
    "zuclopenthixol": (0.7, (60, 75), (40, 50), (20, 40)),
    "perphenazine": (0.5, (60, 64), (48, 56), (16, 32)),
    "flupentixol": (0.6, (12, 15), (8, 10), (3, 6)),
    "cariprazine": (0.6, (6,), (4.5,), (3, 4.5)),
    "chlorpromazine": (0.4, (600, 800), (400, 500), (300, 400)),
}
ANTIDEPRESSANTS: dict[
    str, tuple[float, tuple[float, ...], tuple[float, ...], tuple[float, ...]]
] = {
    "sertraline": (3.0, (50, 100, 150, 200), (25,), (50, 100)),
    "escitalopram": (3.0, (10, 15, 20), (5,), (10, 20)),
    "citalopram": (2.0, (20, 30, 40), (10,), (20, 40)),
    "fluoxetine": (1.5, (20, 40, 60), (10,), (20, 40)),
    "paroxetine": (1.0, (20, 30, 40), (10,), (20, 30)),
    "venlafaxine": (2.0, (150, 225, 300), (75,), (150, 225)),
    "duloxetine": (1.5, (60, 90, 120), (30,), (60, 90)),
    "mirtazapine": (1.5, (30, 45), (15,), (30, 45)),
    "bupropion": (1.0, (300, 450), (150,), (300,)),
    "vortioxetine": (1.0, (10, 15, 20), (5,), (10, 20)),
    "amitriptyline": (0.5, (75, 100, 150), (25, 50), (75, 100)),
    "nortriptyline": (0.5, (75, 100, 150), (50,), (75, 100)),
    "clomipramine": (0.5, (100, 150, 200), (50, 75), (100, 150)),
    "imipramine": (0.3, (100, 150), (50, 75), (100, 150)),
    "fluvoxamine": (0.3, (100, 150, 200), (50,), (100, 150)),
    "trazodone": (0.4, (300, 400), (100, 150), (300,)),
}


class DrugPool:
    """One class of drugs as arrays, for vectorized choice of drugs and doses."""

    def __init__(
        self,
        table: dict[str, tuple[float, tuple[float, ...], tuple[float, ...], tuple[float, ...]]],
    ) -> None:
        self.names = np.asarray(list(table), dtype=np.str_)
        self.weights = np.asarray([w for w, *_ in table.values()], dtype=float)
        rows = list(table.values())
        self._options = [
            self._pad([adequate for _, adequate, _, _ in rows]),
            self._pad([near for _, _, near, _ in rows]),
            self._pad([maintenance for _, _, _, maintenance in rows]),
        ]

    @staticmethod
    def _pad(options: list[tuple[float, ...]]) -> tuple[FloatArray, IntArray]:
        width = max(len(o) for o in options)
        grid = np.full((len(options), width), np.nan)
        for i, o in enumerate(options):
            grid[i, : len(o)] = o
        return grid, np.asarray([len(o) for o in options], dtype=np.int64)

    def pick_distinct(self, rng: np.random.Generator, n: int, k: int) -> IntArray:
        """(n, k) drug indices, distinct within each row, weighted by use (Gumbel top-k)."""
        keys = np.log(self.weights)[None, :] + rng.gumbel(size=(n, len(self.names)))
        return np.argsort(-keys, axis=1, kind="stable")[:, :k].astype(np.int64)

    def dose(self, rng: np.random.Generator, drug: IntArray, kind: str) -> FloatArray:
        """A dose per entry of ``drug``: kind is ``adequate``, ``near`` or ``maintenance``."""
        grid, counts = self._options[("adequate", "near", "maintenance").index(kind)]
        j = np.floor(rng.random(drug.shape) * counts[drug]).astype(np.int64)
        return np.asarray(grid[drug, j], dtype=float)


def trial_durations(
    rng: np.random.Generator, quality: IntArray, minimum: int, scale: float
) -> IntArray:
    """Durations (days, inclusive) by quality; some exactly at or one day under the minimum."""
    shape = quality.shape
    long = minimum + np.floor(rng.exponential(scale, shape)).astype(np.int64)
    long = np.where(rng.random(shape) < 0.12, minimum, np.minimum(long, 720))
    short = rng.integers(minimum // 2, minimum, size=shape)
    short = np.where(rng.random(shape) < 0.35, minimum - 1, short)
    return np.where(quality == SHORT, short, long).astype(np.int64)


def trial_adherence(rng: np.random.Generator, quality: IntArray) -> FloatArray:
    """Adherence by quality (two decimals; NaN = not recorded); some exactly 0.80."""
    shape = quality.shape
    good = np.round(rng.uniform(0.8, 1.0, shape), 2)
    good = np.where(rng.random(shape) < 0.05, 0.8, good)
    poor = np.round(rng.uniform(0.5, 0.79, shape), 2)
    out = np.where(quality == LOW_ADHERENCE, poor, good)
    return np.where(quality == NO_ADHERENCE, np.nan, out)


def place_backwards(
    rng: np.random.Generator,
    duration: IntArray,
    active: NDArray[np.bool_],
    last_end: IntArray,
    gap: tuple[int, int],
) -> tuple[IntArray, IntArray]:
    """Start and end days of chronological slots (n, K): the last active slot ends at
    ``last_end``, earlier ones end ``gap`` days before the next one starts."""
    n, k = duration.shape
    start = np.zeros((n, k), dtype=np.int64)
    end = np.zeros((n, k), dtype=np.int64)
    cursor = last_end.astype(np.int64).copy()
    for j in range(k - 1, -1, -1):
        on = active[:, j]
        end[:, j] = cursor
        start[:, j] = cursor - duration[:, j] + 1
        step = rng.integers(gap[0], gap[1] + 1, size=n)
        cursor = np.where(on, start[:, j] - step, cursor)
    return start, end


@dataclass
class Rows:
    """Accumulates drug_exposure rows (person index, drug, days, dose, adherence)."""

    person: list[IntArray] = field(default_factory=list)
    drug: list[NDArray[np.str_]] = field(default_factory=list)
    start: list[IntArray] = field(default_factory=list)
    end: list[FloatArray] = field(default_factory=list)
    dose: list[FloatArray] = field(default_factory=list)
    adherence: list[FloatArray] = field(default_factory=list)

    def add(
        self,
        person: IntArray,
        drug: NDArray[np.str_],
        start: IntArray,
        end: FloatArray,
        dose: FloatArray,
        adherence: FloatArray,
    ) -> None:
        """Add rows; ``end`` NaN means ongoing, ``adherence`` NaN means not recorded."""
        m = person.shape[0]
        self.person.append(person.astype(np.int64))
        self.drug.append(np.broadcast_to(np.asarray(drug, dtype=np.str_), (m,)))
        self.start.append(np.broadcast_to(np.asarray(start, dtype=np.int64), (m,)))
        self.end.append(np.broadcast_to(np.asarray(end, dtype=float), (m,)))
        self.dose.append(np.broadcast_to(np.asarray(dose, dtype=float), (m,)))
        self.adherence.append(np.broadcast_to(np.asarray(adherence, dtype=float), (m,)))

    def add_split(
        self,
        rng: np.random.Generator,
        person: IntArray,
        drug: NDArray[np.str_],
        start: IntArray,
        end: IntArray,
        dose: FloatArray,
        adherence: FloatArray,
        share: float = 0.15,
    ) -> None:
        """Add ended rows; ``share`` of those lasting >= 20 days come as two abutting
        refill records of the same drug, dose and adherence."""
        split = (rng.random(person.shape) < share) & (end - start >= 19)
        cut = start + 7 + np.floor(rng.random(person.shape) * (end - start - 12)).astype(np.int64)
        first_end = np.where(split, cut - 1, end).astype(float)
        self.add(person, drug, start, first_end, dose, adherence)
        s = np.flatnonzero(split)
        self.add(person[s], drug[s], cut[s], end[s].astype(float), dose[s], adherence[s])

    def frame(self, person_id: NDArray[np.str_]) -> pd.DataFrame:
        """The rows as a drug_exposure table sorted by person, start day and drug."""
        if not self.person:
            return pd.DataFrame(
                columns=["person_id", "drug", "start_day", "end_day", "daily_dose_mg", "adherence"]
            )
        person = np.concatenate(self.person)
        drug = np.concatenate(self.drug)
        start = np.concatenate(self.start)
        order = np.lexsort((drug, start, person))
        return pd.DataFrame(
            {
                "person_id": person_id[person[order]],
                "drug": drug[order],
                "start_day": start[order],
                "end_day": np.concatenate(self.end)[order],
                "daily_dose_mg": np.concatenate(self.dose)[order],
                "adherence": np.concatenate(self.adherence)[order],
            }
        )
