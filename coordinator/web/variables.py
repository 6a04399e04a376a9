"""What the shipped data dictionary says about the variables a plot shows.

A plot of a summary clips a mean ± SD bar to the variable's range (its ``min``/``max``, 0–1
for a binary variable); a coefficient plot names the level each categorical term is
compared with (the dictionary's first category is the reference level, formulaic's
``sex[T.M]`` is ``M`` against it). A variable the shipped dictionary does not hold (a
site's extension, the ``site`` pseudo-variable) has no known range and an unnamed
reference.
"""

from __future__ import annotations

import re
from functools import cache

from schemas.dictionary import Dictionary, load_dictionary

TREATMENT = re.compile(r"^(?:C\()?(?P<var>[A-Za-z_][A-Za-z0-9_]*)\)?\[T\.(?P<level>[^\]]+)\]$")


@cache
def _shipped() -> Dictionary:
    return load_dictionary()


def value_range(code: str) -> tuple[float | None, float | None]:
    """The variable's lowest and highest possible value (``None``: not bounded or unknown)."""
    variable = _shipped().variables.get(code)
    if variable is None:
        return None, None
    if variable.type == "binary":
        return 0.0, 1.0
    low, high = variable.min, variable.max
    return (None if low is None else float(low)), (None if high is None else float(high))


def term_label(term: str) -> str:
    """A coefficient's name for a plot: ``sex[T.M]`` → ``sex: M vs F (reference)``."""
    found = TREATMENT.match(term)
    if found is None:
        return term
    var, level = found["var"], found["level"]
    variable = _shipped().variables.get(var)
    categories = variable.categories if variable is not None else None
    reference = f"{categories[0]} (reference)" if categories else "the reference level"
    return f"{var}: {level} vs {reference}"
