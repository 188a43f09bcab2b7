"""The per-version index of subject pseudonyms -> row positions, as sorted fixed-size records.

Plaintext layout: MAGIC, then records of (32-byte pseudonym digest, big-endian uint64 row position) sorted by digest
then position. The caller encrypts it as it is written and decrypts it as it is read (the same streaming AES-GCM as
the version's file). A lookup reads the records a block at a time and binary-searches each block for the wanted
digests, so its memory is one block whatever the table's size. Building sorts the (digest, position) pairs of the
rows that have a subject: 40 bytes per such row in memory, never the table's other columns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from workers.engine.datasets.prepare import subject_pseudonyms

MAGIC = b"ATTESTSUBJIDX\x00\x00\x01"  # 16 bytes: format 1
RECORD = np.dtype([("key", "S32"), ("pos", ">u8")])
BLOCK_RECORDS = 64 * 1024  # 2.5 MB of records per block read
DIGEST_HEX = 64

_NIBBLE = np.full(256, 255, dtype=np.uint8)
for _i, _c in enumerate(b"0123456789abcdef"):
    _NIBBLE[_c] = _i
for _i, _c in enumerate(b"ABCDEF"):
    _NIBBLE[_c] = 10 + _i


class IndexFormatError(Exception):
    """The index plaintext is not an index of this format."""


def digests_of(pseudonyms: Iterable[str]) -> np.ndarray:
    """The sorted, distinct 32-byte digests of hex pseudonyms (anything that is not 64 hex digits is left out)."""
    found = set()
    for text in pseudonyms:
        text = (text or "").strip()
        if len(text) == DIGEST_HEX:
            try:
                found.add(bytes.fromhex(text))
            except ValueError:
                continue
    return np.array(sorted(found), dtype="S32")


def _hex_column_to_digests(column: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(row offsets within the batch, 32-byte digests) of the rows whose value is a 64-digit hex pseudonym."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    column = column.cast(pa.string())
    valid = pc.fill_null(pc.equal(pc.utf8_length(column), DIGEST_HEX), False)
    rows = np.flatnonzero(valid.to_numpy(zero_copy_only=False))
    if rows.size == 0:
        return rows, np.empty(0, dtype="S32")
    kept = pc.take(column, pa.array(rows))
    if isinstance(kept, pa.ChunkedArray):
        kept = kept.combine_chunks()
    offsets = np.frombuffer(kept.buffers()[1], dtype=np.int32, count=len(kept) + 1, offset=kept.offset * 4)
    data = np.frombuffer(kept.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    nibbles = _NIBBLE[data].reshape(-1, DIGEST_HEX)
    good = (nibbles != 255).all(axis=1)
    packed = ((nibbles[:, 0::2] << 4) | nibbles[:, 1::2]).astype(np.uint8)
    return rows[good], np.ascontiguousarray(packed[good]).view("S32").reshape(-1)


class IndexBuilder:
    """Feed the subject-key column of each record batch in row order (``add``), then ``write`` the sorted index.

    ``secret``: the column holds external identifiers (a raw upload), pseudonymised here with the organisation's
    secret exactly as preparation and consent do; without it the column already holds pseudonyms."""

    def __init__(self, secret: bytes | None = None) -> None:
        self.secret = secret
        self.rows = 0
        self._cache: dict[str, str] = {}
        self._keys: list[np.ndarray] = []
        self._positions: list[np.ndarray] = []

    def add(self, column: pa.Array | pa.ChunkedArray) -> None:
        if self.secret is not None:
            column = subject_pseudonyms(column, self.secret, self._cache)
        rows, digests = _hex_column_to_digests(column)
        self._keys.append(digests)
        self._positions.append(rows.astype(np.uint64) + np.uint64(self.rows))
        self.rows += len(column)

    def tap(self, batches: Iterable[pa.RecordBatch], column: str) -> Iterator[pa.RecordBatch]:
        """Pass ``batches`` through unchanged, indexing their ``column`` on the way (for a file being written)."""
        for batch in batches:
            self.add(batch.column(column))
            yield batch

    def records(self) -> np.ndarray:
        keys = np.concatenate(self._keys) if self._keys else np.empty(0, dtype="S32")
        positions = np.concatenate(self._positions) if self._positions else np.empty(0, dtype=np.uint64)
        self._keys, self._positions = [], []
        order = np.argsort(keys, kind="stable")  # positions were added in order: stable keeps them sorted per key
        out = np.empty(len(keys), dtype=RECORD)
        out["key"] = keys[order]
        out["pos"] = positions[order]
        return out

    def write(self, write: Callable[[bytes], Any]) -> int:
        """Write the index plaintext into ``write``; returns the number of rows with a subject."""
        records = self.records()
        write(MAGIC)
        for start in range(0, len(records), BLOCK_RECORDS):
            write(records[start : start + BLOCK_RECORDS].tobytes())
        return len(records)


def _record_blocks(read: Callable[[int], bytes]) -> Iterator[np.ndarray]:
    if read(len(MAGIC)) != MAGIC:
        raise IndexFormatError("not a subject index (wrong header)")
    size = BLOCK_RECORDS * RECORD.itemsize
    while True:
        block = read(size)
        if not block:
            return
        while len(block) % RECORD.itemsize:  # a short read from the stream: complete the last record
            more = read(RECORD.itemsize - len(block) % RECORD.itemsize)
            if not more:
                raise IndexFormatError("the index ends inside a record")
            block += more
        yield np.frombuffer(block, dtype=RECORD)


def lookup(read: Callable[[int], bytes], wanted: np.ndarray) -> dict[bytes, np.ndarray]:
    """The sorted row positions of each wanted digest (sorted distinct ``S32``) present in the index read with
    ``read(n)``. One block of records in memory at a time."""
    found: dict[bytes, list[np.ndarray]] = {}
    if len(wanted) == 0:
        return {}
    for block in _record_blocks(read):
        keys = block["key"]
        low = np.searchsorted(keys, wanted, side="left")
        high = np.searchsorted(keys, wanted, side="right")
        for index in np.flatnonzero(high > low):
            found.setdefault(bytes(wanted[index]), []).append(block["pos"][low[index] : high[index]])
    return {key: np.concatenate(parts).astype(np.int64) for key, parts in found.items()}


def hex_of(digest: bytes) -> str:
    return digest.hex()


def index_without(read: Callable[[int], bytes], write: Callable[[bytes], Any], removed: np.ndarray) -> int:
    """The index of the same table without the rows at ``removed`` (sorted positions), from the old index alone:
    their records dropped, every later position moved up by the rows removed before it. Still sorted by (digest,
    position), equal to an index built from the new table, with one block in memory. Returns the records written."""
    removed = np.asarray(removed, dtype=np.uint64)
    write(MAGIC)
    written = 0
    for block in _record_blocks(read):
        positions = block["pos"].astype(np.uint64)
        if len(removed):
            slot = np.searchsorted(removed, positions)
            hit = (slot < len(removed)) & (removed[np.minimum(slot, len(removed) - 1)] == positions)
            block = block[~hit]
            positions = positions[~hit] - slot[~hit].astype(np.uint64)
        out = np.empty(len(block), dtype=RECORD)
        out["key"] = block["key"]
        out["pos"] = positions
        write(out.tobytes())
        written += len(out)
    return written
