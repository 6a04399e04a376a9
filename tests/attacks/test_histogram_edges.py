"""Attack class 6: histogram edges as an oracle.

Bins are whatever the request says. Two histograms of one cohort whose edges differ a
little are counts of the thin interval between the edges (a cell the gate never saw),
and where the coordinator had to coarsen (a bin below the minimum) tells on which side
of an edge an extreme value lies: a binary search of that value.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.attacks.support import (
    TARGET,
    Consortium,
    Envelope,
    assert_details_clean,
    cohort_all,
    cond,
    ok,
    signature,
)

pytestmark = pytest.mark.xdist_group("attacks")


def observable(envelope: Envelope) -> tuple[Any, ...]:
    """What a histogram answer shows beyond the edges the request chose."""
    if not ok(envelope):
        return signature(envelope)
    r = envelope["result"]
    return (
        "ok",
        r["coarsened"],
        r["merged"],
        len(r["edges"]),
        tuple(r["counts"]),
        r["below"],
        r["above"],
    )


def test_shifted_edge_does_not_reveal_the_target_attribute(fresh: Consortium) -> None:
    """Class 6, edges as an oracle (shifted edge). In the cohort ``ketamine == k``,
    histograms of age with edges ``[0, 40.5, 110]`` and ``[0, 41.5, 110]`` differ in their
    first bin by the persons aged 40.5–41.5 — only the target — so they show whether the
    target used ketamine (asked for k = 1 and k = 0, the answers must not differ in kind).
    Stopped by: edges on a public per-variable grid (off-grid edges are ``request_invalid``)
    and the node's memory of released edges per cohort and variable (``differencing`` for a
    new interval holding 1..min_cell-1 persons). Note: if the edges are on the grid, that
    refusal is itself the answer — refused for the ``k`` whose cohort holds the target,
    answered (difference 0) for the other — so the memory must treat an empty new
    interval like a small one."""
    observed: dict[float, tuple[Any, ...]] = {}
    differences: dict[float, int] = {}
    for k in (1.0, 0.0):
        cohort = cohort_all(cond("ketamine", "==", k))
        first, second = (
            fresh.run({"analysis": "histogram", "variable": "age", "edges": e, "cohort": cohort})
            for e in ([0, 40.5, 110], [0, 41.5, 110])
        )
        diff = None
        answered = ok(first) and ok(second)
        if answered and len(first["result"]["counts"]) == len(second["result"]["counts"]) == 2:
            diff = second["result"]["counts"][0] - first["result"]["counts"][0]
            differences[k] = diff
        present = diff == 1 or (ok(first) and not ok(second))
        observed[k] = (signature(first)[:2], signature(second)[:2], diff, present)

    estimate = None
    if observed[1.0] != observed[0.0]:
        flags = {k: o[3] for k, o in observed.items()}
        if flags[1.0] != flags[0.0]:
            estimate = 1.0 if flags[1.0] else 0.0
    assert estimate != TARGET.ketamine, f"the target's ketamine use recovered: {observed}"
    assert all(d == 0 or d >= 5 for d in differences.values()), differences
    assert_details_clean(fresh.log)


def nice_between(lo: float, hi: float) -> float:
    """The roundest number strictly inside ``(lo, hi)``: what an attacker tries first."""
    mid = (lo + hi) / 2
    for digits in range(1, 16):
        candidate = float(f"{mid:.{digits}g}")
        if lo < candidate < hi:
            return candidate
    return mid


def test_coarsening_does_not_bisect_an_extreme_value(fresh: Consortium) -> None:
    """Class 6, edges as an oracle (coarsening). ``histogram dacc_glu`` with edges
    ``[0, 100, E, 1e7]``: everyone else is below 100, so the target alone lies in
    ``[100, E)`` or ``[E, 1e7]``, and whether one or two rounds of coarsening were needed
    says which; bisecting ``E`` (round numbers first) pins the target's 987654 to ~50 in 18
    requests. Stopped by: on-grid edges (a grid with two significant digits, or half units
    of the second, is 0.5–5 % of a value's magnitude) and the released-edges memory; the
    attacker's bracket must stay wider than 0.2 % of the value."""

    def probe(edge: float) -> tuple[Any, ...]:
        return observable(
            fresh.run(
                {"analysis": "histogram", "variable": "dacc_glu", "edges": [0, 100, edge, 1e7]}
            )
        )

    lo, hi = 200.0, 5e6
    at_or_above, below = probe(lo), probe(hi)  # x >= lo, x < hi
    steps = 0
    if at_or_above != below:
        while hi - lo > 1e-4 * TARGET.dacc_glu and steps < 40:
            steps += 1
            mid = nice_between(lo, hi)
            answer = probe(mid)
            if answer == below:
                hi = mid
            elif answer == at_or_above:
                lo = mid
            else:
                break
    pinned = lo <= TARGET.dacc_glu < hi and hi - lo <= 0.002 * TARGET.dacc_glu
    assert not pinned, f"the target's dACC Glu pinned to [{lo}, {hi}) in {steps} histograms"
    assert_details_clean(fresh.log)
