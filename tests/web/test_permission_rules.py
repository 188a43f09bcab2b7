"""One rule per action: a page offers an action exactly when the service that performs it accepts the user.

Each case shows the button (or its absence) and calls the service as the same user: both must agree.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.accounts.models import Role
from apps.core.errors import PermissionDenied
from apps.evaluation.models import Evaluation
from apps.evaluation.services import evaluation_request
from apps.jobs.models import Job
from apps.jobs.services import job_cancel
from apps.usecases.services import usecase_tighten_gate
from tests.conftest import make_user
from tests.web.test_query_counts import new_job, new_model, new_run, world  # noqa: F401 - the shared fixture

pytestmark = pytest.mark.django_db


def page(client, user, url: str) -> str:
    client.force_login(user)
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def test_another_owner_sees_no_cancel_button_and_the_service_refuses_them(client, org, owner, admin_user, world):  # noqa: F811
    other_owner = make_user("olga_owner", organisation=org, roles=(Role.OWNER,))
    run = new_run(org, world["usecase"], world["version"], owner, status="pending")
    Job.objects.filter(id=run.job_id).update(status=Job.Status.RUNNING)
    url = reverse("training:run", args=[run.id])
    assert "Cancel run" in page(client, owner, url)
    assert "Cancel run" in page(client, admin_user, url)
    assert "Cancel run" not in page(client, other_owner, url)
    with pytest.raises(PermissionDenied):
        job_cancel(actor=other_owner, job=Job.objects.get(id=run.job_id))
    job_cancel(actor=owner, job=Job.objects.get(id=run.job_id))


def test_evaluation_actions_show_only_to_whom_the_services_accept(client, org, owner, steward, board_member, world):  # noqa: F811
    other_owner = make_user("olga_owner", organisation=org, roles=(Role.OWNER,))
    model = new_model(org, world["usecase"], world["version"], owner)
    evaluation = Evaluation.objects.create(
        organisation=org,
        model_version=model,
        dataset_version=world["version"],
        created_by=owner,
        status=Evaluation.Status.SUCCEEDED,
        policy={},
        verdict="pass",
    )
    evaluation.job = new_job(org, owner, kind="evaluation", target=evaluation)
    evaluation.save(update_fields=["job"])
    url = reverse("evaluation:detail", args=[evaluation.id])
    for reader in (steward, board_member):
        html = page(client, reader, url)
        assert "Evaluate again" not in html and "Tighten gate" not in html, reader.username
        with pytest.raises(PermissionDenied):
            evaluation_request(actor=reader, model_version=model)
        with pytest.raises(PermissionDenied):
            usecase_tighten_gate(
                actor=reader, usecase=world["usecase"], metric="demographic_parity_difference", threshold=0.05
            )
    # Any owner may ask for an evaluation; only the use case's own owner (or an admin) changes its gates.
    html = page(client, other_owner, url)
    assert "Evaluate again" in html and "Tighten gate" not in html
    with pytest.raises(PermissionDenied):
        usecase_tighten_gate(
            actor=other_owner, usecase=world["usecase"], metric="demographic_parity_difference", threshold=0.05
        )
    html = page(client, owner, url)
    assert "Evaluate again" in html and "Tighten gate" in html
