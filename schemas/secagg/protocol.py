"""The parts of the protocol both sides compute the same way.

Participants of a session are the sorted site ids ``P``; a site's Shamir x-coordinate is
its position in ``P`` plus one (every participant, the owner included, holds a share of
each secret). In each round a node's secret vector is ``[b, s_1, …, s_{n−1}]``: its fresh
self-mask seed ``b`` and its pair seeds with the other participants in ``P`` order. The
masked input of node ``u`` is ``enc(x_u) + PRG(b_u) + Σ_{v>u} PRG(s_uv) − Σ_{v<u}
PRG(s_uv)`` over the round's participants; the coordinator removes the self masks of the
sites whose input arrived and the pair masks those sites share with sites that dropped,
both rebuilt from ``t`` shares (Bonawitz et al., CCS 2017, §4, double masking).

Threshold: a session needs ``2t > n`` (default ``t = ⌊n/2⌋ + 1``) so that no ``t``
honest answers about one site can be had both as "it answered" and as "it dropped": the
self mask and the pair seeds of one site are never both revealed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from schemas.secagg.fixedpoint import Ring, add, subtract
from schemas.secagg.prg import SEED_BYTES, apply_pair_mask, expand


def default_threshold(n: int) -> int:
    return n // 2 + 1


def threshold_ok(threshold: int, n: int) -> bool:
    """Whether ``threshold`` is safe (``2t > n``) and reachable (``t ≤ n``)."""
    return 2 * threshold > n and threshold <= n


def holder(participants: Sequence[str], site: str) -> int:
    return list(participants).index(site) + 1


def others(participants: Sequence[str], site: str) -> list[str]:
    """The other participants in order: position ``k`` is secret element ``k + 1``."""
    return [p for p in participants if p != site]


def seed_int(seed: bytes) -> int:
    return int.from_bytes(seed, "big")


def int_seed(value: int) -> bytes:
    if not 0 <= value < 1 << (8 * SEED_BYTES):
        raise ValueError("a reconstructed seed is out of range (inconsistent shares)")
    return value.to_bytes(SEED_BYTES, "big")


def mask(encoded: Ring, self_seed: bytes, pair_seeds: Mapping[str, bytes], mine: str) -> Ring:
    """The masked input: the encoding plus the self mask and the signed pair masks."""
    out = add(encoded, expand(self_seed, len(encoded)))
    for other, seed in pair_seeds.items():
        out = apply_pair_mask(out, seed, mine, other)
    return out


def remove_masks(
    total: Ring, self_seeds: Mapping[str, bytes], pair_seeds: Mapping[tuple[str, str], bytes]
) -> Ring:
    """Take the survivors' self masks and their masks with dropped sites out of a sum.

    ``pair_seeds`` maps (survivor, dropped) to their pair seed; the survivor added that
    pair's mask when the dropped site sorts after it and subtracted it otherwise.
    """
    out = total
    for seed in self_seeds.values():
        out = subtract(out, expand(seed, len(total)))
    for (survivor, dropped), seed in pair_seeds.items():
        # undo the survivor's step: subtract what it added, add what it subtracted
        out = apply_pair_mask(out, seed, dropped, survivor)
    return out
