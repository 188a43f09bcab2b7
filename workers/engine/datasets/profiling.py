"""Per-column profile of a table, computed with Arrow kernels (no Python loop over rows)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

MISSING_MARKERS = ["", "?", "NA", "N/A", "null", "NULL", "None", "nan", "NaN"]
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


def _weighted_stats(values: np.ndarray, counts: np.ndarray) -> dict[str, Any]:
    """min, max, mean, std, linear quantiles and the histogram of the data that ``values`` x ``counts`` expand to,
    without expanding it: exactly numpy's (and pandas') results on the full column."""
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
    hist, edges = np.histogram(values, bins=HISTOGRAM_BINS, range=(values[0], values[-1]), weights=counts)
    return {
        "min": float(values[0]), "max": float(values[-1]), "mean": mean, "std": std,
        "quantiles": {str(q): float(v) for q, v in zip(QUANTILES, quantiles, strict=True)},
        "histogram": {"edges": [float(e) for e in edges], "counts": [int(c) for c in hist]},
    }


def profile_column(name: str, column: pa.ChunkedArray) -> dict[str, Any]:
    rows = len(column)
    nulls = column.null_count
    valid = rows - nulls
    is_float = pa.types.is_floating(column.type) or pa.types.is_decimal(column.type)
    counts = None
    values_np = None
    if is_float:
        present = column.drop_null() if nulls else column
        values_np = (np.concatenate([chunk.to_numpy(zero_copy_only=False) for chunk in present.chunks])
                     .astype(np.float64, copy=False) if present.num_chunks else np.empty(0))
        # Hashing one contiguous array is about three times faster than hashing a CSV's many chunks.
        distinct = pc.count_distinct(pa.array(values_np), mode="only_valid").as_py()
    else:
        # One hash pass gives both the distinct count and the top values (and, for integers, every statistic).
        counts = pc.value_counts(column.drop_null() if nulls else column)
        distinct = len(counts)
    kind = _kind(column.type, distinct, rows)
    result: dict[str, Any] = {
        "name": name,
        "arrow_type": str(column.type),
        "kind": kind,
        "rows": rows,
        "missing": nulls,
        "missing_share": nulls / rows if rows else 0.0,
        "distinct": distinct,
        "unique_share": distinct / valid if valid else 0.0,
    }
    # Top values say something only when values repeat; for near-unique columns they would all be 1.
    wants_top = distinct <= 50 if kind == "float" else distinct <= max(1000, valid // 2)
    if valid and wants_top:
        if counts is None:
            counts = pc.value_counts(column.drop_null() if nulls else column)
        values, freqs = counts.field("values"), counts.field("counts").to_numpy()
        order = np.argsort(-freqs, kind="stable")[:TOP_VALUES]
        result["top_values"] = [{"value": str(values[int(i)].as_py()), "count": int(freqs[int(i)])} for i in order]
    else:
        result["top_values"] = []
    if kind == "integer" and valid and counts is not None:
        result.update(_weighted_stats(counts.field("values").to_numpy(zero_copy_only=False).astype(np.float64),
                                      counts.field("counts").to_numpy()))
    elif kind in ("integer", "float") and valid and values_np is not None:
        finite = values_np[np.isfinite(values_np)]
        if finite.size:
            # Arrow's linear quantiles equal numpy's and pandas' defaults, a little faster than np.quantile here.
            quantiles = pc.quantile(pa.array(finite, type=pa.float64()), q=QUANTILES).to_numpy()
            result.update(
                {
                    "min": float(finite.min()),
                    "max": float(finite.max()),
                    "mean": float(finite.mean()),
                    "std": float(finite.std(ddof=1)) if finite.size > 1 else None,
                    "quantiles": {str(q): float(v) for q, v in zip(QUANTILES, quantiles, strict=True)},
                }
            )
            counts_np, edges = np.histogram(finite, bins=HISTOGRAM_BINS)
            result["histogram"] = {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts_np]}
    elif kind == "datetime" and valid:
        stats = pc.min_max(column)
        result.update({"min": str(stats["min"].as_py()), "max": str(stats["max"].as_py())})
    return result


# What a profile keeps of a column holding personal data: counts and shapes, never a value (no top values, extremes,
# quantiles, means or histogram bins, any of which can be one person's value).
COUNT_KEYS = ("name", "arrow_type", "kind", "rows", "missing", "missing_share", "distinct", "unique_share", "pii")


def without_values(column_profile: dict[str, Any]) -> dict[str, Any]:
    """The column's profile with every value-bearing statistic removed, for storing a personal-data column."""
    kept = {key: column_profile[key] for key in COUNT_KEYS if key in column_profile}
    return {**kept, "top_values": [], "values_removed": True}


def profile_table(table: pa.Table) -> dict[str, Any]:
    """Columns are profiled in parallel threads: Arrow and numpy kernels release the GIL."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=pa.cpu_count()) as pool:
        columns = list(pool.map(lambda name: profile_column(name, table.column(name)), table.column_names))
    return {"rows": table.num_rows, "columns": columns}
