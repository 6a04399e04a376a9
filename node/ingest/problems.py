"""Collecting what is wrong with an input file, cell by cell, for one clear report."""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas.errors import ErrorCode, FedpsyError

MAX_LISTED = 20


@dataclass(frozen=True)
class Problem:
    """One violated rule: where (file, 1-based data row, column), the value, the rule."""

    file: str
    row: int | None
    column: str | None
    value: str | None
    rule: str

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f", row {self.row}"
        if self.column is not None:
            where += f", column '{self.column}'"
        shown = "" if self.value is None else f": value {self.value!r}"
        return f"{where}{shown}: {self.rule}"


@dataclass
class Problems:
    """Problems found so far; at most :data:`MAX_LISTED` are kept, all are counted."""

    items: list[Problem] = field(default_factory=list)
    total: int = 0

    def add(self, problem: Problem) -> None:
        self.total += 1
        if len(self.items) < MAX_LISTED:
            self.items.append(problem)

    def __bool__(self) -> bool:
        return self.total > 0

    def error(self) -> FedpsyError:
        """The ingest error listing the problems (the caller rolls the store back)."""
        lines = [str(p) for p in self.items]
        if self.total > len(self.items):
            lines.append(f"... and {self.total - len(self.items)} more problems")
        detail = f"{self.total} problem(s):\n" + "\n".join(f"  {line}" for line in lines)
        return FedpsyError(
            detail,
            code=ErrorCode.INGEST_INVALID,
            extra={"problems": [p.__dict__ for p in self.items]},
        )


def fail(
    file: str,
    rule: str,
    row: int | None = None,
    column: str | None = None,
    value: str | None = None,
) -> FedpsyError:
    """An ingest error for a single problem."""
    problems = Problems()
    problems.add(Problem(file, row, column, value, rule))
    return problems.error()
