"""Upload limits on what a table expands to (issue 13, point 5): a tiny Parquet file of 200 million rows is refused at
upload from its footer, with a clear message, and nothing is stored."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from apps.datasets.models import DatasetVersion
from tests.datasets.test_upload_and_prepare import steward_client, stored_files, upload  # noqa: F401

pytestmark = pytest.mark.django_db


def test_a_tiny_parquet_file_of_200_million_rows_is_refused_at_upload(steward_client, dataset, tmp_path):  # noqa: F811
    path = tmp_path / "bomb.parquet"
    group = pa.table(
        {"x": pa.DictionaryArray.from_arrays(pa.array(np.zeros(20_000_000, dtype=np.int32)), pa.array(["same"]))}
    )
    with pq.ParquetWriter(path, group.schema) as writer:
        for _ in range(10):
            writer.write_table(group, row_group_size=20_000_000)
    assert path.stat().st_size < 1_000_000
    response = upload(steward_client, dataset, path.read_bytes(), "small.parquet")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["details"]["code"] == "too_many_rows"
    assert "200,000,000 rows" in error["message"] and "20,000,000" in error["message"]
    assert not DatasetVersion.objects.exists() and stored_files() == []


def test_the_limits_are_settings(steward_client, dataset, settings):  # noqa: F811
    settings.MAX_ROWS = 10
    response = upload(steward_client, dataset, b"a,b\n" + b"1,2\n" * 11)
    assert response.status_code == 400 and response.json()["error"]["details"]["code"] == "too_many_rows"
    settings.MAX_ROWS = 0  # no limit
    settings.MAX_DECOMPRESSED_BYTES = 20
    response = upload(steward_client, dataset, b"a,b\n" + b"1,2\n" * 11)
    assert response.status_code == 400 and response.json()["error"]["details"]["code"] == "too_large_decompressed"
    assert stored_files() == []
