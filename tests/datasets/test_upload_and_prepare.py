import io
import os
from datetime import date, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.management import call_command
from django.test import Client

from apps.audit.models import AuditEvent
from apps.consent.services import consent_event_record
from apps.core.errors import AttestError
from apps.datasets.models import DatasetVersion
from apps.datasets.selectors import lineage, version_coverage
from apps.datasets.services import (
    dataset_version_confirm_roles,
    dataset_version_erase_expired,
    dataset_version_prepare,
    dataset_version_prepare_start,
    dataset_version_profile,
    datasheet_save,
    read_version_table,
)
from apps.datasets.storage import open_version, storage_root
from apps.jobs.models import Job

pytestmark = pytest.mark.django_db


def upload(client, dataset, content, name="data.csv", **extra):
    return client.post(
        f"/datasets/{dataset.id}/upload/", {"file": _named(content, name), **extra}, HTTP_ACCEPT="application/json"
    )


def _named(content, name):
    handle = io.BytesIO(content)
    handle.name = name
    return handle


def stored_files():
    return [p for p in storage_root().rglob("*") if p.is_file()]


@pytest.fixture
def steward_client(steward):
    client = Client()
    client.force_login(steward)
    return client


def test_an_upload_is_encrypted_at_rest_hashed_and_deduplicated(steward_client, dataset, adult_csv):
    import hashlib

    response = upload(steward_client, dataset, adult_csv)
    assert response.status_code == 201, response.content
    version = DatasetVersion.objects.get(id=response.json()["version"])
    assert version.sha256 == hashlib.sha256(adult_csv).hexdigest()
    assert version.row_count == 1000 and version.column_names[:2] == ["applicant_id", "email"]
    on_disk = (storage_root() / version.storage_path).read_bytes()
    assert b"person1@example.org" not in on_disk and b"applicant_id" not in on_disk
    with open_version(version) as reader:
        assert reader.read() == adult_csv
    again = upload(steward_client, dataset, adult_csv)
    assert again.status_code == 200 and again.json()["version"] == str(version.id)
    assert DatasetVersion.objects.count() == 1 and len(stored_files()) == 1
    assert AuditEvent.objects.filter(action="dataset.upload").count() == 1


@pytest.mark.parametrize(
    ("content", "name", "code"),
    [
        (b"", "empty.csv", "empty"),
        (b"a,b\n", "header.csv", "header_only"),
        (b"a,b\n1,2\n3,4,5\n", "ragged.csv", "ragged_rows"),
        (os.urandom(4096).replace(b"PAR1", b"XXXX") + b"\x00", "junk.csv", "binary"),
    ],
)
def test_bad_files_get_a_clear_error_and_leave_nothing_behind(steward_client, dataset, content, name, code):
    response = upload(steward_client, dataset, content, name)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid" and error["details"]["code"] == code and error["message"]
    assert not DatasetVersion.objects.exists()
    assert stored_files() == []


def test_a_parquet_file_named_csv_is_stored_as_parquet(steward_client, dataset, tmp_path):
    path = tmp_path / "x.parquet"
    pq.write_table(pa.table({"id": ["A-1", "A-2"], "age": [30, 40]}), path)
    response = upload(steward_client, dataset, path.read_bytes(), "lies.csv")
    assert response.status_code == 201
    assert DatasetVersion.objects.get().file_format == "parquet"


def test_an_upload_over_the_size_limit_is_refused_while_streaming(steward_client, dataset, settings):
    settings.UPLOAD_MAX_BYTES = 10_000
    response = upload(steward_client, dataset, b"a,b\n" + b"1,2\n" * 10_000)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    assert stored_files() == []


def test_other_organisations_and_readers_cannot_upload(dataset, outsider, owner, adult_csv):
    for user, status in ((outsider, 404), (owner, 404)):
        client = Client()
        client.force_login(user)
        assert upload(client, dataset, adult_csv).status_code == status
    assert not DatasetVersion.objects.exists()


