"""Scoring per deployment: only that deployment's scoring token gets in, calls are throttled, the model runs on a
worker, the scored rows are monitored, and predictions never reach the audit log."""

from __future__ import annotations

import json

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from apps.accounts.services import api_token_create
from apps.audit.models import AuditEvent
from apps.deployments.models import MonitoringWindow, PendingOutcome, ProductionBatch
from apps.deployments.services import deployment_withdraw, scoring_token_create, scoring_token_revoke
from apps.evaluation.models import Evaluation
from apps.jobs.models import Job
from tests.conftest import run_inline
from tests.deployments.kit import FEATURES, adult, build_reference_now, register

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@pytest.fixture(autouse=True)
def fresh_throttle():
    cache.clear()  # throttle counts live in the cache
    yield
    cache.clear()


@pytest.fixture
def deployment(approved_model, owner):
    deployment = register(approved_model, owner)
    build_reference_now(approved_model)
    return deployment


@pytest.fixture
def secret(deployment, owner):
    _token, secret = scoring_token_create(actor=owner, deployment=deployment, name="Case system")
    return secret


def rows(n: int = 20, start: int = 2000) -> list[dict]:
    frame = adult(start, n)[[*FEATURES, "race"]]
    return json.loads(frame.to_json(orient="records"))


def score(deployment, secret, body=None, query: str = ""):
    client = APIClient()
    if secret is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client.post(f"/api/v1/deployments/{deployment.id}/score/{query}", body or {"rows": rows()}, format="json")


def test_a_scored_batch_is_predicted_on_a_worker_and_polled_with_the_same_token(
    deployment, secret, approved_model, owner
):
    response = score(deployment, secret)
    assert response.status_code == 202, response.json()
    accepted = response.json()
    job = Job.objects.get(pk=accepted["job"])
    assert job.queue == "gpu" and job.kind == "deployment_scoring" and job.status == "queued"
    run_inline(job)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    polled = client.get(accepted["poll"])
    assert polled.status_code == 200
    result = polled.json()["result"]
    predictions = result["predictions"]
    assert len(predictions) == 20 and result["rows"] == 20
    assert {p["prediction"] for p in predictions} <= {"<=50K", ">50K"}
    assert all(abs(p["p_<=50K"] + p["p_>50K"] - 1) < 1e-6 for p in predictions)
    ids = [p["prediction_id"] for p in predictions]
    assert len(set(ids)) == 20 and all(len(i) == 32 for i in ids)  # generated when the caller sent none
    # The scored rows are monitored: counted in the open window, each prediction waiting for its label.
    batch = ProductionBatch.objects.get(pk=accepted["batch"])
    assert batch.status == "accepted" and batch.rows == 20 and batch.source == "scoring"
    window = MonitoringWindow.objects.get(deployment=deployment)
    assert window.rows == 20 and window.sketch["predictions"]["rows"] == 20
    assert PendingOutcome.objects.filter(deployment=deployment).count() == 20
    # Neither no token nor another deployment's token polls it.
    assert APIClient().get(accepted["poll"]).status_code == 401
    pilot = register(approved_model, owner, environment="pilot")
    _token, other = scoring_token_create(actor=owner, deployment=pilot, name="Pilot")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {other}")
    assert client.get(accepted["poll"]).status_code == 401


def test_prediction_ids_sent_are_kept_and_predictions_never_enter_the_audit_log(deployment, secret):
    sent = rows(15)
    for i, row in enumerate(sent):
        row["prediction_id"] = f"CASE-{i:04d}"
    response = score(deployment, secret, {"rows": sent})
    run_inline(response.json()["job"])
    job = Job.objects.get(pk=response.json()["job"])
    predictions = job.result["predictions"]
    assert [p["prediction_id"] for p in predictions] == [f"CASE-{i:04d}" for i in range(15)]
    log = json.dumps(list(AuditEvent.objects.values("action", "before", "after")), default=str)
    assert "predictions" not in log and "CASE-0" not in log
    assert not any(json.dumps(p["p_>50K"]) in log for p in predictions)
    event = AuditEvent.objects.get(action="deployment.score_request")
    assert event.after["rows"] == 15 and len(event.after["batch_sha256"]) == 64 and event.actor is None


