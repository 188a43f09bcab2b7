"""Streaming row selection and rewrites by row position: the person's rows, the table without them, the table with
their values replaced. Each works on record batches in file order, so memory is one batch."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


class CorrectionError(Exception):
    """A corrected value does not fit its column (name and reason in the message)."""

    def __init__(self, message: str, column: str) -> None:
        super().__init__(message)
        self.message = message
        self.column = column


def _in_batch(positions: np.ndarray, start: int, count: int) -> np.ndarray:
    low, high = np.searchsorted(positions, [start, start + count])
    return positions[low:high] - start


def select_rows(batches: Iterable[pa.RecordBatch], positions: np.ndarray) -> Iterator[pa.RecordBatch]:
    """Only the rows at ``positions`` (sorted row numbers of the whole table); stops after the last one."""
    positions = np.asarray(positions, dtype=np.int64)
    start = 0
    last = int(positions[-1]) if len(positions) else -1
    for batch in batches:
        if start > last:
            return
        local = _in_batch(positions, start, batch.num_rows)
        if len(local):
            yield batch.take(pa.array(local))
        start += batch.num_rows


@dataclass
class RewriteCount:
    rows_in: int = 0
    rows_out: int = 0
    rows_changed: int = 0


def rows_without(
    batches: Iterable[pa.RecordBatch], positions: np.ndarray, count: RewriteCount
) -> Iterator[pa.RecordBatch]:
    """Every row except those at ``positions``, in order; ``count`` holds rows in / out once consumed."""
    positions = np.asarray(positions, dtype=np.int64)
    for batch in batches:
        local = _in_batch(positions, count.rows_in, batch.num_rows)
        count.rows_in += batch.num_rows
        if len(local):
            keep = np.ones(batch.num_rows, dtype=bool)
            keep[local] = False
            batch = batch.filter(pa.array(keep))
        count.rows_out += batch.num_rows
        yield batch


def typed_value(value: Any, column: str, kind: pa.DataType) -> pa.Scalar:
    """``value`` as a scalar of the column's type (text typed by an officer is cast like a CSV cell would be)."""
    try:
        if value is None:
            return pa.scalar(None, type=kind)
        if isinstance(value, str) and not pa.types.is_string(kind) and not pa.types.is_large_string(kind):
            return pc.cast(pa.scalar(value), kind)
        return pa.scalar(value, type=kind)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError, ValueError):
        # Neither the value nor Arrow's message (which quotes it) goes into the error: it is personal data, and the
        # error is kept on the job and the request.
        raise CorrectionError(f"The corrected value is not a valid {kind} for column {column!r}.", column) from None


def rows_replaced(
    batches: Iterable[pa.RecordBatch],
    schema: pa.Schema,
    positions: np.ndarray,
    corrections: dict[str, Any],
    count: RewriteCount,
) -> Iterator[pa.RecordBatch]:
    """Every row, with the ``corrections`` (column -> value) written into the rows at ``positions``."""
    unknown = [name for name in corrections if name not in schema.names]
    if unknown:
        raise CorrectionError(f"No column named {unknown[0]!r} in this version.", unknown[0])
    values = {name: typed_value(value, name, schema.field(name).type) for name, value in corrections.items()}
    positions = np.asarray(positions, dtype=np.int64)
    for batch in batches:
        local = _in_batch(positions, count.rows_in, batch.num_rows)
        count.rows_in += batch.num_rows
        if len(local):
            mask = np.zeros(batch.num_rows, dtype=bool)
            mask[local] = True
            arrays = []
            for name in batch.schema.names:
                column = batch.column(name)
                if name in values:
                    column = pc.if_else(pa.array(mask), values[name], column)
                arrays.append(column)
            batch = pa.RecordBatch.from_arrays(arrays, schema=batch.schema)
            count.rows_changed += len(local)
        count.rows_out += batch.num_rows
        yield batch
