import pandas as pd
import pytest

from apps.consent.services import consent_import_create, consent_import_run
from apps.datasets.models import DatasetVersion
from apps.datasets.services import (
    dataset_create,
    dataset_version_confirm_roles,
    dataset_version_prepare,
    dataset_version_profile,
    dataset_version_upload,
)
from apps.datasets.storage import EncryptedIncomingFile
from apps.usecases.services import usecase_create
from tests.ethics.factories import approve_by_board
from tests.usecases.factories import usecase_data

ROWS = 2000
FEATURES = ["age", "education-num", "sex", "hours-per-week", "marital-status"]


@pytest.fixture(autouse=True)
def private_storage(settings, tmp_path):
    settings.STORAGE_ROOT = tmp_path / "storage"


@pytest.fixture
def approved_usecase(org, owner, board_member):
    usecase = usecase_create(
        actor=owner,
        organisation=org,
        data=usecase_data(
            purpose="Service improvement",
            privacy_policy={"epsilon_cap": 5.0, "accountant": "pld", "max_consent_age_days": 30},
            fairness_policy={
                "sensitive_attributes": ["sex", "race"],
                "min_group_size": 30,
                "gates": [{"metric": "demographic_parity_difference", "threshold": 0.9}],
            },
        ),
    )
    return approve_by_board(usecase, board_member)


@pytest.fixture
def prepared_version(approved_usecase, steward, org) -> DatasetVersion:
    frame = pd.read_csv("data/adult.csv", nrows=ROWS)
    frame.insert(0, "applicant_id", [f"A-{i:05d}" for i in range(1, ROWS + 1)])
    dataset = dataset_create(actor=steward, usecase=approved_usecase, name="Adult sample")
    incoming = EncryptedIncomingFile()
    incoming.write(frame.to_csv(index=False).encode())
    sha = incoming.close()
    raw, _ = dataset_version_upload(actor=steward, dataset=dataset, incoming=incoming, sha256=sha, file_name="a.csv")
    dataset_version_profile(version_id=raw.id)
    roles = {c.name: c.suggested_role for c in raw.columns.all()}
    roles["class"] = "label"
    dataset_version_confirm_roles(actor=steward, version=raw, roles=roles)
    consent = "subject_id,purpose,status,timestamp\n" + "".join(
        f"A-{i:05d},Service improvement,granted,2026-01-01T00:00:00Z\n" for i in range(1, ROWS + 1)
    )
    consent_import = consent_import_create(
        actor=steward, organisation=org, file_name="c.csv", chunks=iter([consent.encode()])
    )
    consent_import_run(consent_import_id=consent_import.id)
    prepared = DatasetVersion.objects.get(id=dataset_version_prepare(version_id=raw.id)["version_id"])
    dataset_version_profile(version_id=prepared.id)
    prepared.refresh_from_db()
    return prepared


def run_spec(**overrides):
    spec = {
        "label": "class",
        "features": FEATURES,
        "model": "logistic_regression",
        "epochs": 2,
        "batch_size": 128,
        "learning_rate": 0.05,
        "max_grad_norm": 1.0,
        "target_epsilon": 1.0,
        "seed": 3,
    }
    spec.update(overrides)
    return spec
