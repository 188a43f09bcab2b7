"""One lifecycle for every kind of background work: each failure path ends the job, runs the kind's failure hook, and
the object's page and API show the failure in plain words and stop polling.

For every declared job kind the real service creates the job (and its domain row); the kind's run is replaced by one
that fails in a given way, and the job goes through the same runner a worker uses (or the reaper, for a lost worker).
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

import pandas as pd
import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.db import OperationalError
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from apps.consent.services import consent_import_create, import_file_path
from apps.core.errors import ValidationFailed
from apps.datasets.anonymisation import anonymisation_apply_start, anonymisation_request
from apps.datasets.services import dataset_version_prepare_start, dataset_version_upload
from apps.datasets.storage import EncryptedIncomingFile
from apps.evaluation.services import evaluation_request
from apps.jobs import registry
from apps.jobs.models import Job
from apps.jobs.runner import JobCancelled, job_execute
from apps.jobs.services import job_claim, job_diagnostics_start, job_reap_expired
from apps.reports.services import report_request
from apps.training.models import PrivacyBudget
from apps.training.services import training_run_request
from tests.conftest import run_inline
from tests.training.conftest import approved_usecase, prepared_version, private_storage, run_spec  # noqa: F401

pytestmark = pytest.mark.django_db

FAILURES = {
    "domain_error": (lambda: ValidationFailed("Injected: column 'age' has text where numbers belong."), "failed"),
    "time_limit": (SoftTimeLimitExceeded, "failed"),
    "unexpected": (lambda: KeyError("x"), "failed"),
    "transient_exhausted": (lambda: OperationalError("server closed the connection"), "failed"),
    "cancelled": (lambda: JobCancelled({"steps_done": 0}), "cancelled"),
    "lost_worker": (None, "failed"),
}


@contextlib.contextmanager
def failing_run(kind_name: str, make_exception):
    kind = registry.get(kind_name)
    original = kind.run

    def run(ctx, spec):
        raise make_exception()

    object.__setattr__(kind, "run", run)  # frozen dataclass: the test swaps the run and puts it back
    try:
        yield
    finally:
        object.__setattr__(kind, "run", original)


def end_job(job: Job, path: str) -> Job:
    make_exception, _expected = FAILURES[path]
    if path == "lost_worker":
        Job.objects.filter(pk=job.pk).update(max_attempts=1)
        job_claim(job_id=job.id, worker="killed-worker")
        Job.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
        assert job_reap_expired()["failed"] == 1
        return Job.objects.get(pk=job.pk)
    if path == "transient_exhausted":
        Job.objects.filter(pk=job.pk).update(max_attempts=1)
    with failing_run(job.kind, make_exception):
        ended = job_execute(job.id, worker="test", renew_lease=False)
    assert ended is not None
    return ended


# ------------------------------------------------------------------------------ how each kind's job is started


@pytest.fixture
def world(prepared_version, org, owner, steward, admin_user, approved_usecase, board_member):  # noqa: F811
    """What the makers need: a prepared version, and a model trained on it (through the real lifecycle)."""
    run = training_run_request(actor=owner, version=prepared_version, spec=run_spec(target_epsilon=1.0))
    run_inline(run.job_id)
    run.refresh_from_db()
    return {
        "org": org,
        "owner": owner,
        "steward": steward,
        "admin": admin_user,
        "board": board_member,
        "usecase": approved_usecase,
        "prepared": prepared_version,
        "raw": prepared_version.parent,
        "model": run.model_version,
        "n": [0],
    }


def make_diagnostics(w):
    job = job_diagnostics_start(actor=w["admin"], organisation=w["org"])
    return job, w["admin"], reverse("jobs:detail", args=[job.id]), reverse("api:job-detail", args=[job.id])


def make_consent_import(w):
    item = consent_import_create(
        actor=w["steward"],
        organisation=w["org"],
        file_name="c.csv",
        chunks=iter([b"subject_id,purpose,status,timestamp\nA-1,Service improvement,granted,2026-01-01T00:00:00Z\n"]),
    )
    w["consent_import"] = item
    return item.job, w["steward"], reverse("consent:home"), reverse("api:consent-import-detail", args=[item.id])


def make_profile(w):
    w["n"][0] += 1
    frame = pd.DataFrame({"age": [30 + w["n"][0], 40], "sex": ["Male", "Female"]})
    incoming = EncryptedIncomingFile()
    incoming.write(frame.to_csv(index=False).encode())
    sha = incoming.close()
    version, _ = dataset_version_upload(
        actor=w["steward"], dataset=w["raw"].dataset, incoming=incoming, sha256=sha, file_name="extra.csv"
    )
    return (
        version.profile_job,
        w["steward"],
        reverse("datasets:version", args=[version.id]),
        reverse("api:dataset-version-detail", args=[version.id]),
    )


def make_prepare(w):
    job = dataset_version_prepare_start(actor=w["steward"], version=w["raw"])
    return job, w["steward"], reverse("datasets:version", args=[w["raw"].id]), reverse("api:job-detail", args=[job.id])


ANONYMISE = {"quasi_identifiers": ["age", "sex"], "k": 2, "suppression_limit": 0.05}


def make_anonymise(w):
    item = anonymisation_request(actor=w["steward"], version=w["prepared"], config=ANONYMISE)
    return (
        item.job,
        w["steward"],
        reverse("datasets:anonymisation", args=[item.id]),
        reverse("api:anonymisation-detail", args=[item.id]),
    )


def make_anonymise_apply(w):
    item = anonymisation_request(actor=w["steward"], version=w["prepared"], config=ANONYMISE)
    run_inline(item.job_id)  # a real search: the result is ready to apply
    item = anonymisation_apply_start(actor=w["steward"], anonymisation=item)
    return (
        item.job,
        w["steward"],
        reverse("datasets:anonymisation", args=[item.id]),
        reverse("api:anonymisation-detail", args=[item.id]),
    )


def make_report(w):
    report = report_request(actor=w["owner"], kind="dpia", subject=w["usecase"])
    w["report"] = report
    return (
        report.job,
        w["owner"],
        reverse("reports:detail", args=[report.id]),
        reverse("api:report-detail", args=[report.id]),
    )


def make_training(w):
    run = training_run_request(actor=w["owner"], version=w["prepared"], spec=run_spec(target_epsilon=0.5))
    return (
        run.job,
        w["owner"],
        reverse("training:run", args=[run.id]),
        reverse("api:training-run-detail", args=[run.id]),
    )


def make_evaluation(w):
    item = evaluation_request(actor=w["owner"], model_version=w["model"])
    return (
        item.job,
        w["owner"],
        reverse("evaluation:detail", args=[item.id]),
        reverse("api:evaluation-detail", args=[item.id]),
    )


def make_mitigation(w):
    from apps.evaluation.mitigation import mitigation_request

    run = mitigation_request(actor=w["steward"], model_version=w["model"], method="thresholds", attribute="sex")
    return (
        run.job,
        w["steward"],
        reverse("training:run", args=[run.id]),
        reverse("api:training-run-detail", args=[run.id]),
    )


def make_row_explanation(w):
    from apps.evaluation.mitigation import row_explanation_request

    job = row_explanation_request(actor=w["owner"], model_version=w["model"], position=1)
    return job, w["owner"], reverse("jobs:detail", args=[job.id]), reverse("api:row-explanation-detail", args=[job.id])


def _deployed(w, environment="production"):
    """A deployment of the world's model (evaluated, then approved by the board), in ``environment``."""
    from apps.evaluation.models import Evaluation
    from tests.deployments.kit import approve, register

    if "approved" not in w:
        run_inline(Evaluation.objects.get(model_version=w["model"]).job_id)
        approve(w["model"], owner=w["owner"], member=w["board"])
        w["approved"] = True
    return register(w["model"], w["owner"], environment=environment)


