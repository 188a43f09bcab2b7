"""Post-market monitoring drift: one window of 1,000,000 rows x 50 features (30 numeric, 20 categorical; some
drifted, with ties, missing values and a category never seen in training) against a 100,000-row training reference.

Attest's exact path (``drift_exact``: PSI, Kolmogorov-Smirnov with p-value and Wasserstein for every numeric column,
PSI, chi-square with p-value and Jensen-Shannon for every categorical one) against Evidently's DataDriftPreset on the
same data (which computes one statistic per column: normed Wasserstein or Jensen-Shannon at this size). Also timed:
the sketch path the portal runs (fold the window into a sketch in 100,000-row chunks, then ``drift_from_sketch``), in
memory and, once, streamed from the Parquet file so that only one batch of the window is ever in memory.
Each side runs in its own fresh process with one thread for numpy / BLAS / OpenMP, is warmed up on a 50,000-row slice,
and the sides are interleaved ``--repeats`` times; min and median are printed. Peak memory is the process's VmHWM
(also shown above the loaded data: the high-water mark is reset once the data is in memory).
Checks in the same run: Attest's values equal scipy's (ks_2samp, wasserstein_distance, chisquare, jensenshannon) to
1e-9 on several columns; the sketch's PSI equals the exact PSI and its KS bounds contain the exact statistic.
Targets: exact path at least 5x faster than Evidently; peak memory under 1 GB.
Usage: python benchmarks/monitoring.py [--rows 1000000 --reference-rows 100000 --repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _common import ROOT

NUMERIC, CATEGORICAL = 30, 20
FEATURES = {f"num_{i:02d}": "numeric" for i in range(NUMERIC)} | {
    f"cat_{i:02d}": "categorical" for i in range(CATEGORICAL)
}
SINGLE_THREAD = {
    name: "1"
    for name in (
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
        "NUMEXPR_NUM_THREADS",
        "POLARS_MAX_THREADS",
    )
}
CHECKED_NUMERIC = ("num_00", "num_10", "num_13", "num_20", "num_25")  # drifted, skewed + missing, ties
CHECKED_CATEGORICAL = ("cat_00", "cat_03", "cat_10")  # drifted, new category, stable
CHUNK = 100_000
WARM_UP_ROWS = 20_000


def make_frame(rows: int, seed: int, drifted: bool) -> pd.DataFrame:
    """Columns 0-9 normal, 10-19 log-normal with 3% missing, 20-29 integers (many ties); categorical columns with 3
    to 15 levels. In the window, numeric columns 0-2, 10-11 and 20 and categorical 0-2 drift, and cat_03 gets a
    category training never had."""
    rng = np.random.default_rng(seed)
    shapes = np.random.default_rng(0)  # the same level shares for reference and window
    columns: dict[str, object] = {}
    for i in range(NUMERIC):
        shift = 0.2 if drifted and i in (0, 1, 2, 10, 11, 20) else 0.0
        if i < 10:
            values = rng.normal(shift, 1.0, rows)
        elif i < 20:
            values = rng.lognormal(1.0 + shift, 0.6, rows)
            values[rng.random(rows) < 0.03] = np.nan
        else:
            values = rng.poisson(8.0 * (1 + shift), rows).astype(float)
        columns[f"num_{i:02d}"] = values
    for i in range(CATEGORICAL):
        levels = 3 + i % 13
        shares = shapes.dirichlet(np.full(levels, 2.0))
        names = [f"level_{k}" for k in range(levels)]
        if drifted and i < 3:
            shares = np.roll(shares, 1)
        if drifted and i == 3:
            shares = np.append(shares * 0.98, 0.02)
            names.append("new_level")
        codes = rng.choice(len(shares), rows, p=shares / shares.sum())
        if i % 4 == 1:
            codes[rng.random(rows) < 0.02] = -1  # missing
        columns[f"cat_{i:02d}"] = pd.Categorical.from_codes(codes, categories=names)
    return pd.DataFrame(columns)


SIDE_PRELUDE = r"""
import json, sys, time
import pandas as pd
import pyarrow

