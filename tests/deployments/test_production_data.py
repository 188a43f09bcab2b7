"""Production batches and late labels: a batch that does not fit is refused with the columns at fault and nothing is
kept; rows are folded into their window's counts; raw rows are kept, encrypted, only when the plan allows it and only
until their retention date; late labels for unknown ids are reported; ids and rows never reach the audit log."""

from __future__ import annotations

import io
import json
import threading
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from apps.audit.models import AuditEvent
from apps.datasets.storage import EncryptedIncomingFile
from apps.deployments.models import MonitoringWindow, PendingOutcome, ProductionBatch
from apps.deployments.services import (
    open_batch_rows,
    production_batch_post,
    production_batch_process,
    production_data_sweep,
    usecase_set_monitoring_plan,
)
from tests.conftest import run_inline
from tests.deployments.kit import approve, csv_bytes, production, register, reported_model
from workers.engine.monitoring.monitors import default_plan

pytestmark = pytest.mark.django_db


@pytest.fixture
def deployment(owner, board_member, prepared_version):
    model = reported_model(owner, prepared_version)
    approve(model, owner=owner, member=board_member)
    return register(model, owner)


def api(owner) -> APIClient:
    client = APIClient()
    client.force_authenticate(owner)
    return client


def post_csv(client: APIClient, deployment, frame: pd.DataFrame):
    return client.post(f"/api/v1/deployments/{deployment.id}/batches/", csv_bytes(frame), content_type="text/csv")


def stored_files() -> list[Path]:
    root = Path(settings.STORAGE_ROOT)
    return [p for p in (root / "deployments").rglob("*") if p.is_file()] + [
        p for p in (root / "incoming").glob("*") if p.is_file()
    ]


def test_a_batch_with_the_wrong_columns_is_refused_with_each_column_at_fault_and_nothing_kept(deployment, owner):
    frame = production(2000, 30).drop(columns=["hours-per-week", "prediction_id"])
    frame["zip_code"] = "1234"
    frame["age"] = "about thirty"
    response = post_csv(api(owner), deployment, frame)
    assert response.status_code == 400
    error = response.json()["error"]
    problems = " ".join(error["details"]["columns"])
    assert "hours-per-week" in problems and "zip_code" in problems and "age" in problems
    assert "prediction_id" in problems
    assert "Nothing was kept" in error["message"]
    assert not ProductionBatch.objects.exists() and not MonitoringWindow.objects.exists()
    assert stored_files() == []


def test_a_batch_is_folded_into_its_window_and_its_unlabelled_predictions_wait_for_labels(deployment, owner):
    frame = production(2000, 60)
    frame.loc[:19, "label"] = production(2000, 20, labelled=True)["label"]  # 20 of 60 rows come labelled
    response = post_csv(api(owner), deployment, frame)
    assert response.status_code == 202, response.json()
    batch = ProductionBatch.objects.get(pk=response.json()["id"])
    assert batch.source == "posted" and response.json()["status"] == "queued"
    run_inline(batch.job)
    batch.refresh_from_db()
    window = MonitoringWindow.objects.get(deployment=deployment)
    assert (batch.status, batch.rows, batch.window_id) == ("accepted", 60, window.id)
    assert (window.rows, window.labelled_rows, window.status) == (60, 20, "open")
    assert window.sketch["rows"] == 60 and window.sketch["labelled"] == 20
    assert window.starts_at.weekday() == 0 and window.starts_at.hour == 0
    assert window.ends_at - window.starts_at == timedelta(days=7)
    assert PendingOutcome.objects.filter(deployment=deployment).count() == 40
    # Nothing of the rows is kept: the default plan keeps aggregates only.
    assert batch.storage_path == "" and batch.retain_until is None and stored_files() == []
    assert not api(owner).get(f"/api/v1/deployments/{deployment.id}/batches/").json()["results"][0]["raw_rows_kept"]


def test_the_same_batch_sent_twice_is_counted_once(deployment, owner):
    frame = production(2000, 10)
    run_inline(ProductionBatch.objects.get(pk=post_csv(api(owner), deployment, frame).json()["id"]).job)
    again = post_csv(api(owner), deployment, frame)
    assert again.status_code == 409
    assert MonitoringWindow.objects.get(deployment=deployment).rows == 10


