"""The monitoring-plan form: every setting labelled, saved as a use-case revision by its owner, read-only to others."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from apps.usecases.models import UseCase
from workers.engine.monitoring.monitors import default_plan

pytestmark = pytest.mark.django_db


def form_data(plan: dict) -> dict:
    data = {key: plan[key] for key in ("window", "min_rows", "min_labelled", "raw_retention_days")}
    if plan["keep_raw_rows"]:
        data["keep_raw_rows"] = "on"
    for family, settings in plan["monitors"].items():
        for key, value in settings.items():
            if isinstance(value, bool):
                if value:
                    data[f"{family}__{key}"] = "on"
            else:
                data[f"{family}__{key}"] = value
    return data


def test_every_field_has_a_label_and_the_defaults_are_shown(client, owner, approved_usecase):
    client.force_login(owner)
    page = client.get(reverse("deployments:plan", args=[approved_usecase.id])).content.decode()
    inputs = set(re.findall(r'<(?:input|select)[^>]*\bid="([^"]+)"', page))
    labelled = set(re.findall(r'<label for="([^"]+)"', page))
    assert inputs and inputs <= labelled
    assert f'name="min_rows" value="{default_plan()["min_rows"]}"' in page and "No plan was set yet" in page


def test_the_owner_saves_a_plan_as_a_revision(client, owner, approved_usecase):
    client.force_login(owner)
    plan = default_plan()
    plan["window"], plan["keep_raw_rows"], plan["raw_retention_days"] = "day", True, 14
    plan["monitors"]["fairness"]["enabled"] = False
    plan["monitors"]["data_drift"]["psi_alert"] = 0.3
    revision = approved_usecase.revision
    response = client.post(reverse("deployments:plan", args=[approved_usecase.id]), form_data(plan))
    assert response.status_code == 302
    usecase = UseCase.objects.get(pk=approved_usecase.pk)
    assert usecase.monitoring_plan == plan and usecase.revision == revision + 1


def test_an_invalid_plan_shows_the_engines_reason(client, owner, approved_usecase):
    client.force_login(owner)
    plan = default_plan()
    plan["monitors"]["data_drift"]["psi_warn"] = 0.5  # above the alert level
    response = client.post(reverse("deployments:plan", args=[approved_usecase.id]), form_data(plan))
    assert response.status_code == 200 and "must not be above psi_alert" in response.content.decode()
    assert UseCase.objects.get(pk=approved_usecase.pk).monitoring_plan == {}


def test_others_read_the_plan_but_cannot_change_it(client, steward, approved_usecase):
    client.force_login(steward)
    page = client.get(reverse("deployments:plan", args=[approved_usecase.id])).content.decode()
    assert "<fieldset disabled>" in page and "Save revision" not in page
    client.post(reverse("deployments:plan", args=[approved_usecase.id]), form_data(default_plan()))
    assert UseCase.objects.get(pk=approved_usecase.pk).monitoring_plan == {}


def test_another_organisations_use_case_is_not_found(client, outsider, approved_usecase):
    client.force_login(outsider)
    assert client.get(reverse("deployments:plan", args=[approved_usecase.id])).status_code == 404
