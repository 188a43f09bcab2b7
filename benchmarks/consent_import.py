"""Consent import: parsing, validating and pseudonymising 1,000,000 consent records (streaming), records per second
and peak memory, against the reference of Python's csv module merely reading the same file.
Usage: python benchmarks/consent_import.py [--records 1000000]
"""

from __future__ import annotations

import argparse
import csv
import shutil
import tempfile
from pathlib import Path

from _common import run_measured, timed


def make_file(path: Path, records: int) -> None:
    with path.open("w", newline="") as out:
        out.write("subject_id,purpose,status,timestamp,notice_version,channel,evidence_ref\n")
        for index in range(records):
            status = "withdrawn" if index % 17 == 0 else "granted"
            out.write(
                f"C-{index:08d},Service improvement,{status},2026-0{1 + index % 9}-1{index % 10}T08:30:00Z,"
                f"v3,web,form-{index}\n"
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="attest-bench-consent-"))
    try:
        path = folder / "consent.csv"
        make_file(path, args.records)

        def read_only() -> int:
            with path.open(newline="") as handle:
                return sum(1 for _row in csv.reader(handle))

        reference_s, _ = timed(read_only)
        code = f"""
import time
from workers.engine.consent import ParseReport, parse_consent_csv
report = ParseReport()
start = time.perf_counter()
with open({str(path)!r}, 'rb') as stream:
    count = sum(len(batch) for batch in parse_consent_csv(stream, secret=b'k' * 32, report=report))
out = {{'seconds': time.perf_counter() - start, 'valid': count, 'invalid': report.invalid}}
"""
        measured = run_measured(code)
        assert measured["valid"] == args.records and measured["invalid"] == 0
        rate = args.records / measured["seconds"]
        print(f"{args.records:,} consent records ({path.stat().st_size / 2**20:.0f} MB)")
        print(f"csv.reader only (reference): {reference_s:6.2f} s")
        print(f"Attest parse + validate + HMAC pseudonyms: {measured['seconds']:6.2f} s = {rate:,.0f} records/s")
        print(f"ratio (Attest / csv.reader): {measured['seconds'] / reference_s:.2f}")
        print(f"peak memory of the import process: {measured['peak_rss_mb']:.0f} MB (streaming, batches of 5,000)")
        print("Storing them is one transaction of bulk inserts; see tests/consent for the all-or-nothing rule.")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
