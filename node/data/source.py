"""The node's rows as a step sees them: the :class:`FrameSource` protocol."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import pandas as pd

from schemas.cohort import Cohort


class FrameSource(Protocol):
    """The node's rows, as frames.

    ``frame`` returns one row per person at ``visit`` (person-level variables joined in)
    that satisfies ``cohort``, indexed by the person's internal integer ``row_id`` (never
    the person id), with one column per requested variable: float64 for numeric, integer
    and binary variables (NaN = missing), pandas ``Categorical`` with the dictionary's
    categories (first = reference) for categorical ones, and the pseudo-variable ``site``
    as a categorical with the one category of this node's site id. No rows are dropped
    for missing values: complete-case handling is the step's job. ``split_salt`` is the
    site's secret that makes training splits unpredictable (:mod:`schemas.models.split`).
    """

    @property
    def site(self) -> str: ...

    @property
    def split_salt(self) -> bytes:
        """This site's secret for training splits (empty: none)."""
        ...

    def frame(
        self, variables: Sequence[str], visit: str, cohort: Cohort | None
    ) -> pd.DataFrame: ...

    def domain(self, variables: Sequence[str]) -> pd.DataFrame | None:
        """A probe frame over the variables' declared ranges (:mod:`node.data.domain`), or
        None for a source without a dictionary."""
        ...


@runtime_checkable
class Versioned(Protocol):
    """A frame source that tells the version of the data it reads (kept designs are
    keyed by it: :mod:`node.steps.design_cache`)."""

    def version(self, visit: str) -> str | None:
        """A token that changes whenever the rows at ``visit`` may have changed (None:
        unknown; nothing built from them is kept)."""
        ...


class WrappedSource:
    """A FrameSource around another (``inner``): frames and probes pass through
    :meth:`check` first; anything else (the data-quality checks, keeping derived values) is
    the inner source's."""

    def __init__(self, inner: FrameSource) -> None:
        self.inner = inner

    @property
    def site(self) -> str:
        return self.inner.site

    @property
    def split_salt(self) -> bytes:
        return self.inner.split_salt

    def check(self, variables: Sequence[str], cohort: Cohort | None) -> None:
        """Raise when these variables may not be read under this cohort."""

    def frame(self, variables: Sequence[str], visit: str, cohort: Cohort | None) -> pd.DataFrame:
        self.check(variables, cohort)
        return self.inner.frame(variables, visit, cohort)

    def domain(self, variables: Sequence[str]) -> pd.DataFrame | None:
        self.check(variables, None)
        return self.inner.domain(variables)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def innermost(source: object) -> object:
    """``source`` with every wrapper (a source holding an ``inner`` one) taken off."""
    while hasattr(source, "inner"):
        source = source.inner
    return source
