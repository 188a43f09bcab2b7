"""The two answers applicability needs beyond the AI Act tier: GDPR Art. 22 automated decisions and the AI Act role,
through the service, the form and the API."""

import pytest
from rest_framework.test import APIClient

from apps.compliance.selectors import requirement_status
from apps.core.errors import ValidationFailed
from apps.usecases.forms import UseCaseForm
from apps.usecases.services import usecase_create, usecase_update
from tests.usecases.factories import usecase_data

pytestmark = pytest.mark.django_db


def test_the_answers_are_stored_and_drive_applicability(org, owner):
    usecase = usecase_create(
        actor=owner, organisation=org, data=usecase_data(automated_decisions=True, ai_act_role="deployer")
    )
    assert (usecase.automated_decisions, usecase.ai_act_role) == (True, "deployer")
    assert requirement_status(usecase, "gdpr", "GDPR-22").status != "not_applicable"
    assert requirement_status(usecase, "eu-ai-act", "AIA-9").status == "not_applicable"  # a provider's duty

    usecase = usecase_update(actor=owner, usecase=usecase, data={"ai_act_role": "provider"})
    assert "ai_act_role" in usecase.revisions.order_by("-number").first().changed_fields
    assert requirement_status(usecase, "eu-ai-act", "AIA-9").status != "not_applicable"


def test_an_unknown_role_is_refused(org, owner):
    with pytest.raises(ValidationFailed) as failure:
        usecase_create(actor=owner, organisation=org, data=usecase_data(ai_act_role="importer"))
    assert "ai_act_role" in failure.value.details


def test_the_form_offers_both_fields_with_labels():
    form = UseCaseForm(purposes=["Benefit fraud triage"])
    assert "Art. 22" in form.fields["automated_decisions"].label
    assert [value for value, _ in form.fields["ai_act_role"].choices] == ["provider", "deployer", "both"]


def test_the_api_reads_and_writes_them(org, owner):
    client = APIClient()
    client.force_authenticate(owner)
    created = client.post(
        "/api/v1/usecases/",
        {**usecase_data(automated_decisions=True, ai_act_role="provider"), "organisation": str(org.id)},
        format="json",
    )
    assert created.status_code == 201, created.json()
    assert (created.json()["automated_decisions"], created.json()["ai_act_role"]) == (True, "provider")