def load(name):
    frame = pd.read_parquet(sys.argv[1] + "/" + name + ".parquet")
    # Arrow's allocator keeps the read buffers for reuse: hand them back so neither side is charged for them.
    pyarrow.default_memory_pool().release_unused()
    return frame

def hwm_mb():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) / 1024

def reset_hwm():
    # Linux: writing 5 resets the peak resident size to the current one (so the data's load is not counted).
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False
"""

OURS = r"""
from workers.engine.monitoring.drift import drift_exact, drift_from_sketch
from workers.engine.monitoring.reference import build_reference
from workers.engine.monitoring.sketch import WindowSketch
features = json.loads(sys.argv[2])
reference = load("reference")
window = load("window")
start = time.perf_counter()
stored = build_reference(reference, features=features)
build_s = time.perf_counter() - start

def sketch_path(frame):
    sketch = WindowSketch.empty(stored)
    for begin in range(0, len(frame), {chunk}):
        sketch.add(frame.iloc[begin : begin + {chunk}])
    return drift_from_sketch(stored, sketch)

drift_exact(reference, window.iloc[:{warm}], features)  # warm-up
sketch_path(window.iloc[:{warm}])
loaded_mb = hwm_mb()
reset = reset_hwm()
base_mb = hwm_mb()
start, cpu = time.perf_counter(), time.process_time()
exact = drift_exact(reference, window, features)
exact_s, exact_cpu = time.perf_counter() - start, time.process_time() - cpu
exact_peak_mb = hwm_mb()
reset_hwm()
start, cpu = time.perf_counter(), time.process_time()
sketched = sketch_path(window)
sketch_s, sketch_cpu = time.perf_counter() - start, time.process_time() - cpu
sketch_peak_mb = hwm_mb()
print(json.dumps({{
    "exact_s": exact_s, "sketch_s": sketch_s, "exact_cpu": exact_cpu, "sketch_cpu": sketch_cpu,
    "build_reference_s": build_s,
    "loaded_mb": loaded_mb, "base_mb": base_mb, "reset": reset,
    "exact_peak_mb": exact_peak_mb, "sketch_peak_mb": sketch_peak_mb,
    "exact": exact, "sketched": sketched,
}}))
"""

STREAM = r"""
import pyarrow.parquet
from workers.engine.monitoring.drift import drift_from_sketch
from workers.engine.monitoring.reference import build_reference
from workers.engine.monitoring.sketch import WindowSketch
features = json.loads(sys.argv[2])
stored = build_reference(load("reference"), features=features)
file = pyarrow.parquet.ParquetFile(sys.argv[1] + "/window.parquet")
reset = reset_hwm()
base_mb = hwm_mb()
start = time.perf_counter()
sketch = WindowSketch.empty(stored)
# One row group (one batch) at a time; iter_batches would pre-buffer the whole file.
for group in range(file.metadata.num_row_groups):
    sketch.add(file.read_row_group(group).to_pandas())
drift_from_sketch(stored, sketch)
print(json.dumps({{
    "seconds": time.perf_counter() - start, "base_mb": base_mb, "peak_mb": hwm_mb(), "reset": reset,
    "rows": sketch.rows,
}}))
"""

EVIDENTLY = r"""
import warnings
warnings.filterwarnings("ignore")
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset
features = json.loads(sys.argv[2])
reference = load("reference")
window = load("window")
definition = DataDefinition(
    numerical_columns=[n for n, k in features.items() if k == "numeric"],
    categorical_columns=[n for n, k in features.items() if k == "categorical"],
)

def run(current):
    snapshot = Report([DataDriftPreset()]).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    return [m for m in snapshot.dict()["metrics"] if m["metric_name"].startswith("ValueDrift")]

