"""Per-column profile of a table, computed with Arrow kernels (no Python loop over rows), record batch by record batch
so memory is bounded by the batch size and each column's bounded state (exact counts up to a limit, then sketches)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from workers.engine.datasets.tables import BATCH_ROWS, MAX_TYPE_RESTARTS, MISSING_MARKERS, csv_batches, loosen

QUANTILES = [0.05, 0.25, 0.5, 0.75, 0.95]
TOP_VALUES = 10
HISTOGRAM_BINS = 20


def read_table(
    source: BinaryIO | Path,
    file_format: str,
    *,
    delimiter: str = ",",
    encoding: str = "utf8",
    missing: list[str] | None = None,
) -> pa.Table:
    """Read a CSV stream or Parquet file with types inferred and the usual missing-value markers as nulls."""
    if file_format == "parquet":
        return pq.read_table(source)
    return pacsv.read_csv(
        source,
        read_options=pacsv.ReadOptions(
            encoding=encoding.replace("-sig", "").replace("utf-8", "utf8"), block_size=8 * 1024 * 1024
        ),
        parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            null_values=missing or MISSING_MARKERS, strings_can_be_null=True, quoted_strings_can_be_null=True
        ),
    )


# Exact value counts are kept per column while the column has at most this share of EXACT_ENTRIES distinct values (at
# least MIN_EXACT): every statistic is then exact, as numpy and pandas compute it on the whole column. Beyond it the
# column switches to bounded sketches and its profile lists what became approximate (``approximate``): the distinct
# count (HyperLogLog, about 1% error), top values (Misra-Gries: counts may be low by at most rows / HEAVY_ENTRIES),
# quantiles and histogram (a KLL-style compactor of SKETCH_K values per level: rank error well under 1%). Rows,
# missing, min, max, mean and standard deviation stay exact.
EXACT_ENTRIES = 1_000_000
MIN_EXACT = 10_000
HEAVY_ENTRIES = 16_384
SKETCH_K = 8_192
HLL_BITS = 14
SAMPLE_ROWS = 2_000
GATHER_BYTES = 8 * 1024 * 1024


def _kind(arrow_type: pa.DataType, distinct: int, rows: int) -> str:
    if pa.types.is_boolean(arrow_type):
        return "boolean"
    if pa.types.is_integer(arrow_type):
        return "integer"
    if pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type):
        return "float"
    if pa.types.is_temporal(arrow_type):
        return "datetime"
    # Few distinct values relative to rows: categories; otherwise free text (names, ids, comments).
    return "categorical" if distinct <= max(50, rows * 0.05) else "text"


def _weighted_stats(
    values: np.ndarray, counts: np.ndarray, bounds: tuple[float, float] | None = None
) -> dict[str, Any]:
    """min, max, mean, std, linear quantiles and the histogram of the data that ``values`` x ``counts`` expand to,
    without expanding it: exactly numpy's (and pandas') results on the full column. ``bounds``: the histogram's range
    when ``values`` is a sketch that may have lost the extremes."""
    order = np.argsort(values, kind="stable")
    values, counts = values[order].astype(np.float64), counts[order].astype(np.int64)
    n = int(counts.sum())
    ends = np.cumsum(counts)  # the sorted position just after each distinct value

    def at(position: int) -> float:
        return float(values[np.searchsorted(ends, position, side="right")])

    quantiles = []
    for q in QUANTILES:
        h = (n - 1) * q
        low = int(np.floor(h))
        lower, upper = at(low), at(min(low + 1, n - 1))
        quantiles.append(lower + (h - low) * (upper - lower))
    mean = float((values * counts).sum() / n)
    std = float(np.sqrt(((values - mean) ** 2 * counts).sum() / (n - 1))) if n > 1 else None
    low, high = bounds if bounds is not None else (values[0], values[-1])
    hist, edges = np.histogram(values, bins=HISTOGRAM_BINS, range=(low, high), weights=counts)
    return {
        "min": float(values[0]),
        "max": float(values[-1]),
        "mean": mean,
        "std": std,
        "quantiles": {str(q): float(v) for q, v in zip(QUANTILES, quantiles, strict=True)},
        "histogram": {"edges": [float(e) for e in edges], "counts": [int(round(c)) for c in hist]},
    }


def _merge_counts(parts: list[tuple[pa.Array, np.ndarray]]) -> tuple[pa.Array, np.ndarray]:
    """Value counts of several parts summed per value, in order of first appearance (so ties among top values break
    as they did on the whole column)."""
    if len(parts) == 1:
        return parts[0]
    values = pa.concat_arrays([v for v, _ in parts])
    counts = np.concatenate([c for _, c in parts])
    codes = pc.dictionary_encode(values)
    totals = np.bincount(
        codes.indices.to_numpy(zero_copy_only=False), weights=counts, minlength=len(codes.dictionary)
    ).astype(np.int64)
    return codes.dictionary, totals


def _splitmix(bits: np.ndarray) -> np.ndarray:
    z = bits.astype(np.uint64, copy=True)
    z += np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _hash64(values: pa.Array) -> np.ndarray:
    """A 64-bit hash per value (equal values, equal hashes; -0.0 and 0.0 and every NaN alike)."""
    kind = values.type
    if pa.types.is_floating(kind):
        x = values.cast(pa.float64()).to_numpy(zero_copy_only=False) + 0.0
        x = np.where(np.isnan(x), np.nan, x)
        return _splitmix(x.view(np.uint64))
    if pa.types.is_integer(kind) or pa.types.is_boolean(kind):
        return _splitmix(values.cast(pa.int64()).to_numpy(zero_copy_only=False).view(np.uint64))
    if pa.types.is_temporal(kind):
        width = pa.int32() if kind.bit_width == 32 else pa.int64()
        return _splitmix(values.view(width).to_numpy(zero_copy_only=False).astype(np.int64).view(np.uint64))
    import pandas as pd

    return pd.util.hash_array(np.asarray(values.to_numpy(zero_copy_only=False), dtype=object))


class DistinctSketch:
    """HyperLogLog with 2^HLL_BITS one-byte registers (about 0.8% standard error)."""

    def __init__(self) -> None:
        self.registers = np.zeros(1 << HLL_BITS, dtype=np.uint8)

    def add(self, values: pa.Array) -> None:
        if len(values) == 0:
            return
        hashes = _hash64(values)
        index = (hashes >> np.uint64(64 - HLL_BITS)).astype(np.int64)
        rest = (hashes & np.uint64((1 << (64 - HLL_BITS)) - 1)).astype(np.float64)  # < 2^50: exact in a float
        bit_length = np.frexp(rest)[1]  # 0 for 0
        rank = (64 - HLL_BITS - bit_length + 1).astype(np.uint8)
        np.maximum.at(self.registers, index, rank)

    def estimate(self) -> int:
        m = float(len(self.registers))
        alpha = 0.7213 / (1 + 1.079 / m)
        raw = alpha * m * m / np.sum(np.ldexp(1.0, -self.registers.astype(np.int64)))
        zeros = int((self.registers == 0).sum())
        if raw <= 2.5 * m and zeros:
            raw = m * np.log(m / zeros)
        return int(round(raw))


class QuantileSketch:
    """A KLL-style compactor: level h holds values of weight 2^h, at most SKETCH_K per level; a full level is sorted
    and every other value (alternating offset) moves up. The total weight stays exact."""

    def __init__(self) -> None:
        self.levels: list[list[np.ndarray]] = [[]]
        self.sizes = [0]
        self.flip = 0

    def add(self, values: np.ndarray, level: int = 0) -> None:
        while len(self.levels) <= level:
            self.levels.append([])
            self.sizes.append(0)
        if len(values):
            self.levels[level].append(np.asarray(values, dtype=np.float64))
            self.sizes[level] += len(values)
        self._compact()

    def add_weighted(self, values: np.ndarray, counts: np.ndarray) -> None:
        """Each value ``count`` times, exactly: one copy at every level whose bit is set in the count."""
        for level in range(int(counts.max()).bit_length() if len(counts) else 0):
            self.add(values[((counts >> level) & 1).astype(bool)], level)

    def _compact(self) -> None:
        level = 0
        while level < len(self.levels):
            if self.sizes[level] > SKETCH_K:
                buffer = np.sort(np.concatenate(self.levels[level]))
                keep = buffer[-1:] if len(buffer) % 2 else buffer[:0]
                pairs = buffer[: len(buffer) - len(keep)]
                self.flip ^= 1
                self.levels[level] = [keep]
                self.sizes[level] = len(keep)
                promoted = pairs[self.flip :: 2]
                if level + 1 == len(self.levels):
                    self.levels.append([])
                    self.sizes.append(0)
                self.levels[level + 1].append(promoted)
                self.sizes[level + 1] += len(promoted)
            level += 1

    def weighted(self) -> tuple[np.ndarray, np.ndarray]:
        values = [np.concatenate(parts) for parts in self.levels if parts]
        weights = [np.full(self.sizes[h], 1 << h, dtype=np.int64) for h, parts in enumerate(self.levels) if parts]
        return (np.concatenate(values), np.concatenate(weights)) if values else (np.empty(0), np.empty(0, np.int64))


class ColumnProfiler:
    """One column's profile, fed batch by batch; memory is bounded by the exact-count limit and the sketches."""

    def __init__(self, name: str, arrow_type: pa.DataType, exact_limit: int = EXACT_ENTRIES) -> None:
        self.name = name
        self.type = arrow_type
        value_type = arrow_type.value_type if pa.types.is_dictionary(arrow_type) else arrow_type
        self.is_float = pa.types.is_floating(value_type) or pa.types.is_decimal(value_type)
        self.is_numeric = self.is_float or pa.types.is_integer(value_type)
        self.exact_limit = max(MIN_EXACT, exact_limit)
        self.rows = 0
        self.nulls = 0
        self.sample: list[Any] = []
        self.sampled_rows = 0
        # Exact mode: value counts, consolidated (``values``, ``counts``) plus parts not yet merged.
        self.exact = True
        self.parts: list[tuple[pa.Array, np.ndarray]] = []
        self.pending = 0
        self.consolidated = 0
        # Sketch mode.
        self.distinct_sketch: DistinctSketch | None = None
        self.heavy: tuple[pa.Array, np.ndarray] | None = None
        self.heavy_error = 0
        self.quantiles: QuantileSketch | None = None
        # Exact running moments of finite numeric values (Chan et al.'s parallel update), and extremes.
        self.n = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.low = np.inf
        self.high = -np.inf
        self.tmin: Any = None
        self.tmax: Any = None

    # ------------------------------------------------------------------------------------------------ feeding

    def add(self, array: pa.Array | pa.ChunkedArray) -> None:
        if isinstance(array, pa.ChunkedArray):
            for chunk in array.chunks:
                self.add(chunk)
            return
        if self.sampled_rows < SAMPLE_ROWS:
            head = array.slice(0, SAMPLE_ROWS - self.sampled_rows)
            self.sampled_rows += len(head)
            self.sample.extend(head.drop_null().to_pylist())
        self.rows += len(array)
        self.nulls += array.null_count
        valid = array.drop_null() if array.null_count else array
        if pa.types.is_dictionary(valid.type):
            valid = valid.dictionary_decode()
        if pa.types.is_decimal(valid.type):
            valid = valid.cast(pa.float64(), safe=False)
        if len(valid) == 0:
            return
        finite = None
        if self.is_numeric:
            numbers = valid.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
            finite = numbers[np.isfinite(numbers)] if self.is_float else numbers
            self._moments(finite)
        elif pa.types.is_temporal(valid.type):
            stats = pc.min_max(valid)
            low, high = stats["min"].as_py(), stats["max"].as_py()
            self.tmin = low if self.tmin is None or low < self.tmin else self.tmin
            self.tmax = high if self.tmax is None or high > self.tmax else self.tmax
        counts = pc.value_counts(valid)
        part = (counts.field("values"), counts.field("counts").to_numpy(zero_copy_only=False).astype(np.int64))
        if self.exact:
            self.parts.append(part)
            self.pending += len(part[0])
            # Merged lazily (when the parts have doubled), so merging costs the same as counting once.
            if self.pending > max(2 * self.consolidated, self.exact_limit // 4):
                self._consolidate()
                if self.consolidated > self.exact_limit:
                    self._to_sketches()
        else:
            self._sketch(valid, part, finite)

    def _moments(self, values: np.ndarray) -> None:
        if not len(values):
            return
        count = len(values)
        mean = float(values.mean())
        m2 = float(((values - mean) ** 2).sum())
        total = self.n + count
        delta = mean - self.mean
        self.mean += delta * count / total
        self.m2 += m2 + delta * delta * self.n * count / total
        self.n = total
        self.low = min(self.low, float(values.min()))
        self.high = max(self.high, float(values.max()))

    def _consolidate(self) -> None:
        if self.parts:
            self.parts = [_merge_counts(self.parts)]
            self.consolidated = self.pending = len(self.parts[0][0])

    def _to_sketches(self) -> None:
        values, counts = self.parts[0]
        self.parts = []
        self.exact = False
        self.distinct_sketch = DistinctSketch()
        self.distinct_sketch.add(values)
        self.heavy = (values, counts)
        self._trim_heavy()
        if self.is_numeric:
            numbers = values.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
            finite = np.isfinite(numbers)
            self.quantiles = QuantileSketch()
            self.quantiles.add_weighted(numbers[finite], counts[finite])

    def _sketch(self, valid: pa.Array, part: tuple[pa.Array, np.ndarray], finite: np.ndarray | None) -> None:
        assert self.distinct_sketch is not None and self.heavy is not None
        self.distinct_sketch.add(part[0])
        self.heavy = _merge_counts([self.heavy, part])
        self._trim_heavy()
        if self.quantiles is not None and finite is not None:
            self.quantiles.add(finite)

    def _trim_heavy(self) -> None:
        """Misra-Gries: keep the HEAVY_ENTRIES most frequent values, every count lowered by the first one dropped."""
        assert self.heavy is not None
        values, counts = self.heavy
        if len(counts) <= HEAVY_ENTRIES:
            return
        cut = int(np.partition(counts, len(counts) - HEAVY_ENTRIES - 1)[len(counts) - HEAVY_ENTRIES - 1])
        keep = counts > cut
        self.heavy_error += cut
        self.heavy = (values.filter(pa.array(keep)), counts[keep] - cut)

    # ------------------------------------------------------------------------------------------------ result

    def result(self) -> dict[str, Any]:
        rows, nulls = self.rows, self.nulls
        valid = rows - nulls
        approximate: list[str] = []
        if self.exact:
            self._consolidate()
            values, counts = self.parts[0] if self.parts else (pa.array([], self.type), np.empty(0, np.int64))
            distinct = len(values)
        else:
            assert self.distinct_sketch is not None and self.heavy is not None
            values, counts = self.heavy
            distinct = min(valid, max(len(values), self.distinct_sketch.estimate()))
            approximate.append("distinct")
        kind = _kind(self.type, distinct, rows)
        result: dict[str, Any] = {
            "name": self.name,
            "arrow_type": str(self.type),
            "kind": kind,
            "rows": rows,
            "missing": nulls,
            "missing_share": nulls / rows if rows else 0.0,
            "distinct": distinct,
            "unique_share": distinct / valid if valid else 0.0,
        }
        # Top values say something only when values repeat; for near-unique columns they would all be 1.
        wants_top = distinct <= 50 if kind == "float" else distinct <= max(1000, valid // 2)
        if valid and wants_top and len(counts):
            order = np.argsort(-counts, kind="stable")[:TOP_VALUES]
            result["top_values"] = [{"value": str(values[int(i)].as_py()), "count": int(counts[int(i)])} for i in order]
            if not self.exact:
                approximate.append("top_values")
        else:
            result["top_values"] = []
        if kind in ("integer", "float") and valid:
            if self.exact:
                numbers = values.to_numpy(zero_copy_only=False).astype(np.float64)
                finite = np.isfinite(numbers)
                if finite.any():
                    result.update(_weighted_stats(numbers[finite], counts[finite]))
            elif self.n:
                assert self.quantiles is not None
                sketch_values, weights = self.quantiles.weighted()
                stats = _weighted_stats(sketch_values, weights, bounds=(self.low, self.high))
                stats.update(
                    {
                        "min": self.low,
                        "max": self.high,
                        "mean": self.mean,
                        "std": float(np.sqrt(self.m2 / (self.n - 1))) if self.n > 1 else None,
                    }
                )
                result.update(stats)
                approximate += ["quantiles", "histogram"]
        elif kind == "datetime" and valid:
            result.update({"min": str(self.tmin), "max": str(self.tmax)})
        if approximate:
            result["approximate"] = approximate
        return result


def profile_column(name: str, column: pa.ChunkedArray | pa.Array, exact_limit: int = EXACT_ENTRIES) -> dict[str, Any]:
    profiler = ColumnProfiler(name, column.type, exact_limit)
    profiler.add(column)
    return profiler.result()


# What a profile keeps of a column holding personal data: counts and shapes, never a value (no top values, extremes,
# quantiles, means or histogram bins, any of which can be one person's value).
COUNT_KEYS = (
    "name",
    "arrow_type",
    "kind",
    "rows",
    "missing",
    "missing_share",
    "distinct",
    "unique_share",
    "pii",
    "approximate",
)


def without_values(column_profile: dict[str, Any]) -> dict[str, Any]:
    """The column's profile with every value-bearing statistic removed, for storing a personal-data column."""
    kept = {key: column_profile[key] for key in COUNT_KEYS if key in column_profile}
    if "approximate" in kept:
        kept["approximate"] = [name for name in kept["approximate"] if name in COUNT_KEYS]
    return {**kept, "top_values": [], "values_removed": True}


class TableProfiler:
    """A table's profile fed record batch by record batch (columns of a batch in parallel threads: Arrow and numpy
    kernels release the GIL). Memory: one batch plus each column's bounded state; ``samples`` keeps each column's
    non-missing values among the first SAMPLE_ROWS rows, for the personal-data detectors."""

    def __init__(self, schema: pa.Schema, exact_entries: int = EXACT_ENTRIES) -> None:
        share = exact_entries // max(1, len(schema))
        self.columns = [ColumnProfiler(field.name, field.type, share) for field in schema]
        self.rows = 0
        self._pool: Any = None
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = self._pending_bytes = 0

    def add(self, batch: pa.RecordBatch) -> None:
        """Small batches (a CSV block is 2 MB) are gathered up to BATCH_ROWS rows or GATHER_BYTES first: per-batch costs (merging
        counts, dispatching threads) are then paid once per BATCH_ROWS rows."""
        self.rows += batch.num_rows
        self._pending.append(batch)
        self._pending_rows += batch.num_rows
        self._pending_bytes += batch.nbytes
        if self._pending_rows >= BATCH_ROWS or self._pending_bytes >= GATHER_BYTES:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        table = pa.Table.from_batches(self._pending)
        self._pending, self._pending_rows, self._pending_bytes = [], 0, 0
        columns = [table.column(index).combine_chunks() for index in range(table.num_columns)]
        if len(self.columns) == 1 or table.num_rows < 4096:
            for profiler, column in zip(self.columns, columns, strict=True):
                profiler.add(column)
            return
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(max_workers=pa.cpu_count())
        list(self._pool.map(lambda index: self.columns[index].add(columns[index]), range(len(self.columns))))

    def samples(self) -> dict[str, list[Any]]:
        self._flush()
        return {column.name: column.sample for column in self.columns}

    def result(self) -> dict[str, Any]:
        self._flush()
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        return {"rows": self.rows, "columns": [column.result() for column in self.columns]}


def profile_batches(schema: pa.Schema, batches: Any) -> TableProfiler:
    profiler = TableProfiler(schema)
    for batch in batches:
        profiler.add(batch)
    return profiler


def profile_table(table: pa.Table) -> dict[str, Any]:
    return profile_batches(table.schema, table.to_batches(max_chunksize=BATCH_ROWS)).result()


def profile_csv(
    opener: Any, *, delimiter: str = ",", encoding: str = "utf8", column_types: dict[str, pa.DataType] | None = None
) -> TableProfiler:
    """Profile a CSV streamed from ``opener()`` (a context manager giving a fresh binary stream), in batches. A column
    whose later rows do not fit the type inferred from the first block is loosened and the file read again, so the
    types are those ``pyarrow.csv.read_csv`` infers over the whole file."""
    types = dict(column_types or {})
    for _attempt in range(MAX_TYPE_RESTARTS):
        with opener() as stream:
            reader = csv_batches(stream, delimiter=delimiter, encoding=encoding, column_types=types)
            profiler = TableProfiler(reader.schema)
            try:
                for batch in reader:
                    profiler.add(batch)
            except pa.ArrowInvalid as exc:
                profiler.result()
                loosened = loosen(exc, reader.schema, types)
                if loosened is None:
                    raise
                types = loosened
                continue
            return profiler
    raise pa.ArrowInvalid("The column types of this CSV could not be settled.")
