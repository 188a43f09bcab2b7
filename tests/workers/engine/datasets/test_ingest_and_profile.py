import io
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from workers.engine.datasets.ingest import IngestError, inspect_csv, inspect_parquet, sniff_format
from workers.engine.datasets.profiling import profile_table, read_table

ADULT = Path(__file__).resolve().parents[4] / "data" / "adult.csv"


def csv_info(text: bytes):
    return inspect_csv(io.BytesIO(text))


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"", "empty"),
        (b"age,sex\n", "header_only"),
        (b"age,sex\n39,Male\n50,Female,extra\n", "ragged_rows"),
        (b"\x7fELF\x02\x01\x01\x00\x00\x00binary", "binary"),
        (b"age,age\n1,2\n", "bad_header"),
    ],
)
def test_bad_csv_inputs_get_a_clear_error(content, code):
    with pytest.raises(IngestError) as caught:
        csv_info(content)
    assert caught.value.code == code
    assert caught.value.message


def test_delimiter_encoding_and_formula_cells_are_detected():
    text = 'name;note\nJosé;=HYPERLINK("x")\nZoë;fine\n'.encode("latin-1")
    info = csv_info(text)
    assert info.delimiter == ";" and info.rows == 2 and info.columns == ["name", "note"]
    assert info.formula_cells == {"note": 1}
    assert info.encoding.lower().replace("_", "-") in {
        "latin-1",
        "iso-8859-1",
        "cp1252",
        "windows-1252",
        "cp1250",
        "iso-8859-15",
    }


def test_a_parquet_file_with_a_csv_name_is_recognised_by_content(tmp_path):
    path = tmp_path / "data.csv"
    pq.write_table(pa.table({"age": [1, 2]}), path)
    assert sniff_format(path.read_bytes()[:8]) == "parquet"
    assert inspect_parquet(path).rows == 2


def test_parquet_with_nested_columns_is_refused_naming_them(tmp_path):
    path = tmp_path / "nested.parquet"
    pq.write_table(pa.table({"ok": [1], "tags": [["a", "b"]], "blob": pa.array([b"\x00"], pa.binary())}), path)
    with pytest.raises(IngestError) as caught:
        inspect_parquet(path)
    assert caught.value.code == "unsupported_types"
    assert set(caught.value.details["columns"]) == {"tags", "blob"}


def test_the_profile_of_adult_matches_pandas():
    table = read_table(ADULT.open("rb"), "csv")
    profile = {column["name"]: column for column in profile_table(table)["columns"]}
    frame = pd.read_csv(ADULT, na_values=["?"], skipinitialspace=False)
    age = profile["age"]
    assert age["kind"] == "integer" and age["rows"] == len(frame)
    assert age["mean"] == pytest.approx(frame["age"].mean(), rel=1e-12)
    assert age["std"] == pytest.approx(frame["age"].std(), rel=1e-12)
    assert age["quantiles"]["0.5"] == pytest.approx(frame["age"].quantile(0.5))
    assert age["quantiles"]["0.95"] == pytest.approx(frame["age"].quantile(0.95))
    assert sum(age["histogram"]["counts"]) == frame["age"].notna().sum()
    workclass = profile["workclass"]
    assert workclass["missing"] == int(frame["workclass"].isna().sum()) > 0
    assert workclass["distinct"] == frame["workclass"].nunique()
    top = frame["workclass"].value_counts().head(1)
    assert workclass["top_values"][0] == {"value": top.index[0], "count": int(top.iloc[0])}
    assert profile["sex"]["kind"] == "categorical"


def test_integer_statistics_from_value_counts_equal_numpy_on_the_full_column():
    import numpy as np
    import pyarrow as pa

    from workers.engine.datasets.profiling import QUANTILES, profile_column

    rng = np.random.default_rng(3)
    for values in (rng.integers(-40, 90, 5001), rng.integers(0, 10**9, 2000), np.array([7]), np.array([3, 3, 9])):
        profile = profile_column("x", pa.chunked_array([pa.array(values)]))
        assert profile["kind"] == "integer"
        assert profile["mean"] == pytest.approx(values.mean(), rel=1e-12)
        assert profile["min"] == values.min() and profile["max"] == values.max()
        if len(values) > 1:
            assert profile["std"] == pytest.approx(values.std(ddof=1), rel=1e-9)
        for q in QUANTILES:
            assert profile["quantiles"][str(q)] == pytest.approx(np.quantile(values, q), rel=1e-12, abs=1e-9)
        counts, _edges = np.histogram(values.astype(float), bins=20)
        assert profile["histogram"]["counts"] == counts.tolist()