run(window.iloc[:{warm}])  # warm-up
loaded_mb = hwm_mb()
reset = reset_hwm()
base_mb = hwm_mb()
start, cpu = time.perf_counter(), time.process_time()
drifts = run(window)
seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
print(json.dumps({{
    "seconds": seconds, "cpu": cpu_seconds, "loaded_mb": loaded_mb, "base_mb": base_mb, "reset": reset,
    "peak_mb": hwm_mb(),
    "columns": len(drifts),
    "methods": sorted({{m["config"]["method"] for m in drifts}}),
}}))
"""


def run_side(code: str, folder: Path) -> dict:
    """One side in a fresh single-threaded process; it prints one JSON line."""
    script = f"import sys; sys.path.insert(0, {str(ROOT)!r})\n{SIDE_PRELUDE}\n{code}"
    script = script.format(chunk=CHUNK, warm=WARM_UP_ROWS)
    completed = subprocess.run(
        [sys.executable, "-c", script, str(folder), json.dumps(FEATURES)],
        capture_output=True,
        text=True,
        env={**os.environ, **SINGLE_THREAD},
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(completed.stderr[-3000:])
    return json.loads(completed.stdout.strip().splitlines()[-1])


def check_against_scipy(folder: Path, ours: dict) -> float:
    """The largest difference between Attest's exact statistics and scipy's on the checked columns."""
    from scipy import stats
    from scipy.spatial.distance import jensenshannon

    reference = pd.read_parquet(folder / "reference.parquet")
    window = pd.read_parquet(folder / "window.parquet")
    worst = 0.0
    for name in CHECKED_NUMERIC:
        ref, win = reference[name].dropna().to_numpy(), window[name].dropna().to_numpy()
        expected = stats.ks_2samp(ref, win)
        got = ours[name]
        worst = max(
            worst,
            abs(got["ks_statistic"] - expected.statistic),
            abs(got["ks_pvalue"] - expected.pvalue),
            abs(got["wasserstein"] - stats.wasserstein_distance(ref, win)),
        )
    for name in CHECKED_CATEGORICAL:
        got = ours[name]
        categories = got["categories"]
        ref_counts = reference[name].value_counts().reindex(categories, fill_value=0).to_numpy(dtype=float)
        counts = window[name].value_counts().reindex(categories, fill_value=0).to_numpy(dtype=float)
        shares = ref_counts / ref_counts.sum()
        kept = shares > 0
        expected = stats.chisquare(counts[kept], shares[kept] / shares[kept].sum() * counts[kept].sum())
        worst = max(
            worst,
            abs(got["chi_square"] - expected.statistic) / max(1.0, expected.statistic),  # relative for large values
            abs(got["chi_square_pvalue"] - expected.pvalue),
            abs(got["jensen_shannon"] - jensenshannon(shares, counts, base=2)),
        )
    return worst


def check_sketch(ours: dict, sketched: list[dict]) -> tuple[float, bool]:
    """Largest |sketch PSI - exact PSI| and whether every sketch KS interval contains the exact statistic."""
    psi_gap, contained = 0.0, True
    for entry in sketched:
        exact = ours[entry["feature"]]
        if entry["kind"] == "numeric":
            psi_gap = max(psi_gap, abs(entry["psi"] - exact["psi"]))
            low, high = entry["ks_statistic_bounds"]
            contained &= low - 1e-12 <= exact["ks_statistic"] <= high + 1e-12
    return psi_gap, contained


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reference-rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="attest-bench-monitoring-"))
    try:
        make_frame(args.reference_rows, seed=1, drifted=False).to_parquet(folder / "reference.parquet")
        # Row groups of one batch each, so a reader can stream the window without holding it.
        make_frame(args.rows, seed=2, drifted=True).to_parquet(folder / "window.parquet", row_group_size=CHUNK)
        ours_runs, evidently_runs = [], []
        for _ in range(args.repeats):
            ours_runs.append(run_side(OURS, folder))
            evidently_runs.append(run_side(EVIDENTLY, folder))
        streamed = run_side(STREAM, folder)
        assert streamed["rows"] == args.rows
        ours_s = [run["exact_s"] for run in ours_runs]
        sketch_s = [run["sketch_s"] for run in ours_runs]
        evidently_s = [run["seconds"] for run in evidently_runs]
        ours_cpu = [run["exact_cpu"] for run in ours_runs]
        sketch_cpu = [run["sketch_cpu"] for run in ours_runs]
        evidently_cpu = [run["cpu"] for run in evidently_runs]
        last = ours_runs[-1]
        worst = check_against_scipy(folder, last["exact"])
        psi_gap, contained = check_sketch(last["exact"], last["sketched"])
        drifted = sorted(name for name, entry in last["exact"].items() if entry["psi"] >= 0.1)

        def line(label: str, wall: list[float], cpu: list[float]) -> str:
            return (
                f"{label:<44} wall min {min(wall):7.2f} s  median {statistics.median(wall):7.2f} s   "
                f"CPU min {min(cpu):7.2f} s  median {statistics.median(cpu):7.2f} s"
            )

        def ratio(slow: list[float], fast: list[float]) -> str:
            return (
                f"min {min(slow) / min(fast):5.1f}x, median {statistics.median(slow) / statistics.median(fast):5.1f}x"
            )

        print(
            f"window {args.rows:,} rows x {len(FEATURES)} features ({NUMERIC} numeric, {CATEGORICAL} categorical) "
            f"against {args.reference_rows:,} reference rows; {args.repeats} interleaved runs, one thread each"
        )
        print(line("Evidently DataDriftPreset", evidently_s, evidently_cpu))
        print(f"  (Evidently's methods here: {', '.join(evidently_runs[-1]['methods'])})")
        print(line("Attest drift_exact (PSI+KS+W / PSI+chi2+JS)", ours_s, ours_cpu))
        print(line("Attest sketch (100k-row chunks) + drift", sketch_s, sketch_cpu))
        print(
            f"speed-up of drift_exact over Evidently, wall: {ratio(evidently_s, ours_s)}; CPU: "
            f"{ratio(evidently_cpu, ours_cpu)} (target >= 5x)"
        )
        print(
            f"speed-up of the sketch path over Evidently, wall: {ratio(evidently_s, sketch_s)}; CPU: "
            f"{ratio(evidently_cpu, sketch_cpu)}"
        )
        print(
            f"peak memory (VmHWM) Attest exact {max(r['exact_peak_mb'] for r in ours_runs):6.0f} MB "
            f"({max(r['exact_peak_mb'] - r['base_mb'] for r in ours_runs):4.0f} MB above the loaded data), sketch "
            f"{max(r['sketch_peak_mb'] for r in ours_runs):6.0f} MB; Evidently "
            f"{max(r['peak_mb'] for r in evidently_runs):6.0f} MB (target for Attest < 1024 MB)"
        )
        print(
            f"streaming the window from Parquet in {CHUNK:,}-row batches into a sketch (the portal's path, only the "
            f"reference in memory): {streamed['seconds']:.2f} s, peak {streamed['peak_mb']:.0f} MB "
            f"({streamed['peak_mb'] - streamed['base_mb']:.0f} MB above the process with the reference loaded)"
        )
        if not all(run["reset"] for run in [*ours_runs, *evidently_runs, streamed]):
            print("(the peak could not be reset after loading: it includes reading the data)")
        print(
            f"largest difference from scipy on {len(CHECKED_NUMERIC)} numeric + {len(CHECKED_CATEGORICAL)} "
            f"categorical columns: {worst:.1e} (target <= 1e-9)"
        )
        print(
            f"sketch vs exact: PSI differs by at most {psi_gap:.1e}; KS bounds contain the exact statistic: {contained}"
        )
        print(f"columns with PSI >= 0.1: {', '.join(drifted)}; reference built in {last['build_reference_s']:.2f} s")
        assert worst <= 1e-9 and contained and psi_gap <= 1e-9
        assert all(run["columns"] == len(FEATURES) for run in evidently_runs)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"(benchmark took {time.perf_counter() - started:.0f} s)")
