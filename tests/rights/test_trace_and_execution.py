# ruff: noqa: F811 - pytest fixtures imported from tests.rights.kit are redefined as test arguments
"""The trace of a person through versions and models, checked against an independent reading of the CSV and of the
stored versions; erasure end to end, all-or-nothing on a failure half way, waiting for a training run in progress,
objection, rectification, and the "no data held" outcome of an unknown person."""

from __future__ import annotations

import pytest
from django.utils import timezone

from apps.consent.models import ConsentRecord
from apps.consent.selectors import consent_state
from apps.core.errors import PermissionDenied, ValidationFailed
from apps.datasets.models import DatasetVersion
from apps.reports.models import Report
from apps.rights import services
from apps.rights.models import ModelDecision, RetrainingTask, SubjectRequest
from apps.training.models import TrainingRun
from tests.conftest import run_inline
from tests.rights.kit import (  # noqa: F401 - shared fixtures
    PERSON,
    approved_usecase,
    officer,
    positions_in,
    prepared_version,
    private_storage,
    pseudonym_of,
    raw_frame,
    run_spec,
    trained,
)

pytestmark = pytest.mark.django_db

PURPOSE = "Service improvement"


def registered(officer, org, kind, identifier=PERSON, **extra):  # noqa: F811
    request = services.subject_request_register(
        actor=officer, organisation=org, kind=kind, identifier=identifier, identity_verification="ID card", **extra
    )
    run_inline(request.trace_job)
    request.refresh_from_db()
    return request


def live_versions(prepared):
    return list(DatasetVersion.objects.filter(dataset=prepared.dataset).order_by("number"))


def test_trace_matches_an_independent_reading_of_the_data(trained, prepared_version, officer, org):  # noqa: F811
    request = registered(officer, org, SubjectRequest.Kind.ERASURE)
    raw = prepared_version.parent
    pseudonym = pseudonym_of(org, PERSON)
    expected_raw = [i for i, value in enumerate(raw_frame()["applicant_id"]) if value == PERSON]
    expected_prepared = positions_in(prepared_version, prepared_version.subject_key_column, pseudonym)
    assert expected_raw == [41] and len(expected_prepared) == 1
    by_version = {v["version_id"]: v for v in request.trace["versions"]}
    assert set(by_version) == {str(raw.pk), str(prepared_version.pk)}
    assert by_version[str(raw.pk)]["rows"] == len(expected_raw)
    assert by_version[str(prepared_version.pk)]["rows"] == len(expected_prepared)
    [model] = request.trace["models"]
    assert model["model_version_id"] == str(trained.pk)
    split = trained.training_run.split
    expected_split = {
        part: sum(p in split[part] for p in expected_prepared) for part in ("train", "validation", "test")
    }
    assert model["split"] == expected_split and sum(expected_split.values()) == 1
    assert model["private"] is True
    assert model["epsilon"] == trained.training_run.privacy["epsilon"]
    evaluated = {e["model_version_id"] for e in request.trace["evaluations"]}
    assert evaluated == {str(trained.pk)}  # the run queued its evaluation
    assert [c["status"] for c in request.trace["consent"]] == ["granted"]
    assert request.trace["pseudonym"] == pseudonym and PERSON not in str(request.trace)


def test_an_unknown_person_completes_with_no_data_held(prepared_version, officer, org):  # noqa: F811
    request = registered(officer, org, SubjectRequest.Kind.ERASURE, identifier="Z-99999")
    assert request.trace["found"] is False and request.trace["versions"] == []
    before = {v.pk: (v.status, v.sha256) for v in live_versions(prepared_version)}
    run_inline(services.subject_request_execute(actor=officer, request=request))
    request.refresh_from_db()
    assert request.status == SubjectRequest.Status.COMPLETED
    assert request.outcome["found"] is False and request.outcome["versions"] == []
    assert request.certificate is not None and request.certificate.kind == Report.Kind.RIGHTS_CERTIFICATE
    assert {v.pk: (v.status, v.sha256) for v in live_versions(prepared_version)} == before


