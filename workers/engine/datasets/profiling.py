"""Per-column profile of a table, computed with Arrow kernels (no Python loop over rows)."""

from __future__ import annotations

import math
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


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def profile_column(name: str, column: pa.ChunkedArray) -> dict[str, Any]:
    rows = len(column)
    nulls = column.null_count
    distinct = pc.count_distinct(column, mode="only_valid").as_py()
    kind = _kind(column.type, distinct, rows)
    result: dict[str, Any] = {
        "name": name,
        "arrow_type": str(column.type),
        "kind": kind,
        "rows": rows,
        "missing": nulls,
        "missing_share": nulls / rows if rows else 0.0,
        "distinct": distinct,
        "unique_share": distinct / (rows - nulls) if rows - nulls else 0.0,
    }
    counts = pc.value_counts(column.drop_null() if nulls else column)
    if len(counts):
        values, freqs = counts.field("values"), counts.field("counts").to_numpy()
        order = np.argsort(-freqs, kind="stable")[:TOP_VALUES]
        result["top_values"] = [{"value": str(values[int(i)].as_py()), "count": int(freqs[int(i)])} for i in order]
    else:
        result["top_values"] = []
    if kind in ("integer", "float") and rows - nulls:
        numeric = pc.cast(column, pa.float64())
        stats = pc.min_max(numeric)
        result.update(
            {
                "min": _finite(stats["min"].as_py()),
                "max": _finite(stats["max"].as_py()),
                "mean": _finite(pc.mean(numeric).as_py()),
                "std": _finite(pc.stddev(numeric, ddof=1).as_py()),
                "quantiles": {
                    str(q): _finite(v)
                    for q, v in zip(
                        QUANTILES, pc.quantile(numeric, q=QUANTILES, interpolation="linear").to_pylist(), strict=True
                    )
                },
            }
        )
        values_np = numeric.drop_null().to_numpy()
        counts_np, edges = np.histogram(values_np[np.isfinite(values_np)], bins=HISTOGRAM_BINS)
        result["histogram"] = {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts_np]}
    elif kind == "datetime" and rows - nulls:
        stats = pc.min_max(column)
        result.update({"min": str(stats["min"].as_py()), "max": str(stats["max"].as_py())})
    return result


def profile_table(table: pa.Table) -> dict[str, Any]:
    return {
        "rows": table.num_rows,
        "columns": [profile_column(name, table.column(name)) for name in table.column_names],
    }
