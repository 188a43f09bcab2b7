import io

import pandas as pd
import pytest

from apps.datasets.services import dataset_create
from apps.usecases.services import usecase_create
from tests.usecases.factories import usecase_data

ADULT = "data/adult.csv"


@pytest.fixture(autouse=True)
def private_storage(settings, tmp_path):
    settings.STORAGE_ROOT = tmp_path / "storage"


@pytest.fixture
def usecase(org, owner):
    return usecase_create(actor=owner, organisation=org, data=usecase_data(purpose="Service improvement"))


@pytest.fixture
def dataset(usecase, steward):
    return dataset_create(actor=steward, usecase=usecase, name="Applicants 2026")


@pytest.fixture
def adult_csv() -> bytes:
    """1,000 Adult rows with a subject key and an e-mail column added (both synthetic)."""
    frame = pd.read_csv(ADULT, nrows=1000)
    frame.insert(0, "applicant_id", [f"A-{i:05d}" for i in range(1, len(frame) + 1)])
    frame.insert(1, "email", [f"person{i}@example.org" for i in range(1, len(frame) + 1)])
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue().encode()