def test_erasure_needs_a_decision_for_every_traced_model(trained, officer, org):  # noqa: F811
    request = registered(officer, org, SubjectRequest.Kind.ERASURE)
    with pytest.raises(ValidationFailed):
        services.subject_request_execute(actor=officer, request=request)
    assert SubjectRequest.objects.get(pk=request.pk).status == SubjectRequest.Status.OPEN


def test_keeping_needs_a_private_model_and_copies_its_guarantee(trained, officer, org, owner):  # noqa: F811
    request = registered(officer, org, SubjectRequest.Kind.ERASURE)
    with pytest.raises(PermissionDenied):  # the owner trained it; separation of duties
        services.subject_request_decide(actor=owner, request=request, model_version=trained, decision="keep_dp")
    decision = services.subject_request_decide(
        actor=officer, request=request, model_version=trained, decision="keep_dp"
    )
    privacy = trained.training_run.privacy
    assert (decision.epsilon, decision.delta) == (privacy["epsilon"], privacy["delta"])
    assert f"{privacy['epsilon']:g}" in decision.justification
    TrainingRun.objects.filter(pk=trained.training_run_id).update(non_private=True)
    trained.training_run.refresh_from_db()
    other = registered(officer, org, SubjectRequest.Kind.ERASURE)
    with pytest.raises(ValidationFailed, match="Only a differentially private model"):
        services.subject_request_decide(actor=officer, request=other, model_version=trained, decision="keep_dp")
    retrain = services.subject_request_decide(actor=officer, request=other, model_version=trained, decision="retrain")
    task = RetrainingTask.objects.get()
    assert retrain.retraining_task == task and task.usecase == trained.usecase and task.status == "open"
    # The task is on the model owner's dashboard, linking to the model.
    from django.test import Client

    from tests.conftest import PASSWORD

    client = Client()
    client.login(username=owner.username, password=PASSWORD)
    dashboard = client.get("/").content.decode()
    assert "Retrain after an erasure" in dashboard and f"/evaluation/models/{trained.pk}/" in dashboard


def test_erasure_replaces_every_version_withdraws_consent_and_certifies(
    trained,
    prepared_version,
    officer,
    org,  # noqa: F811
):
    request = registered(officer, org, SubjectRequest.Kind.ERASURE)
    services.subject_request_decide(actor=officer, request=request, model_version=trained, decision="keep_dp")
    raw = prepared_version.parent
    pseudonym = pseudonym_of(org, PERSON)
    rows_before = {raw.pk: raw.row_count, prepared_version.pk: prepared_version.row_count}
    run_inline(services.subject_request_execute(actor=officer, request=request))
    request.refresh_from_db()
    assert request.status == SubjectRequest.Status.COMPLETED, request.failure
    replaced = {v["old_version_id"]: v for v in request.outcome["versions"]}
    assert set(replaced) == {str(raw.pk), str(prepared_version.pk)}
    for old in (raw, prepared_version):
        old.refresh_from_db()
        entry = replaced[str(old.pk)]
        new = DatasetVersion.objects.get(pk=entry["new_version_id"])
        assert old.status == DatasetVersion.Status.REPLACED and old.wrapped_key == "" and old.erased_at
        assert entry["old_sha256"] == old.sha256 and entry["new_sha256"] == new.sha256 != old.sha256
        assert new.row_count == rows_before[old.pk] - 1 and entry["rows_removed"] == 1
    new_raw = DatasetVersion.objects.get(pk=replaced[str(raw.pk)]["new_version_id"])
    new_prepared = DatasetVersion.objects.get(pk=replaced[str(prepared_version.pk)]["new_version_id"])
    assert positions_in(new_raw, "applicant_id", PERSON) == []
    assert positions_in(new_prepared, new_prepared.subject_key_column, pseudonym) == []
    # Nobody else lost a row: the new raw version holds every other applicant of the CSV, in order.
    from apps.datasets.tables import read_version_table

    others = [a for a in raw_frame()["applicant_id"] if a != PERSON]
    assert read_version_table(new_raw).column("applicant_id").to_pylist() == others
    assert consent_state(org, PURPOSE, timezone.now(), [pseudonym]) == {pseudonym: "withdrawn"}
    assert request.outcome["consent_withdrawn"] == [PURPOSE]
    assert request.outcome["models"][0]["decision"] == ModelDecision.Decision.KEEP_DP
    assert request.certificate.kind == Report.Kind.RIGHTS_CERTIFICATE
    # The certificate's job was queued after commit; it renders through the real pipeline.
    run_inline(request.certificate.job)
    request.certificate.refresh_from_db()
    assert request.certificate.status == Report.Status.READY


