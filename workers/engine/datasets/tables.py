"""Tables read and written in record batches, so a worker's memory is bounded by the batch size, not the file's.

CSV is read with Arrow's streaming reader. That reader infers each column's type from the first block only, where
``pyarrow.csv.read_csv`` infers it from the whole file; so when a later block does not fit (an integer column with
"n/a" on row 2,000,000), the column's type is loosened along Arrow's own inference order and the file is read again
(``loosen``). The types a profile settled on are stored in it and given back as ``column_types`` to every later
reader, which then never restarts. Parquet is read with ``ParquetFile.iter_batches``. Output is Parquet written row
group by row group (``write_parquet``) into any ``write(bytes)`` sink, such as the streaming encryptor.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

MISSING_MARKERS = ["", "?", "NA", "N/A", "null", "NULL", "None", "nan", "NaN"]
CSV_BLOCK_BYTES = 2 * 1024 * 1024  # larger blocks grow the reader's resident memory with the file (allocator retention)
BATCH_ROWS = 64 * 1024
ROW_GROUP_ROWS = 256 * 1024
ROW_GROUP_BYTES = 32 * 1024 * 1024  # whichever comes first: wide rows make big row groups
MAX_TYPE_RESTARTS = 64

# Arrow's CSV inference order (null, int64, boolean, date, time, timestamp in seconds then nanoseconds, float, text).
_CHAIN = [
    pa.null(),
    pa.int64(),
    pa.bool_(),
    pa.date32(),
    pa.time32("s"),
    pa.timestamp("s"),
    pa.timestamp("ns"),
    pa.float64(),
    pa.string(),
]
_CONVERSION = re.compile(r"In CSV column #(\d+): .*?CSV conversion error to ([^:]+):")


def _csv_encoding(encoding: str) -> str:
    return (encoding or "utf8").replace("-sig", "").replace("utf-8", "utf8")


def csv_batches(
    stream: BinaryIO,
    *,
    delimiter: str = ",",
    encoding: str = "utf8",
    column_types: dict[str, pa.DataType] | None = None,
    columns: list[str] | None = None,
    missing: list[str] | None = None,
) -> pacsv.CSVStreamingReader:
    """A streaming reader (``.schema``, iterate for record batches of about 8 MB of text each)."""
    return pacsv.open_csv(
        stream,
        read_options=pacsv.ReadOptions(encoding=_csv_encoding(encoding), block_size=CSV_BLOCK_BYTES),
        parse_options=pacsv.ParseOptions(delimiter=delimiter or ",", newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types=column_types or {},
            include_columns=columns or [],
            null_values=missing or MISSING_MARKERS,
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
        ),
    )


def loosen(error: Exception, schema: pa.Schema, column_types: dict[str, pa.DataType]) -> dict[str, pa.DataType] | None:
    """The column types to read again with after a later block failed to convert (``None``: not a type error)."""
    found = _CONVERSION.search(str(error))
    if not found:
        return None
    index = int(found.group(1))
    if index >= len(schema):
        return None
    name, current = schema.names[index], schema.types[index]
    position = next((i for i, kind in enumerate(_CHAIN) if kind == current), None)
    if position is None and pa.types.is_timestamp(current):
        position = _CHAIN.index(pa.timestamp("s" if current.unit == "s" else "ns"))
    if position is None or position + 1 >= len(_CHAIN):
        return None
    return {**column_types, name: _CHAIN[position + 1]}


_NAMED = {str(kind): kind for kind in _CHAIN} | {
    "double": pa.float64(),
    "timestamp[s, tz=UTC]": pa.timestamp("s", "UTC"),
    "timestamp[ns, tz=UTC]": pa.timestamp("ns", "UTC"),
}


def types_from_profile(profile: dict[str, Any] | None) -> dict[str, pa.DataType]:
    """The column types a CSV's profile settled on (``arrow_type`` of each column), to read it again without
    inference; types it cannot name are left to inference."""
    types = {}
    for column in (profile or {}).get("columns", []):
        kind = _NAMED.get(str(column.get("arrow_type", "")))
        if kind is not None:
            types[column["name"]] = kind
    return types


def parquet_batches(path: Path, *, columns: list[str] | None = None, batch_rows: int = BATCH_ROWS) -> Any:
    """A Parquet file's rows in batches: an object with ``.schema`` that iterates record batches."""
    return _ParquetBatches(pq.ParquetFile(path), columns, batch_rows)


class _ParquetBatches:
    def __init__(self, parquet: pq.ParquetFile, columns: list[str] | None, batch_rows: int) -> None:
        self._parquet = parquet
        self._columns = columns
        self._batch_rows = batch_rows
        schema = parquet.schema_arrow
        self.schema = pa.schema([schema.field(name) for name in columns]) if columns else schema

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        # One row group's column chunks at a time (no pre-buffering of the whole file), decoded batch by batch.
        return self._parquet.iter_batches(batch_size=self._batch_rows, columns=self._columns, use_threads=True)


class _Sink:
    """A write-only file for Arrow that hands every block to ``write`` and counts the bytes (Parquet asks ``tell``)."""

    def __init__(self, write: Callable[[bytes], Any]) -> None:
        self._write = write
        self.position = 0
        self.closed = False

    def write(self, data: Any) -> int:
        block = bytes(data)
        self._write(block)
        self.position += len(block)
        return len(block)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False


def write_parquet(
    batches: Iterable[pa.RecordBatch],
    schema: pa.Schema,
    write: Callable[[bytes], Any],
    *,
    row_group_rows: int = ROW_GROUP_ROWS,
) -> int:
    """Write ``batches`` as one Parquet file into ``write``, a row group at a time (small filtered batches are
    gathered up to ``row_group_rows`` or ROW_GROUP_BYTES first); returns the number of rows written. Memory: one row
    group."""
    sink = _Sink(write)
    rows = 0
    pending: list[pa.RecordBatch] = []
    pending_rows = pending_bytes = 0
    with pq.ParquetWriter(pa.PythonFile(sink, mode="w"), schema) as writer:
        for batch in batches:
            if batch.num_rows == 0:
                continue
            pending.append(batch)
            pending_rows += batch.num_rows
            pending_bytes += batch.nbytes
            if pending_rows >= row_group_rows or pending_bytes >= ROW_GROUP_BYTES:
                writer.write_table(pa.Table.from_batches(pending, schema), row_group_size=pending_rows)
                rows += pending_rows
                pending, pending_rows, pending_bytes = [], 0, 0
        if pending:
            writer.write_table(pa.Table.from_batches(pending, schema), row_group_size=pending_rows)
            rows += pending_rows
    return rows
