""" "Trained on data since withdrawn: n people" (engineer C of issue 15): the count against one made here from the
decrypted training version and the consent events this test writes, and the pages that show it."""

from __future__ import annotations

import io

import pyarrow.parquet as pq
import pytest
from django.utils import timezone

from apps.accounts.models import Role
from apps.audit.models import AuditEvent
from apps.consent.services import consent_event_record, pseudonym_secret
from apps.datasets.models import DatasetVersion
from apps.datasets.storage import open_version
from apps.reports.models import Report
from apps.rights.flags import flag_for, reports_supersede_for, withdrawn_pseudonyms, withdrawn_since_training
from apps.rights.models import ReportSupersession, SubjectRequest
from apps.rights.services import subject_request_register
from tests.conftest import make_user, run_inline
from tests.deployments.loop import deployed  # noqa: F401 - a deployment made by the real services
from tests.training.conftest import ROWS, approved_usecase, prepared_version, private_storage  # noqa: F401
from workers.engine.consent import pseudonymise

pytestmark = pytest.mark.django_db

PRIVACY = {"epsilon": 1.0, "delta": 1e-5, "accountant": "pld", "noise_source": "csprng-chacha20"}
PASSING = {
    "verdict": "pass",
    "groupings": [],
    "gates": [
        {
            "metric": "demographic_parity_difference",
            "passed": True,
            "value": 0.05,
            "threshold": 0.9,
            "direction": "max",
            "grouping": "sex",
        }
    ],
}


@pytest.fixture
def officer(org):
    return make_user("privacy_officer", organisation=org, roles=(Role.PRIVACY,))


@pytest.fixture
def model(prepared_version, owner):  # noqa: F811
    """A private model as the worker reports it (no torch): even row positions trained it, odd ones tested it."""
    from apps.training.services import training_run_request, training_run_succeed
    from tests.training.conftest import run_spec

    run = training_run_request(actor=owner, version=prepared_version, spec=run_spec())
    return training_run_succeed(
        run=run,
        privacy=dict(PRIVACY),
        metrics={"validation_accuracy": 0.8},
        split={"train": list(range(0, ROWS, 2)), "validation": [], "test": list(range(1, ROWS, 2)), "sha256": "0"},
        curve=[],
        manifest={"model_sha256": "ef" * 32, "privacy": dict(PRIVACY)},
        storage_path="models/none",
        composed=1.0,
    )


@pytest.fixture
def positions(prepared_version, org):  # noqa: F811
    """Identifier -> row position in the prepared version, from its decrypted file (not from the index)."""
    with open_version(prepared_version) as stream:
        table = pq.read_table(io.BytesIO(stream.read()))
    column = table.column(prepared_version.subject_key_column).to_pylist()
    secret = pseudonym_secret(org)
    by_pseudonym = {pseudonym: index for index, pseudonym in enumerate(column)}
    return {
        f"A-{i:05d}": by_pseudonym[pseudonymise(f"A-{i:05d}", secret)]
        for i in range(1, ROWS + 1)
        if pseudonymise(f"A-{i:05d}", secret) in by_pseudonym
    }


def withdraw(steward, org, identifier, purpose="Service improvement"):
    consent_event_record(
        actor=steward,
        organisation=org,
        data={
            "subject_id": identifier,
            "purpose": purpose,
            "status": "withdrawn",
            "timestamp": timezone.now().isoformat(),
        },
    )


def completed(officer, org, kind, identifier, purposes=()):
    request = subject_request_register(
        actor=officer,
        organisation=org,
        kind=kind,
        identifier=identifier,
        identity_verification="Checked",
        purposes=purposes,
    )
    run_inline(request.trace_job_id)
    request.refresh_from_db()
    request.status = SubjectRequest.Status.COMPLETED
    request.completed_at = timezone.now()
    request.save(update_fields=["status", "completed_at"])
    return request


def pick(positions, parity, count, skip=()):
    chosen = [i for i, p in sorted(positions.items()) if p % 2 == parity and i not in skip]
    return chosen[:count]


def test_withdrawals_count_only_people_whose_rows_trained_the_model(model, positions, steward, org):
    in_training = pick(positions, 0, 3)
    only_tested = pick(positions, 1, 2)
    for identifier in in_training + only_tested:
        withdraw(steward, org, identifier)
    withdraw(steward, org, in_training[0], purpose="Benefit fraud triage")  # another purpose changes nothing
    secret = pseudonym_secret(org)
    assert withdrawn_pseudonyms(model) == {pseudonymise(i, secret) for i in in_training}
    assert withdrawn_since_training(model) == 3


def test_erased_objecting_and_rectified_people_count_once_each(model, positions, steward, officer, org):
    withdrawn = pick(positions, 0, 2)
    for identifier in withdrawn:
        withdraw(steward, org, identifier)
    rectified, objecting, elsewhere, tested = pick(positions, 0, 3, skip=withdrawn) + pick(positions, 1, 1)
    completed(officer, org, "rectification", rectified)
    completed(officer, org, "erasure", withdrawn[0])  # already counted as withdrawn: counted once
    completed(officer, org, "objection", objecting, purposes=["Service improvement"])
    completed(officer, org, "objection", elsewhere, purposes=["Benefit fraud triage"])  # not this model's purpose
    completed(officer, org, "erasure", tested)  # their rows only tested the model
    assert withdrawn_since_training(model) == 4  # two withdrawn, the rectified and the objecting person

    # Once an erasure replaced the training version its rows cannot be read; the requests still count.
    DatasetVersion.objects.filter(pk=model.training_run.dataset_version_id).update(
        status=DatasetVersion.Status.REPLACED, wrapped_key=""
    )
    model.training_run.dataset_version.refresh_from_db()
    flag = flag_for(model)
    assert flag == {"people": 3, "by_requests": 3, "training_rows_readable": False}


