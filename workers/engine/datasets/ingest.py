"""What an uploaded file really is: content sniffing and validation of CSV and Parquet, by content, not by name."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

PARQUET_MAGIC = b"PAR1"
SNIFF_BYTES = 64 * 1024
# The header line is read whole, up to this size: a wide table's header can be longer than the sniffing window.
HEADER_MAX_BYTES = 1024 * 1024
DELIMITERS = ",;\t|"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
UTF32_BOMS = (b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")
SAVE_AS_UTF8 = 'Save it as "CSV UTF-8 (comma delimited)" (in Excel or LibreOffice) and upload it again.'
# Defaults of the upload limits on what a table may expand to (settings ATTEST_MAX_ROWS, ATTEST_MAX_DECOMPRESSED_BYTES).
DEFAULT_MAX_ROWS = 20_000_000
DEFAULT_MAX_DECOMPRESSED_BYTES = 4 * 1024**3


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
    if head.startswith(UTF32_BOMS) or head.startswith(UTF16_BOMS) or _looks_like_utf16(head):
        width = "UTF-32" if head.startswith(UTF32_BOMS) else "UTF-16"
        raise IngestError(
            "wide_encoding",
            f'The file is {width} text (what Excel calls "Unicode Text"), which is not accepted. {SAVE_AS_UTF8}',
        )
    if b"\x00" in head:
        raise IngestError(
            "binary",
            "The file is neither CSV text nor Parquet: it contains binary data (a spreadsheet, an archive or an "
            f"image?). Export the table as CSV or Parquet. {SAVE_AS_UTF8}",
        )
    return "csv"


def _looks_like_utf16(head: bytes) -> bool:
    """UTF-16 without a byte-order mark: ASCII text with a NUL beside every character."""
    sample = head[:4096]
    if len(sample) < 8:
        return False
    even, odd = sample[0::2], sample[1::2]
    return odd.count(0) > 0.9 * len(odd) or even.count(0) > 0.9 * len(even)


def detect_encoding(head: bytes) -> str:
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    try:
        head.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        # A multi-byte character cut by the sniffing window (only possible when the window was full).
        if len(head) >= SNIFF_BYTES and exc.start > len(head) - 4:
            return "utf-8"
    from charset_normalizer import from_bytes

    matches = list(from_bytes(head))
    if not matches:
        raise IngestError("encoding", f"The file's text encoding could not be recognised. {SAVE_AS_UTF8}")
    best = matches[0]
    # Short files fit several single-byte code pages equally well; the one most tables are saved in wins the tie
    # (charset_normalizer otherwise takes the first in its own order, cp1250, and turns "Genève" into "Genčve").
    tied = [m.encoding for m in matches if (m.chaos, m.coherence) == (best.chaos, best.coherence)]
    return "cp1252" if "cp1252" in tied else best.encoding


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


def _read_start(stream: BinaryIO) -> bytes:
    """The file's first bytes: the sniffing window, and more until the header line ends (at most HEADER_MAX_BYTES)."""
    start = stream.read(SNIFF_BYTES) or b""
    while b"\n" not in start and len(start) < HEADER_MAX_BYTES:
        more = stream.read(SNIFF_BYTES)
        if not more:
            break
        start += more
    return start


@dataclass(frozen=True)
class Limits:
    """How large a table may become once read: rows, and bytes decompressed (checked at upload, before any worker
    decompresses the file; ``None``: no limit)."""

    max_rows: int | None = DEFAULT_MAX_ROWS
    max_decompressed_bytes: int | None = DEFAULT_MAX_DECOMPRESSED_BYTES


NO_LIMITS = Limits(None, None)


def _too_many_rows(rows: int, limit: int, at_least: bool = False) -> IngestError:
    counted = f"more than {limit:,}" if at_least else f"{rows:,}"
    return IngestError(
        "too_many_rows",
        f"The table has {counted} rows; at most {limit:,} rows can be profiled and governed here. Split the file, or "
        "ask the administrator to raise ATTEST_MAX_ROWS.",
        {"rows": rows, "limit_rows": limit},
    )


def _too_large_decompressed(size: int, limit: int) -> IngestError:
    return IngestError(
        "too_large_decompressed",
        f"The table would take at least {_mb(size)} once decompressed, more than the limit of {_mb(limit)} (the "
        "file itself is small because it is compressed). Split the file, or ask the administrator to raise "
        "ATTEST_MAX_DECOMPRESSED_BYTES.",
        {"decompressed_bytes": size, "limit_bytes": limit},
    )


