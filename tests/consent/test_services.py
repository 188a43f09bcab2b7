from datetime import UTC, datetime

import pytest

from apps.audit.models import AuditEvent
from apps.consent.models import ConsentImport, ConsentRecord, DataSubject
from apps.consent.selectors import consent_coverage, consent_state
from apps.consent.services import (
    consent_event_record,
    consent_import_create,
    consent_import_run,
    import_file_path,
    pseudonym_secret,
)
from apps.core.errors import NotFound, PermissionDenied, ValidationFailed
from tests.conftest import run_inline
from workers.engine.consent import pseudonymise

pytestmark = pytest.mark.django_db

HEADER = b"subject_id,purpose,status,timestamp,notice_version,channel,evidence_ref\n"
PURPOSE = "Service improvement"


@pytest.fixture(autouse=True)
def private_storage(settings, tmp_path):
    settings.STORAGE_ROOT = tmp_path / "storage"


def upload(actor, org, content, django_capture_on_commit_callbacks=None):
    return consent_import_create(
        actor=actor,
        organisation=org,
        file_name="consent.csv",
        chunks=iter([content[i : i + 7] for i in range(0, len(content), 7)]),
    )


def lines(*rows):
    return HEADER + b"".join(row.encode() + b"\n" for row in rows)


def test_an_import_stores_pseudonymised_history_and_reports_bad_lines(org, steward):
    content = lines(
        f"C-1,{PURPOSE},granted,2025-01-01T00:00:00Z,v1,web,f1",
        f"C-1,{PURPOSE},withdrawn,2025-02-01T00:00:00Z,v1,web,f2",
        f"C-2,{PURPOSE},granted,2025-01-05T00:00:00Z,v1,paper,",
        f"C-3,{PURPOSE},perhaps,2025-01-05T00:00:00Z,,,",
    )
    consent_import = upload(steward, org, content)
    outcome = consent_import_run(consent_import_id=consent_import.id)
    assert outcome == {"lines": 4, "valid": 3, "invalid": 1, "created_records": 3, "duplicates": 0}
    consent_import.refresh_from_db()
    assert consent_import.status == "succeeded"
    assert "4" not in consent_import.error_report.splitlines()[0] and ",status," in consent_import.error_report
    assert not import_file_path(consent_import).exists()  # raw subject ids do not outlive the import
    assert not DataSubject.objects.filter(pseudonym__startswith="C-").exists()
    secret = pseudonym_secret(org)
    state = consent_state(org, PURPOSE, datetime(2025, 3, 1, tzinfo=UTC))
    assert state == {pseudonymise("C-1", secret): "withdrawn", pseudonymise("C-2", secret): "granted"}
    assert AuditEvent.objects.filter(action="consent.import").count() == 1


def test_importing_the_same_file_twice_changes_nothing(org, steward):
    content = lines(f"C-1,{PURPOSE},granted,2025-01-01T00:00:00Z,,,", f"C-2,{PURPOSE},refused,2025-01-01T00:00:00Z,,,")
    consent_import_run(consent_import_id=upload(steward, org, content).id)
    second = consent_import_run(consent_import_id=upload(steward, org, content).id)
    assert second["created_records"] == 0 and second["duplicates"] == 2
    assert ConsentRecord.objects.count() == 2


def test_a_fatal_error_changes_nothing_even_after_valid_lines(org, steward):
    good = "".join(f"C-{i},{PURPOSE},granted,2025-01-01T00:00:00Z,,,\n" for i in range(12000)).encode()
    content = HEADER + good + b"C-x\x00\x00,junk\n"
    consent_import = upload(steward, org, content)
    with pytest.raises(ValidationFailed) as caught:
        consent_import_run(consent_import_id=consent_import.id)
    assert "binary" in caught.value.message
    assert ConsentRecord.objects.count() == 0
    # Through the job lifecycle: the import shows the failure from its job, and the raw file (external ids) is gone.
    run_inline(consent_import.job_id, expect="failed")
    consent_import.refresh_from_db()
    assert consent_import.state == "failed" and "binary" in consent_import.failure
    assert ConsentRecord.objects.count() == 0
    assert not import_file_path(consent_import).exists()


def test_only_stewards_and_admins_import_and_outsiders_get_not_found(org, owner, outsider):
    with pytest.raises(PermissionDenied):
        upload(owner, org, lines())
    with pytest.raises(NotFound):
        upload(outsider, org, lines())
    assert not ConsentImport.objects.exists()


def test_an_empty_upload_is_refused_and_leaves_no_file(org, steward, settings):
    with pytest.raises(ValidationFailed):
        upload(steward, org, b"")
    assert not any((settings.STORAGE_ROOT / "consent-imports").iterdir())


def test_a_withdrawal_pushed_through_the_api_service_is_recorded_once(org, steward):
    data = {"subject_id": "C-9", "purpose": PURPOSE, "status": "withdrawn", "timestamp": "2025-05-01T08:00:00Z"}
    first = consent_event_record(actor=steward, organisation=org, data=data)
    again = consent_event_record(actor=steward, organisation=org, data=data)
    assert first.id == again.id
    assert AuditEvent.objects.filter(action="consent.record").count() == 1


def test_an_invalid_event_names_its_fields(org, steward):
    with pytest.raises(ValidationFailed) as caught:
        consent_event_record(
            actor=steward,
            organisation=org,
            data={"subject_id": "", "purpose": "Marketing", "status": "granted", "timestamp": "2025-05-01T08:00:00"},
        )
    assert set(caught.value.details) == {"subject_id", "purpose", "timestamp"}


def test_coverage_counts_each_row_by_its_subjects_consent(org, steward):
    content = lines(
        f"C-1,{PURPOSE},granted,2025-01-01T00:00:00Z,,,",
        f"C-2,{PURPOSE},withdrawn,2025-01-01T00:00:00Z,,,",
        f"C-3,{PURPOSE},refused,2025-01-01T00:00:00Z,,,",
    )
    consent_import_run(consent_import_id=upload(steward, org, content).id)
    secret = pseudonym_secret(org)
    rows = [pseudonymise(s, secret) for s in ["C-1", "C-1", "C-2", "C-3", "C-4"]]
    coverage = consent_coverage(org, PURPOSE, datetime(2025, 6, 1, tzinfo=UTC), rows)
    assert coverage["counts"] == {"granted": 2, "withdrawn": 1, "refused": 1, "unknown": 1}
    assert coverage["shares"]["granted"] == pytest.approx(0.4)
