"""The access export package and the two signed reports of a data-subject request (engineer C of issue 15).

The export is checked against the uploaded CSV read here with pandas, and against the prepared version decrypted and
read here with pyarrow; the PDFs with poppler's pdftotext and the portal's verify function; the expiry with the
retention sweep."""

from __future__ import annotations

import io
import json
import subprocess
import zipfile
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from django.utils import timezone

from apps.accounts.models import Role
from apps.audit.models import AuditEvent
from apps.consent.services import pseudonym_secret
from apps.core.errors import InvalidState, NotFound, PermissionDenied
from apps.datasets.models import DatasetVersion
from apps.datasets.storage import open_version
from apps.reports.models import Report
from apps.reports.permissions import visible_to as reports_visible_to
from apps.reports.services import report_request, report_verify
from apps.rights.exports import (
    _safe_cell,
    access_export_create,
    export_package_bytes,
    export_packages_erase_expired,
)
from apps.rights.models import ModelDecision, SubjectRequest
from apps.rights.services import subject_request_register
from tests.conftest import make_user, run_inline
from tests.training.conftest import ROWS, approved_usecase, prepared_version, private_storage  # noqa: F401
from workers.engine.consent import pseudonymise

pytestmark = pytest.mark.django_db

PERSON = "A-00005"  # the fifth row of data/adult.csv in the shared prepared_version fixture


@pytest.fixture
def officer(org):
    return make_user("privacy_officer", organisation=org, roles=(Role.PRIVACY,))


@pytest.fixture
def adult_rows():
    frame = pd.read_csv("data/adult.csv", nrows=ROWS)
    frame.insert(0, "applicant_id", [f"A-{i:05d}" for i in range(1, ROWS + 1)])
    return frame


def registered(officer, org, kind="access", identifier=PERSON):
    request = subject_request_register(
        actor=officer,
        organisation=org,
        kind=kind,
        identifier=identifier,
        identity_verification="Passport seen at the front desk",
    )
    run_inline(request.trace_job_id)
    request.refresh_from_db()
    return request


def pdftotext(data: bytes) -> str:
    return subprocess.run(["pdftotext", "-", "-"], input=data, capture_output=True, check=True).stdout.decode()


def issue(actor, kind, request, settings):
    report = report_request(actor=actor, kind=kind, subject=request)
    run_inline(report.job_id)
    report.refresh_from_db()
    return report, (Path(settings.STORAGE_ROOT) / report.storage_path).read_bytes()


# ---------------------------------------------------------------------------------------------------- the export


def test_the_export_holds_exactly_the_persons_rows_of_every_live_version(prepared_version, officer, org, adult_rows):  # noqa: F811
    request = registered(officer, org)
    package = access_export_create(actor=officer, request=request)
    archive = zipfile.ZipFile(io.BytesIO(export_package_bytes(user=officer, package=package)))
    pseudonym = pseudonymise(PERSON, pseudonym_secret(org))

    exported = {(entry["dataset"], entry["version"]): entry for entry in json.loads(archive.read("rows.json"))}
    raw = DatasetVersion.objects.get(dataset=prepared_version.dataset, kind=DatasetVersion.Kind.RAW)
    assert set(exported) == {("Adult sample", raw.number), ("Adult sample", prepared_version.number)}

    # The raw upload: exactly the CSV's rows of this person, every value as uploaded.
    expected_raw = adult_rows[adult_rows["applicant_id"] == PERSON]
    raw_rows = exported[("Adult sample", raw.number)]["rows"]
    assert len(raw_rows) == len(expected_raw) == 1
    for column, value in expected_raw.iloc[0].items():
        assert str(raw_rows[0][column]).strip() == str(value).strip(), column

    # The prepared version: read whole here, filtered on the pseudonym with pandas.
    with open_version(prepared_version) as stream:
        prepared = pq.read_table(io.BytesIO(stream.read())).to_pandas()
    key = prepared_version.subject_key_column
    expected_prepared = prepared[prepared[key] == pseudonym]
    prepared_rows = exported[("Adult sample", prepared_version.number)]["rows"]
    assert len(prepared_rows) == len(expected_prepared) == 1
    for column, value in expected_prepared.iloc[0].items():
        assert str(prepared_rows[0][column]) == str(value), column

    # The CSV copies say the same; nobody else's identifier or pseudonym is anywhere in the package.
    everything = b"".join(archive.read(name) for name in archive.namelist())
    assert b"A-00004" not in everything and b"A-00006" not in everything
    others = set(prepared[key]) - {pseudonym}
    assert not any(other.encode() in everything for other in list(others)[:200])
    csv_names = sorted(n for n in archive.namelist() if n.endswith(".csv"))
    assert len(csv_names) == 2
    for name in csv_names:
        assert len(pd.read_csv(io.BytesIO(archive.read(name)))) == 1
    assert package.rows == 2 and package.versions == 2

    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["pseudonym"] == pseudonym and manifest["rows"] == 2
    consent = json.loads(archive.read("consent_history.json"))
    assert [(c["purpose"], c["status"]) for c in consent] == [("Service improvement", "granted")]
    purposes = json.loads(archive.read("purposes.json"))
    assert [p["purpose"] for p in purposes] == ["Service improvement"]


