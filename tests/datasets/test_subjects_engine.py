"""The Django-free subject index and row rewrites against independent scans of generated tables."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pyarrow as pa
import pytest

from workers.engine.consent import pseudonymise
from workers.engine.rights import index as subject_index
from workers.engine.rights.index import IndexBuilder, IndexFormatError, digests_of, lookup
from workers.engine.rights.rows import CorrectionError, RewriteCount, rows_replaced, rows_without, select_rows

SECRET = b"k" * 32


def generated(seed: int, rows: int) -> pa.Table:
    """People appear 0..n times, in any order, with missing and empty keys between them."""
    rng = np.random.default_rng(seed)
    people = [f"P-{i}" for i in range(rng.integers(1, 60))]
    keys = [people[i] for i in rng.integers(0, len(people), rows)]
    for hole in rng.integers(0, rows, rows // 10):
        keys[hole] = None if hole % 2 else ""
    return pa.table({"person": pa.array(keys, pa.string()), "value": pa.array(np.arange(rows), pa.int64())})


def batches_of(table: pa.Table, size: int) -> list[pa.RecordBatch]:
    return table.to_batches(max_chunksize=size)


def scan(keys: list[str | None]) -> dict[str, list[int]]:
    """The independent answer: a Python dict over the plaintext column."""
    found: dict[str, list[int]] = {}
    for row, key in enumerate(keys):
        if key:
            found.setdefault(pseudonymise(key, SECRET), []).append(row)
    return found


def build(table: pa.Table, batch_rows: int, secret: bytes | None = SECRET) -> bytes:
    builder = IndexBuilder(secret)
    for batch in batches_of(table, batch_rows):
        builder.add(batch.column("person"))
    sink = io.BytesIO()
    builder.write(sink.write)
    return sink.getvalue()


@pytest.mark.parametrize(("seed", "rows", "batch_rows", "block"), [(1, 1, 1, 4), (2, 500, 7, 16), (3, 3000, 1000, 100)])
def test_index_matches_an_independent_scan(monkeypatch, seed, rows, batch_rows, block):
    monkeypatch.setattr(subject_index, "BLOCK_RECORDS", block)  # a person's rows straddle blocks
    table = generated(seed, rows)
    expected = scan(table.column("person").to_pylist())
    plain = build(table, batch_rows)
    stranger = pseudonymise("nobody", SECRET)
    answer = lookup(io.BytesIO(plain).read, digests_of([*expected, stranger, "not-a-pseudonym"]))
    assert {key.hex(): positions.tolist() for key, positions in answer.items()} == expected


def test_index_of_a_pseudonymised_column_equals_the_index_of_its_identifiers():
    table = generated(4, 800)
    pseudonyms = pa.array([pseudonymise(k, SECRET) if k else k for k in table.column("person").to_pylist()])
    derived = table.set_column(0, "person", pseudonyms)
    assert build(derived, 100, secret=None) == build(table, 100)


def test_index_is_sorted_records_and_refuses_another_format():
    plain = build(generated(5, 300), 50)
    records = np.frombuffer(plain[len(subject_index.MAGIC) :], dtype=subject_index.RECORD)
    order = np.lexsort((records["pos"], records["key"]))
    assert (order == np.arange(len(records))).all()
    with pytest.raises(IndexFormatError):
        lookup(io.BytesIO(b"x" * 64).read, digests_of([pseudonymise("P-1", SECRET)]))


def test_select_and_remove_rows_match_a_mask_filter():
    table = generated(6, 2000)
    rng = np.random.default_rng(0)
    positions = np.unique(rng.integers(0, 2000, 150))
    chosen = pa.Table.from_batches(list(select_rows(batches_of(table, 333), positions)), table.schema)
    assert chosen.column("value").to_pylist() == positions.tolist()
    count = RewriteCount()
    kept = pa.Table.from_batches(list(rows_without(batches_of(table, 333), positions, count)), table.schema)
    mask = np.ones(2000, dtype=bool)
    mask[positions] = False
    assert kept.equals(table.filter(pa.array(mask)))
    assert (count.rows_in, count.rows_out) == (2000, 2000 - len(positions))


def test_rows_replaced_changes_only_the_given_rows_and_columns():
    table = generated(7, 1000)
    positions = np.array([0, 5, 999])
    count = RewriteCount()
    out = pa.Table.from_batches(
        list(rows_replaced(batches_of(table, 128), table.schema, positions, {"value": "-1"}, count)), table.schema
    )
    values = out.column("value").to_pylist()
    assert [values[i] for i in positions] == [-1, -1, -1]
    assert [v for i, v in enumerate(values) if i not in positions] == [i for i in range(1000) if i not in positions]
    assert out.column("person").equals(table.column("person"))
    assert count.rows_changed == 3
    with pytest.raises(CorrectionError) as refused:
        list(rows_replaced(batches_of(table, 128), table.schema, positions, {"value": "many"}, RewriteCount()))
    assert "many" not in str(refused.value)  # a corrected value is personal data: the kept error never quotes it
    with pytest.raises(CorrectionError):
        list(rows_replaced(batches_of(table, 128), table.schema, positions, {"nope": 1}, RewriteCount()))


def test_digest_of_pseudonym_round_trips():
    pseudonym = pseudonymise("P-1", SECRET)
    assert digests_of([pseudonym.upper(), pseudonym])[0] == bytes.fromhex(pseudonym)
    assert hashlib.sha256(b"").hexdigest() != pseudonym


@pytest.mark.parametrize(("seed", "rows", "block"), [(8, 1200, 16), (9, 40, 4), (10, 3000, 100000)])
def test_index_without_rows_equals_the_index_built_from_the_new_table(monkeypatch, seed, rows, block):
    from workers.engine.rights.index import index_without

    monkeypatch.setattr(subject_index, "BLOCK_RECORDS", block)
    table = generated(seed, rows)
    keys = table.column("person").to_pylist()
    gone = {k for k in keys if k}
    gone = sorted(gone)[: max(1, len(gone) // 5)]
    removed = np.array([i for i, k in enumerate(keys) if k in gone], dtype=np.int64)
    mask = np.ones(rows, dtype=bool)
    mask[removed] = False
    sink = io.BytesIO()
    index_without(io.BytesIO(build(table, 97)).read, sink.write, removed)
    assert sink.getvalue() == build(table.filter(pa.array(mask)), 97)
    unchanged = io.BytesIO()
    index_without(io.BytesIO(build(table, 97)).read, unchanged.write, np.array([], dtype=np.int64))
    assert unchanged.getvalue() == build(table, 97)