def test_profile_roles_coverage_prepare_and_lineage(steward_client, steward, org, dataset, adult_csv):
    version = DatasetVersion.objects.get(id=upload(steward_client, dataset, adult_csv).json()["version"])
    dataset_version_profile(version_id=version.id)
    version.refresh_from_db()
    suggested = {c.name: c.suggested_role for c in version.columns.all()}
    assert suggested["applicant_id"] == "subject_key" and suggested["email"] == "direct_identifier"
    assert suggested["sex"] == "sensitive" and suggested["age"] == "quasi_identifier"
    with pytest.raises(AttestError):
        dataset_version_prepare_start(actor=steward, version=version)  # roles not confirmed yet
    dataset_version_confirm_roles(actor=steward, version=version, roles=suggested)
    for index, status in [(1, "granted"), (2, "granted"), (3, "withdrawn"), (4, "refused")]:
        consent_event_record(
            actor=steward,
            organisation=org,
            data={
                "subject_id": f"A-{index:05d}",
                "purpose": "Service improvement",
                "status": status,
                "timestamp": "2026-01-01T00:00:00Z",
            },
        )
    coverage = version_coverage(version)
    assert coverage["counts"] == {"granted": 2, "withdrawn": 1, "refused": 1, "unknown": 996}
    result = dataset_version_prepare(version_id=version.id, actor_id=steward.id)
    prepared = DatasetVersion.objects.get(id=result["version_id"])
    assert prepared.parent == version and prepared.kind == "prepared" and prepared.row_count == 2
    assert prepared.transform["rows_removed_without_consent"] == 998
    assert prepared.transform["columns_dropped"] == ["email"]
    table = read_version_table(prepared)
    assert "email" not in table.column_names
    assert not any(value.startswith("A-") for value in table.column("applicant_id").to_pylist())
    assert [node["version"].number for node in lineage(dataset)] == [1, 2]
    # Withdrawing consent changes the snapshot hash of the next preparation.
    consent_event_record(
        actor=steward,
        organisation=org,
        data={
            "subject_id": "A-00002",
            "purpose": "Service improvement",
            "status": "withdrawn",
            "timestamp": "2026-02-01T00:00:00Z",
        },
    )
    again = DatasetVersion.objects.get(id=dataset_version_prepare(version_id=version.id)["version_id"])
    assert again.row_count == 1 and again.consent_snapshot_hash != prepared.consent_snapshot_hash


def test_roles_must_cover_every_column_with_one_subject_key(steward_client, steward, dataset, adult_csv):
    version = DatasetVersion.objects.get(id=upload(steward_client, dataset, adult_csv).json()["version"])
    dataset_version_profile(version_id=version.id)
    roles = {c.name: "feature" for c in version.columns.all()}
    roles["applicant_id"] = roles["email"] = "subject_key"
    with pytest.raises(AttestError) as caught:
        dataset_version_confirm_roles(actor=steward, version=version, roles=roles)
    assert "subject_key" in caught.value.details
    del roles["age"]
    with pytest.raises(AttestError):
        dataset_version_confirm_roles(actor=steward, version=version, roles=roles)


def test_a_tampered_file_is_detected_on_read(steward_client, dataset, adult_csv):
    version = DatasetVersion.objects.get(id=upload(steward_client, dataset, adult_csv).json()["version"])
    path = storage_root() / version.storage_path
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(AttestError) as caught:
        read_version_table(version)
    assert caught.value.code == "tampered"


def test_retention_erases_by_destroying_the_key(steward_client, dataset, adult_csv):
    response = upload(
        steward_client, dataset, adult_csv, retention_until=(date.today() + timedelta(days=1)).isoformat()
    )
    version = DatasetVersion.objects.get(id=response.json()["version"])
    assert dataset_version_erase_expired(today=date.today()) == []
    assert dataset_version_erase_expired(today=date.today() + timedelta(days=2)) == [str(version.id)]
    version.refresh_from_db()
    assert version.status == "erased" and version.wrapped_key == "" and stored_files() == []
    with pytest.raises(AttestError) as caught:
        read_version_table(version)
    assert caught.value.code == "erased"
    assert AuditEvent.objects.filter(action="dataset.erase").count() == 1


def test_master_key_rotation_rewraps_keys_so_the_old_key_can_go(steward_client, dataset, adult_csv, settings):
    import base64

    version = DatasetVersion.objects.get(id=upload(steward_client, dataset, adult_csv).json()["version"])
    old_keys = list(settings.MASTER_KEYS)
    new_key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    settings.MASTER_KEYS = [new_key, *old_keys]
    call_command("rotate_master_key")
    settings.MASTER_KEYS = [new_key]
    version.refresh_from_db()
    with open_version(version) as reader:
        assert reader.read() == adult_csv