def test_an_open_request_does_not_count(model, positions, officer, org):
    request = completed(officer, org, "erasure", pick(positions, 0, 1)[0])
    SubjectRequest.objects.filter(pk=request.pk).update(status=SubjectRequest.Status.OPEN, completed_at=None)
    assert withdrawn_since_training(model) == 0 and flag_for(model) is None


def test_the_model_page_and_the_review_page_show_the_flag(model, positions, steward, owner, client, org):
    from apps.ethics.services import review_request_deployment
    from apps.evaluation.models import Evaluation
    from apps.evaluation.services import evaluation_record

    client.force_login(owner)
    page = client.get(f"/evaluation/models/{model.id}/").content.decode()
    assert "Trained on data since withdrawn" not in page
    for identifier in pick(positions, 0, 2):
        withdraw(steward, org, identifier)
    page = client.get(f"/evaluation/models/{model.id}/").content.decode()
    assert "Trained on data since withdrawn: 2 people" in page

    evaluation_record(
        evaluation=Evaluation.objects.get(model_version=model), results=PASSING, audit={}, privacy_cost=[]
    )
    review = review_request_deployment(actor=owner, model_version=model)
    page = client.get(f"/reviews/{review.id}/").content.decode()
    assert "Trained on data since withdrawn: 2 people" in page


def test_supersession_marks_datasheets_of_replaced_versions_and_earlier_summaries(
    prepared_version,  # noqa: F811
    officer,
    steward,
    org,
    settings,
    client,
):
    from apps.reports.services import report_request

    def issue(actor, kind, subject):
        report = report_request(actor=actor, kind=kind, subject=subject)
        run_inline(report.job_id)
        return Report.objects.get(pk=report.pk)

    datasheet = issue(steward, Report.Kind.DATASHEET, prepared_version)
    other = DatasetVersion.objects.get(dataset=prepared_version.dataset, kind=DatasetVersion.Kind.RAW)
    untouched = issue(steward, Report.Kind.DATASHEET, other)
    access = completed(officer, org, "access", "A-00009")
    summary = issue(officer, Report.Kind.SUBJECT_ACCESS, access)
    erasure = completed(officer, org, "erasure", "A-00009")

    before = AuditEvent.objects.count()
    assert reports_supersede_for(actor=officer, request=erasure, versions=[prepared_version]) == 2
    assert AuditEvent.objects.count() == before + 1
    event = AuditEvent.objects.order_by("-id").first()
    assert event.action == "rights.reports_supersede"
    assert sorted(event.after["reports"]) == sorted([datasheet.reference, summary.reference])
    assert set(ReportSupersession.objects.filter(request=erasure).values_list("report_id", flat=True)) == {
        datasheet.pk,
        summary.pk,
    }
    assert not ReportSupersession.objects.filter(report=untouched).exists()
    # Twice is harmless: nothing new is superseded.
    assert reports_supersede_for(actor=officer, request=erasure, versions=[prepared_version]) == 0

    # The verify page names the request that superseded the file.
    from pathlib import Path

    from apps.reports.services import report_verify

    verified = report_verify((Path(settings.STORAGE_ROOT) / datasheet.storage_path).read_bytes())
    assert verified["authentic"] and verified["superseded_by_request"]["reference"] == erasure.reference
    untouched_result = report_verify((Path(settings.STORAGE_ROOT) / untouched.storage_path).read_bytes())
    assert untouched_result["superseded_by_request"] is None
    client.force_login(steward)
    page = client.get(f"/reports/{datasheet.id}/").content.decode()
    assert f"Superseded by data-subject request {erasure.reference}" in page
    assert "Superseded by data-subject request" not in client.get(f"/reports/{untouched.id}/").content.decode()
    from django.core.files.uploadedfile import SimpleUploadedFile

    pdf = (Path(settings.STORAGE_ROOT) / datasheet.storage_path).read_bytes()
    upload = SimpleUploadedFile("sheet.pdf", pdf, content_type="application/pdf")
    page = " ".join(client.post("/reports/verify/", {"file": upload}).content.decode().split())
    assert f"Superseded by a data-subject request</dt><dd>{erasure.reference}" in page


def test_the_deployment_page_shows_the_flag(deployed, steward, owner, org, client):  # noqa: F811
    from apps.training.models import TrainingRun

    # Every row of the prepared version trained the deployed model.
    TrainingRun.objects.filter(pk=deployed.model_version.training_run_id).update(
        split={"train": list(range(ROWS)), "validation": [], "test": [], "sha256": "0" * 64}
    )
    client.force_login(owner)
    assert "Trained on data since withdrawn" not in client.get(f"/deployments/{deployed.id}/").content.decode()
    for identifier in ("A-00001", "A-00002", "A-00003"):
        withdraw(steward, org, identifier)
    page = client.get(f"/deployments/{deployed.id}/").content.decode()
    assert "Trained on data since withdrawn: 3 people" in page
