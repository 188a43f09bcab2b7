"""Profiling cost: Attest's profile (read + per-column statistics + histograms + top values) of a 1,000,000 x 20
CSV, streamed in record batches, against a plain `pyarrow.csv.read_csv` of the same file. Target: at most 3x. Also
prints each one's peak resident memory above the interpreter, measured in a fresh process: the profile's is bounded
by the batch size and each column's state, read_csv's grows with the file.
Usage: python benchmarks/profiling.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from _common import timed

from workers.engine.datasets.profiling import profile_csv


def make_csv(path: Path, rows: int) -> None:
    rng = np.random.default_rng(7)
    columns = {}
    for index in range(10):
        columns[f"num_{index}"] = rng.normal(50, 10, rows).round(3)
    for index in range(6):
        columns[f"cat_{index}"] = rng.choice(np.array([f"level_{k}" for k in range(12)]), rows)
    columns["age"] = rng.integers(17, 90, rows)
    columns["hours"] = rng.integers(1, 99, rows)
    columns["sex"] = rng.choice(np.array(["Male", "Female"]), rows)
    columns["id"] = np.array([f"S-{i:08d}" for i in range(rows)])
    pacsv.write_csv(pa.table(columns), path)


def peak_growth_mb(code: str) -> float:
    """Peak resident memory of ``code`` above the interpreter with pyarrow, numpy and pandas loaded, in a fresh
    process (its own VmHWM: ru_maxrss would include this process's memory at fork)."""
    import subprocess
    import sys

    from _common import ROOT

    wrapper = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
        "import numpy, pandas, pyarrow, pyarrow.csv, pyarrow.compute\n"
        "def hwm():\n"
        "    return next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM:')) / 1024\n"
        f"base = hwm()\n{code}\nprint(hwm() - base)"
    )
    done = subprocess.run([sys.executable, "-c", wrapper], capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="attest-bench-profile-"))
    try:
        path = folder / "data.csv"
        make_csv(path, args.rows)
        pacsv.read_csv(path)  # warm the page cache and Arrow's pools
        reference_s = min(timed(pacsv.read_csv, path)[0] for _ in range(3))

        def profile() -> dict:
            return profile_csv(lambda: open(path, "rb")).result()

        ours_s, result = min((timed(profile) for _ in range(3)), key=lambda pair: pair[0])
        assert len(result["columns"]) == 20 and result["rows"] == args.rows
        print(f"{args.rows:,} rows x 20 columns ({path.stat().st_size / 2**20:.0f} MB)")
        print(f"pyarrow.csv.read_csv:  {reference_s:6.2f} s")
        print(f"Attest profile:        {ours_s:6.2f} s")
        print(f"ratio (profile / read_csv): {ours_s / reference_s:.2f}  (target <= 3.0)")
        ours_mb = peak_growth_mb(
            f"from workers.engine.datasets.profiling import profile_csv\n"
            f"profile_csv(lambda: open({str(path)!r}, 'rb')).result()"
        )
        reference_mb = peak_growth_mb(f"import pyarrow.csv as c\nc.read_csv({str(path)!r})")
        print(f"peak memory above the interpreter: profile {ours_mb:.0f} MB, read_csv {reference_mb:.0f} MB")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
