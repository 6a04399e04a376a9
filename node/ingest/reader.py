"""Reading CSV and Parquet files in chunks of strings, catching malformed files early.

Every cell arrives as a string ("" = missing) so that validation is the same for both
formats. The CSV reader detects non-UTF-8 bytes, empty files, header-only files and rows
with too few or too many fields (a truncated file), naming the line.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from node.ingest.problems import fail

CHUNK_ROWS = 20_000


@dataclass(frozen=True)
class Chunk:
    """A block of rows; ``first_row`` is the 1-based data row number of its first row."""

    frame: pd.DataFrame
    first_row: int


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_utf8(path: Path) -> None:
    offset = 0
    decoder_tail = b""
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            data = decoder_tail + block
            try:
                data.decode("utf-8")
                decoder_tail = b""
            except UnicodeDecodeError as exc:
                if exc.reason == "unexpected end of data" and exc.start >= len(data) - 3:
                    decoder_tail = data[exc.start :]
                    data[: exc.start].decode("utf-8")
                else:
                    line = data[: exc.start].count(b"\n") + 1
                    raise fail(
                        path.name,
                        f"not UTF-8 text (byte {offset + exc.start}, "
                        f"near file line {line}); save the file as UTF-8",
                    ) from exc
            offset += len(block)
    if decoder_tail:
        raise fail(
            path.name, "not UTF-8 text (file ends inside a character); the file may be truncated"
        )


def count_rows(path: Path) -> int:
    """Data rows in a file (for progress bars); cheap for both formats."""
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    with path.open("rb") as fh:
        lines = sum(block.count(b"\n") for block in iter(lambda: fh.read(1 << 20), b""))
    return max(lines - 1, 0)


def read_header(path: Path) -> list[str]:
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        return list(pq.ParquetFile(path).schema_arrow.names)
    with path.open(encoding="utf-8-sig") as fh:
        return [c.strip() for c in fh.readline().rstrip("\r\n").split(",")]


def _check_fields(path: Path) -> None:
    """Every non-blank row has as many fields as the header (else the file is truncated)."""
    with path.open(encoding="utf-8-sig", newline="") as fh:
        rows = csv.reader(fh)
        header = next(rows, None)
        if not header:
            raise fail(path.name, "the file has no header line")
        data_row = 0
        for fields in rows:
            if not fields:
                continue
            data_row += 1
            if len(fields) != len(header):
                fewer = len(fields) < len(header)
                raise fail(
                    path.name,
                    f"has {'fewer' if fewer else 'more'} fields "
                    f"({len(fields)}) than the header ({len(header)})"
                    + ("; the file may be truncated" if fewer else ""),
                    row=data_row,
                )


def check_file(path: Path) -> list[str]:
    """Check that the file exists, is not empty, is UTF-8 and rectangular; return its header."""
    if not path.is_file():
        raise fail(str(path), "file not found")
    if path.stat().st_size == 0:
        raise fail(path.name, "the file is empty")
    if path.suffix.lower() != ".parquet":
        _check_utf8(path)
        _check_fields(path)
    return read_header(path)


def iter_chunks(path: Path, chunk_rows: int = CHUNK_ROWS) -> Iterator[Chunk]:
    """Yield the file's rows as string frames (call :func:`check_file` first)."""
    if path.suffix.lower() == ".parquet":
        yield from _parquet_chunks(path, chunk_rows)
    else:
        yield from _csv_chunks(path, chunk_rows)


def _csv_chunks(path: Path, chunk_rows: int) -> Iterator[Chunk]:
    header = read_header(path)
    if len(set(header)) != len(header):
        dup = sorted({c for c in header if header.count(c) > 1})
        raise fail(path.name, f"duplicate column name(s) {', '.join(dup)} in the header")
    first = 1
    seen_any = False
    try:
        with pd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,
            na_values=[],
            chunksize=chunk_rows,
            encoding="utf-8-sig",
        ) as reader:
            for frame in reader:
                frame.columns = [str(c).strip() for c in frame.columns]
                seen_any = seen_any or len(frame) > 0
                yield Chunk(frame, first)
                first += len(frame)
    except pd.errors.ParserError as exc:
        raise fail(path.name, f"malformed CSV: {exc}") from exc
    if not seen_any:
        raise fail(path.name, "the file has a header but no data rows")


def _parquet_chunks(path: Path, chunk_rows: int) -> Iterator[Chunk]:
    import pyarrow.parquet as pq

    try:
        pfile = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise fail(path.name, f"not a readable Parquet file ({exc})") from exc
    if pfile.metadata.num_rows == 0:
        raise fail(path.name, "the file has no data rows")
    first = 1
    for batch in pfile.iter_batches(batch_size=chunk_rows):
        frame = batch.to_pandas()
        out = pd.DataFrame(index=frame.index)
        for col in frame.columns:
            values = frame[col]
            text = values.astype(str)
            if pd.api.types.is_float_dtype(values):
                text = values.map(lambda v: "" if pd.isna(v) else repr(float(v)))
            out[str(col)] = text.where(values.notna(), "")
        yield Chunk(out, first)
        first += len(out)