def test_the_datasheet_is_prefilled_and_versioned(steward_client, steward, dataset, adult_csv):
    version = DatasetVersion.objects.get(id=upload(steward_client, dataset, adult_csv).json()["version"])
    dataset_version_profile(version_id=version.id)
    first = datasheet_save(actor=steward, version=version)
    assert "1,000 rows" in first.content["composition"]["instances"]
    assert "sex" in first.content["composition"]["sensitive"]
    edited = {**first.content, "uses": {"intended": "Triage only", "not_for": "Fraud scoring"}}
    second = datasheet_save(actor=steward, version=version, content=edited)
    assert second.number == 2 and second.sha256 != first.sha256
    assert datasheet_save(actor=steward, version=version, content=edited).number == 2  # unchanged: no revision


WIDE_HEADER = ",".join(f"measurement_{i:05d}_of_a_wide_survey_table" for i in range(3000))


@pytest.mark.parametrize(
    ("content", "code", "words"),
    [
        # 3,000 columns: a header longer than the 64 KB sniffing window crashed both upload routes.
        ((WIDE_HEADER + "\n" + ",".join("1" for _ in range(3000)) + "\n").encode(), "too_many_columns", "columns"),
        ("name,city\nJosé,Zürich\n".encode("utf-16"), "wide_encoding", "UTF-16"),
        ("name,city\nJosé,Zürich\n".encode("utf-16-le"), "wide_encoding", "CSV UTF-8"),
    ],
)
def test_odd_files_are_named_for_what_they_are_on_both_routes(steward_client, dataset, content, code, words):
    html = upload(steward_client, dataset, content, "odd.csv")
    assert html.status_code == 400 and html.json()["error"]["details"]["code"] == code
    assert words in html.json()["error"]["message"]
    api = steward_client.post(
        f"/api/v1/datasets/{dataset.id}/versions/", {"file": _named(content, "odd.csv")}, format="multipart"
    )
    assert api.status_code == 400 and api.json()["error"]["details"]["code"] == code
    assert not DatasetVersion.objects.exists() and stored_files() == []


def test_a_small_latin1_file_is_read_as_what_it_is_not_called_invalid_utf8(steward_client, dataset):
    response = upload(steward_client, dataset, "name,city\nJosé,Zürich\nRenée,Genève\n".encode("latin-1"))
    assert response.status_code == 201, response.content
    version = DatasetVersion.objects.get()
    assert version.encoding != "utf-8"
    assert read_version_table(version).column("city").to_pylist() == ["Zürich", "Genève"]


def test_a_retention_date_that_is_not_a_date_is_a_form_error_not_a_crash(steward_client, dataset, adult_csv):
    page = steward_client.post(
        f"/datasets/{dataset.id}/upload/",
        {"file": _named(adult_csv, "a.csv"), "retention_until": "next spring"},
        follow=True,
    )
    assert page.status_code == 200 and "YYYY-MM-DD" in page.content.decode()
    assert not DatasetVersion.objects.exists() and stored_files() == []


def test_prepare_is_offered_only_when_some_row_has_consent_and_the_service_refuses_in_the_same_words(
    steward_client, steward, org, dataset, adult_csv
):
    version = DatasetVersion.objects.get(id=upload(steward_client, dataset, adult_csv).json()["version"])
    dataset_version_profile(version_id=version.id)
    version.refresh_from_db()
    roles = {c.name: c.suggested_role for c in version.columns.all()}
    dataset_version_confirm_roles(actor=steward, version=version, roles=roles)
    prepare_url = f"/datasets/versions/{version.id}/prepare/"
    # No consent record for the purpose: preparing would yield an empty version, so it is not offered...
    page = steward_client.get(f"/datasets/versions/{version.id}/").content.decode()
    assert prepare_url not in page and "No row has valid consent" in page
    # ...and the service says the same thing to anyone who posts anyway; no job is queued.
    with pytest.raises(AttestError) as refused:
        dataset_version_prepare_start(actor=steward, version=version)
    assert "No row has valid consent" in refused.value.message
    assert not Job.objects.filter(kind="prepare").exists()
    consent_event_record(
        actor=steward,
        organisation=org,
        data={
            "subject_id": "A-00001",
            "purpose": "Service improvement",
            "status": "granted",
            "timestamp": "2026-01-01T00:00:00Z",
        },
    )
    page = steward_client.get(f"/datasets/versions/{version.id}/").content.decode()
    assert prepare_url in page and "No row has valid consent" not in page
    assert dataset_version_prepare_start(actor=steward, version=version).kind == "prepare"