def test_the_export_is_encrypted_at_rest_and_its_hash_recorded(prepared_version, officer, org, settings):  # noqa: F811
    request = registered(officer, org)
    package = access_export_create(actor=officer, request=request)
    stored = (Path(settings.STORAGE_ROOT) / package.storage_path).read_bytes()
    plain = export_package_bytes(user=officer, package=package)
    import hashlib

    assert hashlib.sha256(plain).hexdigest() == package.sha256
    assert plain[:2] == b"PK" and b"PK\x03\x04" not in stored and PERSON.encode() not in stored
    event = AuditEvent.objects.get(action="rights.export_create")
    assert event.after["sha256"] == package.sha256 and event.after["rows"] == 2
    assert PERSON not in json.dumps(event.after) and "Passport" not in json.dumps(event.after)


def test_only_the_privacy_officer_downloads_the_export(prepared_version, officer, org, owner, steward, outsider):  # noqa: F811
    package = access_export_create(actor=officer, request=registered(officer, org))
    with pytest.raises(PermissionDenied):
        export_package_bytes(user=owner, package=package)
    # With a privacy officer named, the steward is not the fallback handler any more.
    with pytest.raises(PermissionDenied):
        export_package_bytes(user=steward, package=package)
    with pytest.raises(NotFound):
        export_package_bytes(user=outsider, package=package)


def test_an_expired_export_is_erased_by_the_retention_sweep(prepared_version, officer, org, settings):  # noqa: F811
    package = access_export_create(actor=officer, request=registered(officer, org))
    path = Path(settings.STORAGE_ROOT) / package.storage_path
    assert export_packages_erase_expired(now=package.expires_at - timedelta(seconds=1)) == 0
    assert path.exists()
    before = AuditEvent.objects.count()
    assert export_packages_erase_expired(now=package.expires_at + timedelta(seconds=1)) == 1
    package.refresh_from_db()
    assert not path.exists() and package.wrapped_key == "" and package.erased_at is not None
    assert len(package.sha256) == 64  # the hash remains
    assert AuditEvent.objects.count() == before + 1
    assert AuditEvent.objects.order_by("-id").first().action == "rights.export_erase"
    with pytest.raises(InvalidState):
        export_package_bytes(user=officer, package=package)
    assert export_packages_erase_expired(now=package.expires_at + timedelta(days=1)) == 0  # once only


def test_the_retention_beat_task_erases_expired_exports(prepared_version, officer, org):  # noqa: F811
    from workers.tasks import dataset_retention

    package = access_export_create(actor=officer, request=registered(officer, org))
    package.expires_at = timezone.now() - timedelta(minutes=1)
    package.save(update_fields=["expires_at"])
    dataset_retention.run()
    package.refresh_from_db()
    assert package.erased_at is not None and package.wrapped_key == ""


@pytest.mark.parametrize(
    ("value", "expected"),
    [("=SUM(A1)", "'=SUM(A1)"), ("+1", "'+1"), ("-x", "'-x"), ("@cmd", "'@cmd"), ("plain", "plain"), (-3, -3)],
)
def test_csv_cells_that_start_a_formula_are_defused(value, expected):
    assert _safe_cell(value) == expected


# --------------------------------------------------------------------------------------------------- the reports


