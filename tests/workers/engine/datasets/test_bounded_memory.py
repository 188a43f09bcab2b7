"""Workers hold a record batch, not the table (issue 13, point 5): an encrypted CSV several times larger than the
memory the worker may use is profiled and prepared in a child process whose peak resident memory is measured, with
exact counts; and a tiny Parquet file that expands to hundreds of millions of rows is refused from its footer."""

import json
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from workers.engine.datasets.crypto import StreamingEncryptor, new_data_key
from workers.engine.datasets.ingest import IngestError, Limits, inspect_parquet

ROOT = Path(__file__).resolve().parents[4]
# What the worker may use above the interpreter with numpy, pandas and pyarrow loaded; the file is over 3x as large.
MEMORY_LIMIT_MB = 300
BLOCK_ROWS = 100_000
SUBJECTS = 200_000  # subject ids repeat, so the consent filter keeps a known half of the rows


def write_encrypted_csv(path: Path, key: bytes, file_id: uuid.UUID, target_bytes: int) -> dict:
    """Generate the CSV block by block straight into the encryptor (no plaintext on disk); return its true counts."""
    rng = np.random.default_rng(5)
    regions = pa.array(["north", "south", "east", "west", None])
    # A long free-text column with few distinct values: many megabytes for few rows, so the test stays quick.
    notes = pa.array([f"note {i}: " + "lorem ipsum dolor sit amet " * 40 for i in range(8)])
    rows = missing_regions = consented_rows = 0
    ages: set[int] = set()
    with StreamingEncryptor(path, key, file_id) as encryptor:
        while encryptor.size < target_bytes:
            ids = np.arange(rows, rows + BLOCK_ROWS)
            text = pc.cast(pa.array(ids % SUBJECTS), pa.string())
            age = rng.integers(17, 90, BLOCK_ROWS)
            region = regions.take(pa.array(rng.integers(0, 5, BLOCK_ROWS)))
            table = pa.table(
                {
                    "subject_id": pc.binary_join_element_wise("S-", text, ""),
                    "email": pc.binary_join_element_wise("p", pc.cast(pa.array(ids), pa.string()), "@example.org", ""),
                    "age": pa.array(age),
                    "income": pa.array(rng.normal(40000, 9000, BLOCK_ROWS).round(2)),
                    "region": region,
                    "note": notes.take(pa.array(rng.integers(0, 8, BLOCK_ROWS))),
                }
            )
            sink = pa.BufferOutputStream()
            pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=rows == 0))
            encryptor.write(sink.getvalue().to_pybytes())
            rows += BLOCK_ROWS
            missing_regions += region.null_count
            consented_rows += int((ids % SUBJECTS < SUBJECTS // 2).sum())
            ages.update(np.unique(age).tolist())
    return {"rows": rows, "missing_regions": missing_regions, "ages": len(ages), "consented_rows": consented_rows}


CHILD = """
import json, sys, uuid
from pathlib import Path


def peak_mb():
    # This process's own high-water mark (ru_maxrss would include the parent's at fork, before exec).
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024


sys.path.insert(0, {root!r})
import pyarrow as pa
from workers.engine.consent import pseudonymise
from workers.engine.datasets.crypto import StreamingEncryptor, open_decrypted
from workers.engine.datasets.prepare import Preparation
from workers.engine.datasets.profiling import TableProfiler, profile_csv
from workers.engine.datasets.tables import csv_batches, types_from_profile, write_parquet

path, key, file_id = Path({path!r}), bytes.fromhex({key!r}), uuid.UUID({file_id!r})
TableProfiler.__init__.__defaults__ = (200_000,)  # the exact-count budget of this worker
opener = lambda: open_decrypted(path, key, file_id)
# Warm up the thread pool and the kernels on a few rows, then take the baseline.
profile_csv(lambda: __import__("io").BytesIO(b"a,b\\n1,x\\n")).result()
baseline = peak_mb()

profile = profile_csv(opener).result()
secret = b"s" * 32
consented = [pseudonymise(f"S-{{i}}", secret) for i in range({subjects} // 2)]
roles = {{"subject_id": "subject_key", "email": "direct_identifier"}}
out_id = uuid.uuid4()
with opener() as stream:
    reader = csv_batches(stream, column_types=types_from_profile(profile))
    run = Preparation(reader.schema, roles=roles, subject_column="subject_id", secret=secret, consented=consented)
    with StreamingEncryptor(path.with_suffix(".out"), key, out_id) as encryptor:
        written = write_parquet((run.apply(batch) for batch in reader), run.schema, encryptor.write)
spec = run.spec()
peak = peak_mb()
columns = {{c["name"]: c for c in profile["columns"]}}
print(json.dumps({{"baseline_mb": baseline, "peak_mb": peak, "rows": profile["rows"],
                  "missing_regions": columns["region"]["missing"], "ages": columns["age"]["distinct"],
                  "age_kind": columns["age"]["kind"], "rows_in": spec["rows_in"], "rows_out": spec["rows_out"],
                  "written": written, "columns_out": spec["columns_out"]}}))
"""


@pytest.mark.slow
def test_profiling_and_preparing_a_csv_several_times_the_workers_memory(tmp_path):
    key, file_id = new_data_key(), uuid.uuid4()
    path = tmp_path / "large.enc"
    truth = write_encrypted_csv(path, key, file_id, target_bytes=int(3.2 * MEMORY_LIMIT_MB * 2**20))
    assert path.stat().st_size > 3 * MEMORY_LIMIT_MB * 2**20
    code = CHILD.format(root=str(ROOT), path=str(path), key=key.hex(), file_id=str(file_id), subjects=SUBJECTS)
    completed = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=240
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    out = json.loads(completed.stdout.strip().splitlines()[-1])
    print(
        f"\nfile {path.stat().st_size / 2**20:.0f} MB, worker peak {out['peak_mb']:.0f} MB "
        f"({out['peak_mb'] - out['baseline_mb']:.0f} MB above the {out['baseline_mb']:.0f} MB interpreter)"
    )
    assert out["rows"] == out["rows_in"] == truth["rows"]
    assert out["missing_regions"] == truth["missing_regions"]
    assert out["ages"] == truth["ages"] and out["age_kind"] == "integer"
    assert out["rows_out"] == out["written"] == truth["consented_rows"]  # subjects below 100,000 consented
    assert out["columns_out"] == ["subject_id", "age", "income", "region", "note"]
    assert out["peak_mb"] - out["baseline_mb"] < MEMORY_LIMIT_MB


def test_a_tiny_parquet_file_of_200_million_rows_is_refused_from_its_footer(tmp_path):
    rows = 200_000_000
    path = tmp_path / "bomb.parquet"
    # One repeated value, dictionary- and run-length-encoded: ten row groups of 20 million rows in well under 1 MB.
    group = pa.table(
        {"x": pa.DictionaryArray.from_arrays(pa.array(np.zeros(rows // 10, dtype=np.int32)), pa.array(["same"]))}
    )
    with pq.ParquetWriter(path, group.schema) as writer:
        for _ in range(10):
            writer.write_table(group, row_group_size=rows // 10)
    assert path.stat().st_size < 1_000_000
    with pytest.raises(IngestError) as caught:
        inspect_parquet(path, Limits())
    assert caught.value.code == "too_many_rows"
    assert "200,000,000 rows" in caught.value.message and "ATTEST_MAX_ROWS" in caught.value.message
    # Under a row limit it would allow, the decoded size still counts every row (4 bytes of offsets per string).
    with pytest.raises(IngestError) as caught:
        inspect_parquet(path, Limits(max_rows=rows, max_decompressed_bytes=512 * 2**20))
    assert caught.value.code == "too_large_decompressed"
    assert caught.value.details["decompressed_bytes"] >= rows * 4


def test_a_csv_with_more_rows_than_the_limit_stops_being_read_at_the_limit():
    import io

    from workers.engine.datasets.ingest import inspect_csv

    content = b"a,b\n" + b"1,x\n" * 300_000
    with pytest.raises(IngestError) as caught:
        inspect_csv(io.BytesIO(content), Limits(max_rows=100_000))
    assert caught.value.code == "too_many_rows" and "100,000" in caught.value.message
    assert inspect_csv(io.BytesIO(content), Limits(max_rows=300_000)).rows == 300_000
