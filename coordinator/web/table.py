"""A table of a result as the dashboard shows it and offers it for download as CSV."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

Cell = str | int | float | bool | None


@dataclass(frozen=True)
class Table:
    """``name`` is unique within the result (used in URLs); ``note`` says, in a sentence
    or two, what the numbers are when that is not obvious (shown under the title)."""

    name: str
    title: str
    columns: list[str]
    rows: list[list[Cell]]
    note: str = ""

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self.columns)
        writer.writerows(self.rows)
        return out.getvalue()