def test_the_access_summary_is_signed_and_holds_no_identifier_and_no_row_value(
    prepared_version,  # noqa: F811
    officer,
    org,
    adult_rows,
    settings,
):
    request = registered(officer, org)
    package = access_export_create(actor=officer, request=request)
    report, data = issue(officer, Report.Kind.SUBJECT_ACCESS, request, settings)

    verified = report_verify(data)
    assert verified["authentic"] and verified["signature"]["valid"]
    evidence = report.evidence
    assert evidence["access"]["export"]["sha256"] == package.sha256
    assert evidence["access"]["pseudonym"] == request.pseudonym
    assert evidence["access"]["rows_held"] == 2

    text = pdftotext(data)
    flat = " ".join(text.split())
    assert package.sha256[:32] in flat.replace(" ", "") or package.sha256 in text.replace("\n", "")
    assert PERSON not in text and "Passport" not in text
    person = adult_rows[adult_rows["applicant_id"] == PERSON].iloc[0]
    # Distinctive values of the person's row (the census weight, the occupation) are nowhere in the PDF or evidence.
    assert str(person["fnlwgt"]) not in text and str(person["fnlwgt"]) not in json.dumps(evidence)
    assert "Service improvement" in text  # the purpose and consent history are printed
    assert PERSON not in json.dumps(evidence)


def test_a_certificate_for_an_unknown_person_says_no_data_held(prepared_version, officer, org, settings):  # noqa: F811
    request = registered(officer, org, kind="erasure", identifier="Z-99999")
    assert not request.found
    request.status = SubjectRequest.Status.COMPLETED
    request.completed_at = timezone.now()
    request.outcome = {"kind": "erasure", "found": False}
    request.save()
    report, data = issue(officer, Report.Kind.RIGHTS_CERTIFICATE, request, settings)
    text = " ".join(pdftotext(data).split())
    assert "No data held" in text and "Z-99999" not in text
    assert report.evidence["found"] is False and report_verify(data)["authentic"]


def test_an_erasure_certificate_lists_hashes_before_and_after_and_the_dp_model_kept(
    prepared_version,  # noqa: F811
    officer,
    org,
    owner,
    settings,
):
    from apps.training.services import training_run_request, training_run_succeed
    from tests.training.conftest import run_spec

    run = training_run_request(actor=owner, version=prepared_version, spec=run_spec())
    privacy = {"epsilon": 0.87, "delta": 1e-5, "accountant": "pld", "noise_source": "csprng:chacha20"}
    model = training_run_succeed(
        run=run,
        privacy=privacy,
        metrics={},
        split={"train": list(range(0, ROWS, 2)), "validation": [], "test": list(range(1, ROWS, 2)), "sha256": "0"},
        curve=[],
        manifest={"model_sha256": "cd" * 32, "privacy": privacy},
        storage_path="models/none",
        composed=0.87,
    )
    request = registered(officer, org, kind="erasure")
    ModelDecision.objects.create(
        request=request,
        model_version=model,
        decision=ModelDecision.Decision.KEEP_DP,
        epsilon=0.87,
        delta=1e-5,
        justification="Kept under its guarantee",
        decided_by=officer,
    )
    before, after = "1" * 64, "2" * 64
    request.status = SubjectRequest.Status.COMPLETED
    request.completed_at = timezone.now()
    request.outcome = {
        "kind": "erasure",
        "found": True,
        "versions": [
            {
                "old_version_id": str(prepared_version.id),
                "new_version_id": "x",
                "dataset": "Adult sample",
                "old_sha256": before,
                "new_sha256": after,
                "rows_removed": 1,
            }
        ],
        "consent_withdrawn": ["Service improvement"],
    }
    request.save()
    report, data = issue(officer, Report.Kind.RIGHTS_CERTIFICATE, request, settings)
    compact = pdftotext(data).replace("\n", "").replace(" ", "")
    assert before in compact and after in compact
    assert "epsilon0.870" in compact and "Keptunderitsguarantee" in compact
    assert report.evidence["decisions"][0]["epsilon"] == 0.87
    assert report.evidence["outcome"]["versions"][0]["old_sha256"] == before
    assert any("differential privacy" in sentence for sentence in report.evidence["remains"])
    assert PERSON not in compact


