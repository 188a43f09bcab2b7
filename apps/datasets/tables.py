"""A version's rows in record batches, decrypted as they are read, and derived tables encrypted as they are written:
what profiling, preparation and anonymisation read and write, so a worker holds one batch, never the table.

CSV streams from the decrypting reader into Arrow's streaming CSV reader, with the column types its profile settled
on (``types_from_profile``). Parquet needs random access: it is decrypted into a private temporary file (disk, not
memory) and read with ``ParquetFile.iter_batches``.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from apps.core.errors import AttestError
from apps.datasets.models import DatasetVersion
from apps.datasets.storage import EncryptedIncomingFile, open_version, storage_root


@contextmanager
def version_batches(
    version: DatasetVersion, *, columns: list[str] | None = None, column_types: dict[str, Any] | None = None
) -> Iterator[Any]:
    """The version's rows as a reader with ``.schema`` that iterates record batches (``columns``: only these)."""
    from workers.engine.datasets.tables import csv_batches, parquet_batches, types_from_profile

    with open_version(version) as reader:
        if version.file_format == "parquet":
            with tempfile.NamedTemporaryFile(dir=storage_root(), suffix=".parquet") as plain:
                shutil.copyfileobj(reader, plain, 1024 * 1024)
                plain.flush()
                yield parquet_batches(Path(plain.name), columns=columns)
            return
        types = types_from_profile(version.profile) if column_types is None else column_types
        yield csv_batches(
            reader,
            delimiter=version.delimiter or ",",
            encoding=version.encoding or "utf8",
            column_types=types,
            columns=columns,
        )


def conversion_failed(version: DatasetVersion, exc: Exception) -> AttestError:
    """A CSV whose rows no longer fit the types its profile found (never expected: the profile read the same bytes)."""
    return AttestError("invalid", f"{version} could not be read with the column types its profile found: {exc}")


def read_version_table(version: DatasetVersion) -> Any:
    """The whole table in memory (for training and evaluation, which need it whole; profiling, preparation and
    anonymisation read batches). A CSV never profiled gets ``read_csv``'s types, by loosening like the profiler."""
    import pyarrow as pa

    from workers.engine.datasets.tables import MAX_TYPE_RESTARTS, loosen, types_from_profile

    types = types_from_profile(version.profile)
    for _attempt in range(MAX_TYPE_RESTARTS):
        with version_batches(version, column_types=types) as reader:
            try:
                return pa.Table.from_batches(list(reader), reader.schema)
            except pa.ArrowInvalid as exc:
                loosened = loosen(exc, reader.schema, types)
                if loosened is None:
                    raise
                types = loosened
    raise conversion_failed(version, ValueError("too many type changes"))


def write_encrypted(batches: Any, schema: Any) -> tuple[EncryptedIncomingFile, str, int]:
    """Write ``batches`` as Parquet, encrypted as it is written (no plaintext on disk, one row group in memory);
    returns the incoming file, the plaintext's sha256 and the row count. A failure removes the file."""
    from workers.engine.datasets.tables import write_parquet

    incoming = EncryptedIncomingFile()
    try:
        rows = write_parquet(batches, schema, incoming.write)
        sha256 = incoming.close()
    except BaseException:
        incoming.discard()
        raise
    return incoming, sha256, rows


def profile_version(version: DatasetVersion) -> Any:
    """Profile a version in batches (``TableProfiler``: ``result()`` and ``samples()``)."""
    from workers.engine.datasets.profiling import profile_batches, profile_csv

    if version.file_format == "parquet":
        with version_batches(version) as reader:
            return profile_batches(reader.schema, reader)
    return profile_csv(
        lambda: open_version(version), delimiter=version.delimiter or ",", encoding=version.encoding or "utf8"
    )
