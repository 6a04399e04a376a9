"""The fewest rows a running step has touched, so a failure below the minimum is refused.

A step can fail on its data (a singular design, a transform that is not finite, an
outcome outside its family's range). On a cohort below the site's minimum such a failure
would tell something the size refusal hides: that one person's value makes the step
fail. So the node watches every step: frame sources and design builders call
:func:`note_rows` with the rows they hold, and when the step fails, the node refuses it
exactly as it refuses a small cohort whenever any noted count is below the minimum
(:meth:`~node.service.NodeService.submit`). Outside :func:`watching` noting does nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field


@dataclass
class Watched:
    """Row counts noted while a step ran."""

    counts: list[int] = field(default_factory=list)

    @property
    def fewest(self) -> int | None:
        return min(self.counts) if self.counts else None


_current: ContextVar[Watched | None] = ContextVar("fedpsy_watched_rows", default=None)


@contextmanager
def watching() -> Iterator[Watched]:
    """Collect the row counts noted until the block ends."""
    watched = Watched()
    token = _current.set(watched)
    try:
        yield watched
    finally:
        _current.reset(token)


def note_rows(count: int) -> None:
    """Record that the running step holds ``count`` rows (a frame, a design, a split)."""
    watched = _current.get()
    if watched is not None:
        watched.counts.append(int(count))


__all__ = ["Watched", "note_rows", "watching"]