def _mb(size: int) -> str:
    return f"{size / 2**20:,.0f} MB"


class _Prefixed(io.RawIOBase):
    """``prefix`` then the rest of ``stream``: the bytes already read for sniffing go to the CSV reader too. Counts the
    bytes it hands out, and refuses to go beyond ``max_bytes``."""

    def __init__(self, prefix: bytes, stream: BinaryIO, max_bytes: int | None = None) -> None:
        self._prefix = memoryview(prefix)
        self._stream = stream
        self.consumed = 0
        self.max_bytes = max_bytes

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._prefix:
            size = min(len(buffer), len(self._prefix))
            buffer[:size] = self._prefix[:size]
            self._prefix = self._prefix[size:]
            return self._count(size)
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return self._count(len(data))

    def _count(self, size: int) -> int:
        self.consumed += size
        if self.max_bytes is not None and self.consumed > self.max_bytes:
            raise _too_large_decompressed(self.consumed, self.max_bytes)
        return size


def inspect_csv(stream: BinaryIO, limits: Limits = NO_LIMITS) -> TableInfo:
    """Read the whole CSV once (streaming, bounded memory): header, row count, ragged rows, formula-like cells. Stops
    as soon as the table has more rows than ``limits`` allow."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    start = _read_start(stream)
    head = start[:SNIFF_BYTES]
    sniff_format(head)
    encoding = detect_encoding(head)
    codec = encoding.replace("-sig", "")
    text = head.decode(codec, errors="ignore").lstrip("\ufeff")
    delimiter = detect_delimiter(text)
    first_line = start.split(b"\n", 1)[0]
    if len(first_line) >= HEADER_MAX_BYTES:
        raise IngestError(
            "header_too_long",
            f"The header line is longer than {HEADER_MAX_BYTES // 1024 // 1024} MB: this is not a table Attest can "
            "govern. Check the delimiter and the line endings, or split the table.",
        )
    header_text = first_line.decode(codec, errors="replace").lstrip("\ufeff").rstrip("\r")
    header = next(csv.reader(io.StringIO(header_text), delimiter=delimiter), [])
    raw = _Prefixed(start, stream, limits.max_decompressed_bytes)
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
            if limits.max_rows is not None and rows > limits.max_rows:
                raise _too_many_rows(rows, limits.max_rows, at_least=True)
            for name, column in zip(batch.schema.names, batch.columns, strict=True):
                if not pa.types.is_string(column.type):
                    continue
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
            raise IngestError(
                "encoding",
                f"Part of the file is not valid {encoding} text (the encoding was recognised from its beginning, and "
                f"a later line differs). {SAVE_AS_UTF8}",
                {"reason": message},
            ) from None
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


def decoded_size(metadata: Any, schema: Any) -> int:
    """A lower bound of the bytes a Parquet file's table takes once read: the larger of its pages' uncompressed size
    and, per column, rows x the width of one value (8 for an int64 or a timestamp, 4 for a string's offset): run-length
    and dictionary encoding make the pages of a repeated value tiny, but reading expands every row."""
    import pyarrow as pa

    pages = sum(
        metadata.row_group(g).column(c).total_uncompressed_size
        for g in range(metadata.num_row_groups)
        for c in range(metadata.num_columns)
    )
    per_row = 0.0
    for field_ in schema:
        kind = field_.type.value_type if pa.types.is_dictionary(field_.type) else field_.type
        if pa.types.is_boolean(kind):
            per_row += 1 / 8
        elif pa.types.is_large_string(kind):
            per_row += 8
        elif pa.types.is_string(kind):
            per_row += 4
        else:
            try:
                per_row += kind.bit_width / 8
            except ValueError:
                per_row += 8
    return max(pages, int(metadata.num_rows * per_row))


def inspect_parquet(path: Path, limits: Limits = NO_LIMITS) -> TableInfo:
    """Schema and size from the footer alone (nothing is decompressed): the row count and the decoded size are checked
    against ``limits`` before any worker reads a row."""
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
    if limits.max_rows is not None and rows > limits.max_rows:
        raise _too_many_rows(rows, limits.max_rows)
    size = decoded_size(parquet.metadata, schema)
    if limits.max_decompressed_bytes is not None and size > limits.max_decompressed_bytes:
        raise _too_large_decompressed(size, limits.max_decompressed_bytes)
    return TableInfo("parquet", list(schema.names), rows)
