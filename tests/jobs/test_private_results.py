"""A job kind whose result holds personal data (scoring predictions, a held-out person's row) never shows it on the
generic job page or in the jobs API, which every role of the organisation reads; other kinds still do."""

import pytest
from rest_framework.test import APIClient

from apps.jobs.models import Job
from apps.jobs.registry import all_kinds

SECRET_PREDICTION = {"predictions": [{"prediction_id": "case-4711", "probability": 0.93}]}


def finished(org, kind: str) -> Job:
    declared = next(k for k in all_kinds() if k.kind == kind)
    return Job.objects.create(
        organisation=org,
        kind=kind,
        task_name=declared.task_name,
        status=Job.Status.SUCCEEDED,
        result=SECRET_PREDICTION,
    )


def test_scoring_and_row_explanations_are_the_kinds_with_private_results():
    private = {k.kind for k in all_kinds() if k.private_result}
    assert {"deployment_scoring", "row_explanation"} <= private
    assert "diagnostics" not in private


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["deployment_scoring", "row_explanation"])
def test_a_private_result_is_neither_in_the_jobs_api_nor_on_the_job_page(org, auditor, client, kind):
    job = finished(org, kind)
    api = APIClient()
    api.force_authenticate(auditor)
    body = api.get(f"/api/v1/jobs/{job.id}/").json()
    assert body["status"] == "succeeded" and body["result"] is None
    listed = api.get("/api/v1/jobs/").json()["results"]
    assert all("case-4711" not in str(item) for item in listed)
    client.force_login(auditor)
    page = client.get(f"/jobs/{job.id}/").content.decode()
    assert "case-4711" not in page and "0.93" not in page


@pytest.mark.django_db
def test_other_kinds_still_show_their_result(org, auditor):
    job = finished(org, "diagnostics")
    api = APIClient()
    api.force_authenticate(auditor)
    assert api.get(f"/api/v1/jobs/{job.id}/").json()["result"] == SECRET_PREDICTION