def make_monitoring_reference(w):
    w["n"][0] += 1
    deployment = _deployed(w, environment=f"env-{w['n'][0]}")  # each registration queues the missing reference
    job = Job.objects.filter(kind="monitoring_reference", target_id=str(deployment.model_version_id)).latest(
        "created_at"
    )
    return job, w["owner"], reverse("jobs:detail", args=[job.id]), reverse("api:job-detail", args=[job.id])


def make_deployment_scoring(w):
    from apps.deployments.services import deployment_score_request, scoring_token_create

    if "deployment" not in w:
        w["deployment"] = _deployed(w)
    token, _secret = scoring_token_create(actor=w["owner"], deployment=w["deployment"], name="case system")
    batch = deployment_score_request(
        token=token,
        deployment=w["deployment"],
        csv_text="age,education-num,sex,hours-per-week,marital-status\n30,9,Male,40,Never-married\n",
    )
    return (
        batch.job,
        w["owner"],
        reverse("jobs:detail", args=[batch.job_id]),
        reverse("api:job-detail", args=[batch.job_id]),
    )


def make_production_batch(w):
    from apps.deployments.services import production_batch_post
    from tests.deployments.kit import build_reference_now, csv_bytes, production

    if "deployment" not in w:
        w["deployment"] = _deployed(w)
        build_reference_now(w["model"])
    w["n"][0] += 1
    incoming = EncryptedIncomingFile()
    incoming.write(csv_bytes(production(2000 + 10 * w["n"][0], 10)))
    batch = production_batch_post(
        actor=w["owner"], deployment=w["deployment"], incoming=incoming, sha256=incoming.close()
    )
    return (
        batch.job,
        w["owner"],
        reverse("jobs:detail", args=[batch.job_id]),
        reverse("api:job-detail", args=[batch.job_id]),
    )


