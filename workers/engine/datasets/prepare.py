"""The prepare transform: keep rows whose subject has valid consent, drop identifiers, pseudonymise the subject key."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pyarrow as pa

from workers.engine.consent import pseudonymise

DROPPED_ROLES = ("direct_identifier", "ignore")


class PrepareError(Exception):
    def __init__(self, message: str, column: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.column = column


def subject_pseudonyms(table: pa.Table, subject_column: str, secret: bytes) -> list[str]:
    """One pseudonym per row (the same function consent records use), so rows can be matched with consent."""
    if subject_column not in table.column_names:
        raise PrepareError(f"The subject-key column {subject_column!r} is not in the data.", subject_column)
    values = table.column(subject_column).cast(pa.string()).to_pylist()
    cache: dict[str, str] = {}
    out = []
    for value in values:
        key = "" if value is None else value
        if key not in cache:
            cache[key] = pseudonymise(key, secret) if key else ""
        out.append(cache[key])
    return out


def prepare_table(
    table: pa.Table, *, roles: dict[str, str], subject_column: str, secret: bytes, consented: Iterable[str]
) -> tuple[pa.Table, dict[str, Any]]:
    """Return the prepared table and the transform spec for lineage (what was removed and why, with counts)."""
    missing = [name for name in roles if name not in table.column_names]
    if missing:
        raise PrepareError(f"Column(s) {', '.join(missing)} have roles but are not in the data.", missing[0])
    pseudonyms = subject_pseudonyms(table, subject_column, secret)
    valid = set(consented)
    keep = np.fromiter((p in valid for p in pseudonyms), dtype=bool, count=len(pseudonyms))
    dropped_columns = sorted(name for name, role in roles.items() if role in DROPPED_ROLES and name != subject_column)
    prepared = table.filter(pa.array(keep))
    prepared = prepared.set_column(
        prepared.column_names.index(subject_column),
        subject_column,
        pa.array(np.asarray(pseudonyms, dtype=object)[keep].tolist(), pa.string()),
    )
    prepared = prepared.drop_columns(dropped_columns)
    spec = {
        "transform": "prepare",
        "rows_in": table.num_rows,
        "rows_out": prepared.num_rows,
        "rows_removed_without_consent": int((~keep).sum()),
        "columns_dropped": dropped_columns,
        "subject_key": {"column": subject_column, "method": "HMAC-SHA256 under the organisation's secret"},
        "columns_out": prepared.column_names,
    }
    if prepared.num_rows == 0:
        raise PrepareError("No row has valid consent for this purpose: nothing to prepare.")
    return prepared, spec