def test_erasure_is_all_or_nothing(trained, prepared_version, officer, org, monkeypatch):  # noqa: F811
    from apps.datasets import subjects

    request = registered(officer, org, SubjectRequest.Kind.ERASURE)
    services.subject_request_decide(actor=officer, request=request, model_version=trained, decision="keep_dp")
    versions_before = {v.pk: (v.status, v.sha256, v.wrapped_key) for v in live_versions(prepared_version)}
    consent_before = ConsentRecord.objects.count()
    real = subjects._write_without
    calls = []

    def fail_on_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(subjects, "_write_without", fail_on_second)
    run_inline(services.subject_request_execute(actor=officer, request=request), expect="failed")
    request.refresh_from_db()
    assert len(calls) == 2
    assert request.status == SubjectRequest.Status.OPEN
    assert request.failure  # the reason, in the job's words
    assert request.certificate is None
    assert {v.pk: (v.status, v.sha256, v.wrapped_key) for v in live_versions(prepared_version)} == versions_before
    assert ConsentRecord.objects.count() == consent_before
    # Once the fault is gone the same request completes.
    monkeypatch.setattr(subjects, "_write_without", real)
    run_inline(services.subject_request_execute(actor=officer, request=request))
    request.refresh_from_db()
    assert request.status == SubjectRequest.Status.COMPLETED and request.failure == ""


def test_a_failure_after_the_new_versions_were_written_leaves_no_file_behind(
    trained, prepared_version, officer, org, monkeypatch
):  # noqa: F811
    from apps.datasets.storage import storage_root
    from apps.rights import flags

    request = registered(officer, org, SubjectRequest.Kind.ERASURE)
    services.subject_request_decide(actor=officer, request=request, model_version=trained, decision="keep_dp")
    versions_before = {v.pk: (v.status, v.sha256, v.wrapped_key) for v in live_versions(prepared_version)}
    files_before = {p for p in storage_root().rglob("*") if p.is_file()}

    def supersession_fails(**kwargs):
        raise RuntimeError("report store unavailable")

    # The replacement files are written and their versions created; then a later step of the same transaction fails.
    monkeypatch.setattr(flags, "reports_supersede_for", supersession_fails)
    run_inline(services.subject_request_execute(actor=officer, request=request), expect="failed")
    request.refresh_from_db()
    assert request.status == SubjectRequest.Status.OPEN and request.failure
    assert {v.pk: (v.status, v.sha256, v.wrapped_key) for v in live_versions(prepared_version)} == versions_before
    assert {p for p in storage_root().rglob("*") if p.is_file()} == files_before