def make_monitoring_window(w):
    from apps.deployments.models import MonitoringWindow
    from apps.deployments.services import monitoring_windows_close_due

    if "deployment" not in w:
        w["deployment"] = _deployed(w)
    w["n"][0] += 1
    starts = timezone.now().replace(microsecond=0) - timedelta(days=30 + w["n"][0])
    window = MonitoringWindow.objects.create(
        organisation=w["org"], deployment=w["deployment"], starts_at=starts, ends_at=starts + timedelta(days=1)
    )
    monitoring_windows_close_due()
    window.refresh_from_db()
    return (
        window.job,
        w["owner"],
        reverse("jobs:detail", args=[window.job_id]),
        reverse("api:job-detail", args=[window.job_id]),
    )


def make_alert_webhook(w):
    from django.test import override_settings

    from apps.deployments.alerts import alert_webhook_set, alerts_sync
    from apps.deployments.models import Alert
    from tests.deployments.loop import result, window

    if "deployment" not in w:
        w["deployment"] = _deployed(w)
    if "webhook" not in w:
        with override_settings(ALERT_WEBHOOK_ALLOW_LOOPBACK_HTTP=True):
            alert_webhook_set(actor=w["admin"], organisation=w["org"], url="http://127.0.0.1:9/hook")
        w["webhook"] = True
    w["n"][0] += 1
    monitor = f"data_drift:psi:feature{w['n'][0]}"  # a new monitor each time: a new alert, a new delivery
    alerts_sync(
        deployment=w["deployment"], window=window(w["deployment"], -w["n"][0]), results=[result(monitor, "fail")]
    )
    job = Job.objects.get(kind="alert_webhook", target_id=str(Alert.objects.get(monitor=monitor).id))
    return job, w["admin"], reverse("jobs:detail", args=[job.id]), reverse("api:job-detail", args=[job.id])


