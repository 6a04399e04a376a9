"""The variable catalog: each variable with its definition and where it is available."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from coordinator.store.registry import NodeRecord
from schemas.dictionary import load_dictionary


def catalog(nodes: Sequence[NodeRecord]) -> dict[str, Any]:
    """``{"sites": [...], "variables": [{code, label, type, unit, sites: {site: status}}]}``.

    A site's status for a variable is ``same`` (defined as in the shipped dictionary),
    ``differs`` (same code, other definition: jobs using it across sites are refused) or
    ``site-only`` (an extension variable of that site); absent sites are not listed.
    """
    shipped = load_dictionary()
    reference = shipped.variable_hashes()
    codes = list(reference)
    for node in nodes:
        codes += [c for c in node.variable_hashes if c not in codes]
    out = []
    for code in codes:
        var = shipped.variables.get(code)
        sites = {}
        for node in nodes:
            h = node.variable_hashes.get(code)
            if h is None:
                continue
            sites[node.site] = ("same" if h == reference.get(code)
                                else "differs" if code in reference else "site-only")
        out.append({"code": code, "label": var.label if var else None,
                    "type": var.type if var else None, "unit": var.unit if var else None,
                    "level": var.level if var else None,
                    "derived": var.source == "derived" if var else None, "sites": sites})
    return {"sites": [n.site for n in nodes], "variables": out}
