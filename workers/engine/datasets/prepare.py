"""The prepare transform: keep rows whose subject has valid consent, drop identifiers, pseudonymise the subject key.

It works batch by batch (``Preparation.apply``), so a worker holds one record batch of the raw version and one row
group of the prepared one, whatever the file's size; ``prepare_table`` is the same on a table in memory.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from workers.engine.consent import pseudonymise

DROPPED_ROLES = ("direct_identifier", "ignore")


class PrepareError(Exception):
    def __init__(self, message: str, column: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.column = column


CACHED_PSEUDONYMS = 200_000


def subject_pseudonyms(
    column: pa.Array | pa.ChunkedArray, secret: bytes, cache: dict[str, str] | None = None
) -> pa.Array:
    """One pseudonym per row (the same function consent records use), so rows can be matched with consent; a missing
    or empty key has the empty pseudonym. Each distinct key of the batch is hashed once (``cache``: across batches,
    emptied when it holds CACHED_PSEUDONYMS keys, so its memory is bounded)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    encoded = pc.dictionary_encode(column.cast(pa.string()))
    keys = encoded.dictionary.to_pylist()
    cache = {} if cache is None else cache
    if len(cache) + len(keys) > CACHED_PSEUDONYMS:
        cache.clear()
    out = []
    for key in keys:
        if key not in cache:
            cache[key] = pseudonymise(key, secret) if key else ""
        out.append(cache[key])
    return pc.take(pa.array(out, pa.string()), encoded.indices).fill_null("")


class Preparation:
    """One preparation: ``apply`` each record batch of the raw version in order, then read ``spec()``."""

    def __init__(
        self, schema: pa.Schema, *, roles: dict[str, str], subject_column: str, secret: bytes, consented: Iterable[str]
    ) -> None:
        names = schema.names
        missing = [name for name in roles if name not in names]
        if missing:
            raise PrepareError(f"Column(s) {', '.join(missing)} have roles but are not in the data.", missing[0])
        if subject_column not in names:
            raise PrepareError(f"The subject-key column {subject_column!r} is not in the data.", subject_column)
        self.subject_column = subject_column
        self.secret = secret
        self.valid = pa.array(sorted(set(consented)), pa.string())
        self.dropped = sorted(name for name, role in roles.items() if role in DROPPED_ROLES and name != subject_column)
        self.kept = [name for name in names if name not in self.dropped]
        self.schema = pa.schema(
            [pa.field(name, pa.string()) if name == subject_column else schema.field(name) for name in self.kept]
        )
        self.rows_in = 0
        self.rows_out = 0
        self.cache: dict[str, str] = {}

    def apply(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        self.rows_in += batch.num_rows
        pseudonyms = subject_pseudonyms(batch.column(self.subject_column), self.secret, self.cache)
        keep = pc.is_in(pseudonyms, value_set=self.valid)
        arrays = [pseudonyms if name == self.subject_column else batch.column(name) for name in self.kept]
        prepared = pa.RecordBatch.from_arrays(arrays, schema=self.schema).filter(keep)
        self.rows_out += prepared.num_rows
        return prepared

    def spec(self) -> dict[str, Any]:
        """The transform spec for lineage (what was removed and why, with counts), once every batch is applied."""
        if self.rows_out == 0:
            raise PrepareError("No row has valid consent for this purpose: nothing to prepare.")
        return {
            "transform": "prepare",
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "rows_removed_without_consent": self.rows_in - self.rows_out,
            "columns_dropped": self.dropped,
            "subject_key": {"column": self.subject_column, "method": "HMAC-SHA256 under the organisation's secret"},
            "columns_out": self.kept,
        }


def prepare_table(
    table: pa.Table, *, roles: dict[str, str], subject_column: str, secret: bytes, consented: Iterable[str]
) -> tuple[pa.Table, dict[str, Any]]:
    """Return the prepared table and the transform spec for lineage (what was removed and why, with counts)."""
    run = Preparation(table.schema, roles=roles, subject_column=subject_column, secret=secret, consented=consented)
    prepared = pa.Table.from_batches([run.apply(batch) for batch in table.to_batches()], run.schema)
    return prepared, run.spec()