def _rights_request(w, kind):
    from apps.rights.services import subject_request_register

    w["n"][0] += 1
    return subject_request_register(
        actor=w["steward"],  # the world's organisation has no privacy officer: its stewards handle requests
        organisation=w["org"],
        kind=kind,
        identifier=f"A-{w['n'][0]:05d}",
        identity_verification="ID card",
    )


def make_rights_trace(w):
    request = _rights_request(w, "access")
    return (
        request.trace_job,
        w["steward"],
        reverse("rights:detail", args=[request.id]),
        reverse("api:job-detail", args=[request.trace_job_id]),
    )


def make_rights_execute(w):
    from apps.rights.services import subject_request_execute

    request = _rights_request(w, "objection")
    run_inline(request.trace_job)
    request.refresh_from_db()
    job = subject_request_execute(actor=w["steward"], request=request)
    return job, w["steward"], reverse("rights:detail", args=[request.id]), reverse("api:job-detail", args=[job.id])


MAKERS = {
    "rights_trace": make_rights_trace,
    "rights_execute": make_rights_execute,
    "diagnostics": make_diagnostics,
    "alert_webhook": make_alert_webhook,
    "deployment_scoring": make_deployment_scoring,
    "monitoring_reference": make_monitoring_reference,
    "production_batch": make_production_batch,
    "monitoring_window": make_monitoring_window,
    "consent_import": make_consent_import,
    "profile": make_profile,
    "prepare": make_prepare,
    "anonymise": make_anonymise,
    "anonymise_apply": make_anonymise_apply,
    "report": make_report,
    "training": make_training,
    "evaluation": make_evaluation,
    "mitigation": make_mitigation,
    "row_explanation": make_row_explanation,
}


def test_every_declared_job_kind_is_covered_here_and_has_a_worker_task():
    from portal.celery import app
    from workers import task_names

    declared = {kind.kind for kind in registry.all_kinds()}
    assert declared == set(MAKERS)
    for kind in registry.all_kinds():
        assert kind.task_name in task_names.JOB_TASKS and kind.task_name in app.tasks
        assert kind.label and "_" not in kind.label  # people read the label, never the internal name


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_every_failure_path_shows_on_the_page_and_the_api_and_stops_polling(kind, world, client):
    for path, (_exception, expected) in FAILURES.items():
        job, viewer, page_url, api_url = MAKERS[kind](world)
        assert job.kind == kind
        ended = end_job(job, path)
        assert ended.status == expected, (kind, path, ended.error)
        message = (ended.error or {}).get("message", "")
        if expected == "failed":
            assert message and "Traceback" not in message
        if path == "unexpected":
            assert "KeyError" in message  # the type, not the text (which may quote data)

        client.force_login(viewer)
        page = client.get(page_url).content.decode()
        # The page says what happened, in the job's own plain words, and polls nothing that has ended.
        assert 'hx-trigger="every' not in page, (kind, path)
        if expected == "failed":
            assert escape(message) in page, (kind, path, message)
        else:
            assert "ancel" in page, (kind, path)
        body = client.get(api_url).json()
        # An anonymisation whose apply failed still holds its search result: it says so, and can be applied again.
        shown = {"anonymise_apply": "apply_failed"}.get(kind, expected)
        status_key, error_key = ("profile_status", "profile_error") if kind == "profile" else ("status", "error")
        assert body[status_key] == shown, (kind, path, body.get(status_key))
        if body.get(error_key) is not None and expected == "failed":
            error = body[error_key] if isinstance(body[error_key], str) else body[error_key]["message"]
            assert error.startswith(message[:40]) or message[:40] in error, (kind, path)
        client.logout()

        # The failure hooks settled the domain side.
        if kind == "training":
            assert PrivacyBudget.objects.get().reserved == 0  # the reservation is released (no step ran)
        if kind == "consent_import":
            assert not import_file_path(world["consent_import"]).exists()  # raw external ids never outlive a job
        if kind == "rights_execute":
            from apps.rights.models import SubjectRequest

            assert SubjectRequest.objects.get(execute_job=job).status == "open"  # open again, with the reason
