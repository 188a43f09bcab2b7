"""Upload path throughput: hash + encrypt + store (Attest's streaming encryptor) against `sha256sum` on the same file.

Target (issue: datasets): at least half of sha256sum's throughput, peak memory under 300 MB.
Usage: python benchmarks/upload.py [--size-mb 1024]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from _common import run_measured, timed


def make_csv(path: Path, size_mb: int) -> None:
    row = b"A-0000001,39,State-gov,77516,Bachelors,13,Never-married,Adm-clerical,White,Male,2174,0,40,<=50K\n"
    block = row * (1024 * 1024 // len(row))
    with path.open("wb") as out:
        out.write(
            b"applicant_id,age,workclass,fnlwgt,education,education_num,marital,occupation,race,sex,"
            b"gain,loss,hours,class\n"
        )
        for _ in range(size_mb):
            out.write(block)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mb", type=int, default=1024)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="attest-bench-upload-"))
    try:
        source = folder / "input.csv"
        make_csv(source, args.size_mb)
        size = source.stat().st_size
        subprocess.run(["cat", str(source)], stdout=subprocess.DEVNULL, check=True)  # warm the page cache
        reference_s, _ = timed(subprocess.run, ["sha256sum", str(source)], stdout=subprocess.DEVNULL, check=True)
        code = f"""
import time, uuid
from pathlib import Path
from workers.engine.datasets.crypto import StreamingEncryptor, new_data_key
start = time.perf_counter()
with open({str(source)!r}, 'rb') as source, StreamingEncryptor(Path({str(folder / "stored.enc")!r}), new_data_key(), uuid.uuid4()) as enc:
    while block := source.read(1024 * 1024):
        enc.write(block)
out = {{'seconds': time.perf_counter() - start, 'sha256': enc.sha256.hexdigest()}}
"""
        measured = run_measured(code)
        ours_s = measured["seconds"]
        mb = size / 2**20
        print(f"file: {mb:,.0f} MB CSV")
        print(f"sha256sum:                  {reference_s:6.2f} s  {mb / reference_s:8.1f} MB/s")
        print(f"Attest hash+encrypt+store:  {ours_s:6.2f} s  {mb / ours_s:8.1f} MB/s")
        print(f"throughput ratio (Attest / sha256sum): {reference_s / ours_s:.2f}  (target >= 0.50)")
        print(f"peak memory of the upload process: {measured['peak_rss_mb']:.0f} MB  (target < 300 MB)")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    start = time.perf_counter()
    main()
    print(f"(benchmark took {time.perf_counter() - start:.0f} s)")
    os._exit(0)