def test_reasons_are_given_against_the_evaluations_explanation_baseline_or_the_answer_says_why_not(
    deployment, secret, approved_model
):
    evaluation = approved_model.evaluations.get(status="succeeded")
    assert evaluation.results["explanations"]["baseline"]  # the evaluation job stores one for a binary model
    response = score(deployment, secret, {"rows": rows(5)}, query="?reasons=2")
    result = run_inline(response.json()["job"]).result
    assert all(len(p["reasons"]) <= 2 for p in result["predictions"])
    assert any(p["reasons"] for p in result["predictions"])
    assert {r["feature"] for p in result["predictions"] for r in p["reasons"]} <= set(FEATURES)
    # An evaluation from before explanations existed has no baseline: the predictions come without reasons.
    results = {key: value for key, value in evaluation.results.items() if key != "explanations"}
    Evaluation.objects.filter(pk=evaluation.pk).update(results=results)
    response = score(deployment, secret, {"rows": rows(5)}, query="?reasons=2")
    result = run_inline(response.json()["job"]).result
    assert "no explanation baseline" in result["reasons_note"]
    assert all("reasons" not in p for p in result["predictions"])


def test_a_csv_body_is_scored_too(deployment, secret):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    text = adult(2100, 3)[FEATURES].to_csv(index=False)
    response = client.post(f"/api/v1/deployments/{deployment.id}/score/", text, content_type="text/csv")
    assert response.status_code == 202, response.json()
    assert run_inline(response.json()["job"]).result["rows"] == 3


def test_rows_that_do_not_fit_the_model_fail_the_job_with_the_columns_at_fault(deployment, secret):
    body = {"rows": [{"age": 30, "zip": "1234"}]}
    job = run_inline(score(deployment, secret, body).json()["job"], expect="failed")
    message = job.error["message"]
    assert "education-num" in message and "zip" in message
    assert ProductionBatch.objects.get(job=job).state == "failed"


@pytest.mark.parametrize("case", ["none", "wrong", "revoked", "other_deployment", "user_api_token", "session"])
def test_only_this_deployments_live_scoring_token_gets_in(case, deployment, secret, owner, approved_model):
    client = APIClient()
    if case == "wrong":
        client.credentials(HTTP_AUTHORIZATION="Bearer ask_not-a-real-token")
    elif case == "revoked":
        token = deployment.tokens.get()
        scoring_token_revoke(actor=owner, token=token)
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    elif case == "other_deployment":
        pilot = register(approved_model, owner, environment="pilot")
        _token, other = scoring_token_create(actor=owner, deployment=pilot, name="Pilot")
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {other}")
    elif case == "user_api_token":
        _token, raw = api_token_create(actor=owner, name="ci")
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    elif case == "session":
        client.force_login(owner)
    response = client.post(f"/api/v1/deployments/{deployment.id}/score/", {"rows": rows(2)}, format="json")
    assert response.status_code == 401, response.json()
    assert response.json()["error"]["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert not Job.objects.filter(kind="deployment_scoring").exists()


def test_a_withdrawn_deployment_scores_nothing(deployment, secret, owner):
    deployment_withdraw(actor=owner, deployment=deployment, reason="The case system is switched off.")
    response = score(deployment, secret)
    assert response.status_code == 409 and response.json()["error"]["code"] == "invalid_state"


def test_scoring_is_throttled_per_deployment(deployment, secret, owner, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "scoring": "2/minute"},
    }
    _token, second_secret = scoring_token_create(actor=owner, deployment=deployment, name="Second system")
    assert score(deployment, secret, {"rows": rows(1)}).status_code == 202
    assert score(deployment, second_secret, {"rows": rows(1)}).status_code == 202
    # A third call within the minute, whichever token: refused before any work is queued.
    response = score(deployment, secret, {"rows": rows(1)})
    assert response.status_code == 429 and response.json()["error"]["code"] == "throttled"
    assert Job.objects.filter(kind="deployment_scoring").count() == 2


def test_the_model_level_scoring_route_is_gone(approved_model, owner):
    client = APIClient()
    client.force_authenticate(owner)
    response = client.post(f"/api/v1/model-versions/{approved_model.id}/score/", {}, format="json")
    assert response.status_code in (404, 405)
