"""Before a job: every variable it uses must be defined identically at every site."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from schemas.errors import ErrorCode, FedpsyError

PSEUDO = {"site"}


def check_compatible(used: Iterable[str], hashes: Mapping[str, Mapping[str, str]]) -> None:
    """Refuse (``dictionary_mismatch``) naming each variable and the sites that differ.

    ``hashes`` maps site → {variable code → content hash} as each node reported it.
    A variable missing at a site differs there too.
    """
    problems: list[str] = []
    for code in sorted(set(used) - PSEUDO):
        by_hash: dict[str, list[str]] = {}
        for site, site_hashes in sorted(hashes.items()):
            by_hash.setdefault(site_hashes.get(code, "missing"), []).append(site)
        if len(by_hash) == 1 and "missing" not in by_hash:
            continue
        missing = by_hash.pop("missing", [])
        parts = []
        if missing:
            parts.append(f"not defined at {', '.join(missing)}")
        if len(by_hash) > 1:
            groups = [", ".join(sites) for sites in by_hash.values()]
            parts.append("defined differently at " + " vs ".join(f"[{g}]" for g in groups))
        if not by_hash:
            parts = ["not defined at any site taking part"]
        problems.append(f"{code}: {'; '.join(parts)}")
    if problems:
        raise FedpsyError(
            "; ".join(problems),
            code=ErrorCode.DICTIONARY_MISMATCH,
            extra={"variables": [p.split(":")[0] for p in problems]},
        )