def test_late_labels_match_through_the_digest_and_unknown_ids_are_reported(deployment, owner):
    batch = ProductionBatch.objects.get(pk=post_csv(api(owner), deployment, production(2000, 30)).json()["id"])
    run_inline(batch.job)
    digests = set(PendingOutcome.objects.values_list("prediction_digest", flat=True))
    assert "P-002000" not in digests and all(len(d) == 64 for d in digests)  # the id itself is never stored
    labels = [
        {"prediction_id": "P-002000", "label": ">50K"},
        {"prediction_id": "P-002001", "label": "<=50K"},
        {"prediction_id": "NEVER-SCORED-1", "label": ">50K"},
        {"prediction_id": "NEVER-SCORED-2", "label": "<=50K"},
    ]
    response = api(owner).post(f"/api/v1/deployments/{deployment.id}/labels/", {"labels": labels}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert (body["labels_matched"], body["labels_unknown"], body["source"]) == (2, 2, "labels")
    label_batch = ProductionBatch.objects.get(pk=body["id"])
    assert (label_batch.labels_matched, label_batch.labels_unknown) == (2, 2)
    assert PendingOutcome.objects.count() == 28
    window = MonitoringWindow.objects.get(deployment=deployment)
    assert window.labelled_rows == 2 and window.sketch["labelled"] == 2
    # The same label sent again no longer matches anything: it was counted once.
    again = api(owner).post(f"/api/v1/deployments/{deployment.id}/labels/", {"labels": labels[:1]}, format="json")
    assert again.json()["labels_unknown"] == 1
    log = json.dumps(list(AuditEvent.objects.values("before", "after")), default=str)
    assert "P-002000" not in log and "NEVER-SCORED" not in log


def test_labels_outside_the_models_classes_are_refused_and_nothing_counted(deployment, owner):
    batch = ProductionBatch.objects.get(pk=post_csv(api(owner), deployment, production(2000, 5)).json()["id"])
    run_inline(batch.job)
    labels = [{"prediction_id": "P-002000", "label": "maybe"}]
    response = api(owner).post(f"/api/v1/deployments/{deployment.id}/labels/", {"labels": labels}, format="json")
    assert response.status_code == 400 and "maybe" in response.json()["error"]["message"]
    assert PendingOutcome.objects.count() == 5 and MonitoringWindow.objects.get().labelled_rows == 0


def test_raw_rows_are_kept_encrypted_only_when_the_plan_allows_and_deleted_after_their_retention(
    owner, board_member, prepared_version
):
    model = reported_model(owner, prepared_version)
    usecase_set_monitoring_plan(
        actor=owner, usecase=model.usecase, plan={**default_plan(), "keep_raw_rows": True, "raw_retention_days": 10}
    )
    approve(model, owner=owner, member=board_member)  # after the plan: the review binds the plan as it is
    deployment = register(model, owner)
    assert deployment.plan["keep_raw_rows"] is True
    frame = production(2000, 25)
    batch = ProductionBatch.objects.get(pk=post_csv(api(owner), deployment, frame).json()["id"])
    run_inline(batch.job)
    batch.refresh_from_db()
    assert batch.retain_until == timezone.localdate() + timedelta(days=10)
    stored = Path(settings.STORAGE_ROOT) / batch.storage_path
    content = stored.read_bytes()
    assert b"P-002000" not in content and b"prediction_id" not in content  # encrypted at rest
    with open_batch_rows(batch) as stream:
        kept = pd.read_csv(io.BytesIO(stream.read()))
    assert kept["prediction_id"].tolist() == frame["prediction_id"].tolist()
    # Before the date nothing goes; the day after, the sweep deletes the file and says so in one event.
    assert production_data_sweep(today=batch.retain_until)["raw_files_deleted"] == 0
    counts = production_data_sweep(today=batch.retain_until + timedelta(days=1))
    assert counts["raw_files_deleted"] == 1 and not stored.exists()
    batch.refresh_from_db()
    assert batch.storage_path == "" and batch.wrapped_key is None
    event = AuditEvent.objects.get(action="monitoring.retention_sweep")
    assert event.after["raw_files_deleted"] == 1 and event.organisation_id == deployment.organisation_id


def test_predictions_waiting_past_their_retention_are_swept(deployment, owner):
    batch = ProductionBatch.objects.get(pk=post_csv(api(owner), deployment, production(2000, 12)).json()["id"])
    run_inline(batch.job)
    expires = PendingOutcome.objects.values_list("expires_on", flat=True).distinct().get()
    assert expires == timezone.localdate() + timedelta(days=deployment.plan["raw_retention_days"])
    assert production_data_sweep(today=expires + timedelta(days=1))["pending_outcomes_expired"] == 12
    assert not PendingOutcome.objects.exists()


def test_a_batch_whose_rows_turn_out_wrong_fails_and_keeps_nothing(deployment, owner):
    frame = production(2000, 20)
    frame.loc[15, "prediction"] = "unsure"  # a value no class of the model has
    batch = ProductionBatch.objects.get(pk=post_csv(api(owner), deployment, frame).json()["id"])
    job = run_inline(batch.job, expect="failed")
    assert "'unsure'" in job.error["message"]
    batch.refresh_from_db()
    assert batch.state == "failed" and batch.storage_path == "" and stored_files() == []
    assert not PendingOutcome.objects.exists()
    assert MonitoringWindow.objects.get(deployment=deployment).rows == 0


def test_json_rows_and_multipart_files_are_accepted_like_csv(deployment, owner):
    client = api(owner)
    rows = json.loads(production(2000, 4).to_json(orient="records"))
    assert (
        client.post(f"/api/v1/deployments/{deployment.id}/batches/", {"rows": rows}, format="json").status_code == 202
    )
    upload = io.BytesIO(csv_bytes(production(2100, 4)))
    upload.name = "batch.csv"
    response = client.post(f"/api/v1/deployments/{deployment.id}/batches/", {"file": upload}, format="multipart")
    assert response.status_code == 202, response.json()
    assert ProductionBatch.objects.filter(source="posted").count() == 2


def test_the_portal_upload_service_takes_an_in_memory_file(deployment, owner):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from apps.deployments.services import production_batch_upload

    upload = SimpleUploadedFile("batch.csv", csv_bytes(production(2000, 6)), "text/csv")
    batch = production_batch_upload(actor=owner, deployment=deployment, uploaded_file=upload)
    run_inline(batch.job)
    batch.refresh_from_db()
    assert batch.source == "uploaded" and batch.rows == 6


def test_only_owners_and_admins_send_production_data(deployment, steward, auditor, other_org):
    from tests.conftest import make_user

    outsider = make_user("oz_outsider", organisation=other_org, roles=("admin",))
    rows = json.loads(production(2000, 2).to_json(orient="records"))
    for person, status in ((steward, 403), (auditor, 403), (outsider, 404)):
        response = api(person).post(f"/api/v1/deployments/{deployment.id}/batches/", {"rows": rows}, format="json")
        assert response.status_code == status
    assert not ProductionBatch.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_into_one_window_keep_every_count(owner, board_member, prepared_version):
    model = reported_model(owner, prepared_version)
    approve(model, owner=owner, member=board_member)
    deployment = register(model, owner)
    batches = []
    for start in (2000, 5000, 8000):
        incoming = EncryptedIncomingFile()
        incoming.write(csv_bytes(production(start, 1500, labelled=True)))
        batches.append(
            production_batch_post(actor=owner, deployment=deployment, incoming=incoming, sha256=incoming.close())
        )
    barrier = threading.Barrier(len(batches))
    errors = []

    def process(batch):
        try:
            barrier.wait()
            production_batch_process(batch=batch)
        except Exception as exc:  # reported below, with the thread's exception
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=process, args=(batch,)) for batch in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    window = MonitoringWindow.objects.get(deployment=deployment)
    assert (window.rows, window.labelled_rows) == (4500, 4500)
    assert window.sketch["rows"] == 4500 and window.sketch["labelled"] == 4500
    assert sum(window.sketch["confusion"]["(all)"].values()) == 4500
    assert sum(window.sketch["categorical"]["sex"]["counts"]) + window.sketch["categorical"]["sex"]["missing"] == 4500