def test_a_request_waits_for_a_training_run_in_progress(
    trained,
    prepared_version,
    officer,
    org,
    owner,  # noqa: F811
):
    from apps.training.services import training_run_request

    request = registered(officer, org, SubjectRequest.Kind.ERASURE)
    services.subject_request_decide(actor=officer, request=request, model_version=trained, decision="keep_dp")
    busy = training_run_request(actor=owner, version=prepared_version, spec=run_spec(target_epsilon=1.0, seed=9))
    run_inline(services.subject_request_execute(actor=officer, request=request))
    request.refresh_from_db()
    assert request.status == SubjectRequest.Status.WAITING
    assert "training run" in request.waiting_reason and prepared_version.dataset.name in request.waiting_reason
    assert DatasetVersion.objects.get(pk=prepared_version.pk).status == DatasetVersion.Status.READY
    assert services.subject_requests_resume_waiting() == 0  # still running
    run_inline(busy.job_id)  # the run ends (its model is new: the next trace must decide it too)
    assert services.subject_requests_resume_waiting() == 1
    request.refresh_from_db()
    assert request.status == SubjectRequest.Status.IN_PROGRESS
    ended = run_inline(request.execute_job, expect="failed")  # the new model has no decision yet
    request.refresh_from_db()
    assert request.status == SubjectRequest.Status.OPEN and "no decision" in request.failure
    assert ended.kind == "rights_execute"


def test_objection_withdraws_only_the_named_purpose(prepared_version, officer, org):  # noqa: F811
    request = registered(officer, org, SubjectRequest.Kind.OBJECTION, purposes=[PURPOSE])
    run_inline(services.subject_request_execute(actor=officer, request=request))
    request.refresh_from_db()
    pseudonym = pseudonym_of(org, PERSON)
    assert request.status == SubjectRequest.Status.COMPLETED
    assert request.outcome["consent_withdrawn"] == [PURPOSE]
    latest = ConsentRecord.objects.filter(subject__pseudonym=pseudonym, purpose=PURPOSE).order_by("-occurred_at")[0]
    assert latest.status == "withdrawn" and latest.evidence_ref == request.reference
    assert DatasetVersion.objects.get(pk=prepared_version.pk).status == DatasetVersion.Status.READY


def test_rectification_writes_a_corrected_version_and_forgets_the_values(prepared_version, officer, org):  # noqa: F811
    request = registered(officer, org, SubjectRequest.Kind.RECTIFICATION)
    job = services.subject_request_execute(actor=officer, request=request, corrections={"hours-per-week": "41"})
    ended = run_inline(job)
    request.refresh_from_db()
    assert request.status == SubjectRequest.Status.COMPLETED, request.failure
    assert "corrections" not in ended.spec
    [entry] = [v for v in request.outcome["versions"] if v["old_version_id"] == str(prepared_version.parent_id)]
    new_raw = DatasetVersion.objects.get(pk=entry["new_version_id"])
    from apps.datasets.tables import read_version_table

    table = read_version_table(new_raw)
    [position] = positions_in(new_raw, "applicant_id", PERSON)
    assert table.column("hours-per-week")[position].as_py() == 41
    assert new_raw.transform["transform"] == "rectification"


def test_access_builds_the_export_and_the_summary_and_the_officer_sees_them(prepared_version, officer, org, client):
    from apps.rights.models import ExportPackage
    from tests.conftest import PASSWORD

    request = registered(officer, org, SubjectRequest.Kind.ACCESS)
    run_inline(services.subject_request_execute(actor=officer, request=request))
    request.refresh_from_db()
    assert request.status == SubjectRequest.Status.COMPLETED, request.failure
    package = ExportPackage.objects.get(request=request)
    assert request.outcome["export_sha256"] == package.sha256
    assert request.access_report.kind == Report.Kind.SUBJECT_ACCESS
    assert request.certificate.kind == Report.Kind.RIGHTS_CERTIFICATE
    # Nothing was erased: an access request changes no version.
    assert DatasetVersion.objects.get(pk=prepared_version.pk).status == DatasetVersion.Status.READY
    client.login(username=officer.username, password=PASSWORD)
    page = client.get(f"/rights/{request.pk}/").content.decode()
    assert f"/rights/exports/{package.pk}/download/" in page
