"""What an uploaded file really is: content sniffing and validation of CSV and Parquet, by content, not by name."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

PARQUET_MAGIC = b"PAR1"
SNIFF_BYTES = 64 * 1024
DELIMITERS = ",;\t|"


class IngestError(Exception):
    """A file that cannot become a dataset version; ``code`` is stable, ``message`` is for people."""

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}


@dataclass
class TableInfo:
    """What validation learnt about a table."""

    format: str
    columns: list[str]
    rows: int
    encoding: str = ""
    delimiter: str = ""
    formula_cells: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "columns": self.columns,
            "rows": self.rows,
            "encoding": self.encoding,
            "delimiter": self.delimiter,
            "formula_cells": self.formula_cells,
        }


def sniff_format(head: bytes) -> str:
    """'parquet' or 'csv' from the first bytes; anything else is refused."""
    if not head:
        raise IngestError("empty", "The file is empty.")
    if head.startswith(PARQUET_MAGIC):
        return "parquet"
    if b"\x00" in head:
        raise IngestError("binary", "The file is neither CSV text nor Parquet (it contains binary data).")
    return "csv"


def detect_encoding(head: bytes) -> str:
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    try:
        head.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        if exc.start > len(head) - 4:  # a multi-byte character cut by the sniffing window
            return "utf-8"
    from charset_normalizer import from_bytes

    best = from_bytes(head).best()
    if best is None:
        raise IngestError("encoding", "The file's text encoding could not be recognised; save it as UTF-8.")
    return best.encoding


def detect_delimiter(text: str) -> str:
    lines = [line for line in text.splitlines()[:50] if line.strip()]
    if not lines:
        raise IngestError("empty", "The file is empty.")
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters=DELIMITERS).delimiter
    except csv.Error:
        # A one-column file, or an unusual one: pick the delimiter that splits the header most consistently.
        counts = {d: lines[0].count(d) for d in DELIMITERS}
        best = max(counts, key=counts.get)  # type: ignore[arg-type]
        return best if counts[best] else ","


def inspect_csv(stream: BinaryIO) -> TableInfo:
    """Read the whole CSV once (streaming, bounded memory): header, row count, ragged rows, formula-like cells."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    raw = io.BufferedReader(stream, buffer_size=SNIFF_BYTES) if not hasattr(stream, "peek") else stream
    head = raw.peek(SNIFF_BYTES)[:SNIFF_BYTES]
    sniff_format(head)
    encoding = detect_encoding(head)
    text = head.decode(encoding.replace("-sig", ""), errors="ignore").lstrip("\ufeff")
    delimiter = detect_delimiter(text)
    header = next(csv.reader(io.StringIO(text.splitlines()[0] if text else ""), delimiter=delimiter), [])
    names = [name.strip() for name in header]
    if not names or all(not name for name in names):
        raise IngestError("no_header", "The first line must be a header naming the columns.")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates or "" in names:
        raise IngestError(
            "bad_header",
            "Column names must be unique and non-empty.",
            {"duplicates": duplicates, "empty_columns": names.count("")},
        )
    rows = 0
    formula_cells: dict[str, int] = {}
    try:
        reader = pacsv.open_csv(
            raw,
            read_options=pacsv.ReadOptions(
                encoding=encoding.replace("-sig", "") if encoding != "utf-8-sig" else "utf8", block_size=4 * 1024 * 1024
            ),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in names}, strings_can_be_null=False
            ),
        )
        import pyarrow.compute as pc

        for batch in reader:
            rows += batch.num_rows
            for name, column in zip(batch.schema.names, batch.columns, strict=True):
                starts = pc.sum(pc.match_substring_regex(column, r"^[=+\-@\t\r]")).as_py() or 0
                if starts:
                    formula_cells[name] = formula_cells.get(name, 0) + starts
    except pa.ArrowInvalid as exc:
        message = str(exc)
        if "Expected" in message and "columns" in message:
            raise IngestError(
                "ragged_rows", f"Rows have different numbers of fields than the header: {message}", {"reason": message}
            ) from None
        if "UTF8" in message or "utf8" in message.lower() or "decode" in message.lower():
            raise IngestError("encoding", f"The file is not valid {encoding} text.", {"reason": message}) from None
        raise IngestError("invalid_csv", f"The file is not a valid CSV table: {message}", {"reason": message}) from None
    if rows == 0:
        raise IngestError("header_only", "The file has a header but no rows.")
    return TableInfo("csv", names, rows, encoding, delimiter, formula_cells)


# Types a tabular model and the profiler can use; nested and binary columns are refused.
def _supported(arrow_type: Any) -> bool:
    import pyarrow as pa

    return (
        pa.types.is_integer(arrow_type)
        or pa.types.is_floating(arrow_type)
        or pa.types.is_boolean(arrow_type)
        or pa.types.is_string(arrow_type)
        or pa.types.is_large_string(arrow_type)
        or pa.types.is_temporal(arrow_type)
        or pa.types.is_decimal(arrow_type)
        or (pa.types.is_dictionary(arrow_type) and _supported(arrow_type.value_type))
    )


def inspect_parquet(path: Path) -> TableInfo:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise IngestError("invalid_parquet", f"The Parquet file cannot be read: {exc}") from None
    schema = parquet.schema_arrow
    unsupported = {f.name: str(f.type) for f in schema if not _supported(f.type)}
    if unsupported:
        raise IngestError(
            "unsupported_types",
            "Columns with nested or binary types are not supported: "
            + ", ".join(f"{name} ({kind})" for name, kind in unsupported.items()),
            {"columns": unsupported},
        )
    rows = parquet.metadata.num_rows
    if rows == 0:
        raise IngestError("header_only", "The file has columns but no rows.")
    return TableInfo("parquet", list(schema.names), rows)