def test_only_handlers_issue_and_read_rights_reports(prepared_version, officer, org, owner, auditor, settings):  # noqa: F811
    request = registered(officer, org)
    with pytest.raises(PermissionDenied):
        report_request(actor=owner, kind=Report.Kind.SUBJECT_ACCESS, subject=request)
    report, _data = issue(officer, Report.Kind.SUBJECT_ACCESS, request, settings)
    assert reports_visible_to(officer).filter(pk=report.pk).exists()
    assert reports_visible_to(auditor).filter(pk=report.pk).exists()
    assert not reports_visible_to(owner).filter(pk=report.pk).exists()


def test_the_download_page_serves_the_zip_to_the_officer_only(
    prepared_version,  # noqa: F811
    officer,
    org,
    owner,
    auditor,
    outsider,
    client,
):
    import hashlib

    package = access_export_create(actor=officer, request=registered(officer, org))
    url = f"/rights/exports/{package.id}/download/"
    client.force_login(officer)
    response = client.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == f'attachment; filename="{package.filename}"'
    assert hashlib.sha256(response.content).hexdigest() == package.sha256
    client.force_login(owner)
    assert client.get(url).status_code == 404  # owners do not see requests at all
    client.force_login(auditor)
    assert client.get(url).status_code == 403  # auditors read requests, never the person's rows
    client.force_login(outsider)
    assert client.get(url).status_code == 404


def test_logic_information_comes_from_the_models_explanations_when_decisions_are_automated(
    prepared_version,  # noqa: F811
    officer,
    org,
    owner,
    settings,
):
    from apps.evaluation.models import Evaluation
    from apps.evaluation.services import evaluation_record
    from apps.training.services import training_run_request, training_run_succeed
    from apps.usecases.models import UseCase
    from tests.training.conftest import run_spec

    privacy = {"epsilon": 1.0, "delta": 1e-5, "accountant": "pld", "noise_source": "csprng-chacha20"}
    run = training_run_request(actor=owner, version=prepared_version, spec=run_spec())
    model = training_run_succeed(
        run=run,
        privacy=privacy,
        metrics={},
        split={"train": list(range(ROWS)), "validation": [], "test": [], "sha256": "0"},
        curve=[],
        manifest={"model_sha256": "aa" * 32, "privacy": privacy},
        storage_path="models/none",
        composed=1.0,
    )
    weights = [("marital-status", 0.61, 0.07), ("age", 0.32, 0.03), ("sex", 0.05, 0.001)]
    explanations = {
        "method": "exact_linear_shapley",
        "rows": 100,
        "features": [
            {"feature": f, "mean_abs_attribution": a, "permutation_importance": {"mean": p, "interval": [0, 1]}}
            for f, a, p in weights
        ],
    }
    evaluation_record(
        evaluation=Evaluation.objects.get(model_version=model),
        results={"verdict": "pass", "groupings": [], "gates": [], "explanations": explanations},
        audit={},
        privacy_cost=[],
    )

    # Without automated decisions there is no logic section to fill.
    request = registered(officer, org)
    package = access_export_create(actor=officer, request=request)
    archive = zipfile.ZipFile(io.BytesIO(export_package_bytes(user=officer, package=package)))
    assert json.loads(archive.read("logic_involved.json")) == []
    assert [m["split"]["train"] for m in json.loads(archive.read("models.json"))] == [1]

    UseCase.objects.filter(pk=model.usecase_id).update(automated_decisions=True)
    request = registered(officer, org)
    package = access_export_create(actor=officer, request=request)
    archive = zipfile.ZipFile(io.BytesIO(export_package_bytes(user=officer, package=package)))
    [logic] = json.loads(archive.read("logic_involved.json"))
    assert [
        (f["feature"], f["mean_abs_attribution"], f["permutation_importance"]) for f in logic["features_by_weight"]
    ] == [(f, a, p) for f, a, p in weights]
    assert logic["predicts"] == "class" and logic["explanation_method"] == "exact_linear_shapley"
    _report, data = issue(officer, Report.Kind.SUBJECT_ACCESS, request, settings)
    text = " ".join(pdftotext(data).split())
    assert "The logic involved in automated decisions" in text and "marital-status" in text
    assert "No use case that holds or used this person's data makes automated decisions" not in text
