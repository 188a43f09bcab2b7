import pytest
from rest_framework.test import APIClient

from apps.audit.models import AuditEvent
from apps.usecases.models import UseCase
from apps.usecases.services import usecase_create
from tests.usecases.factories import usecase_data

pytestmark = pytest.mark.django_db


def client_for(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_an_owner_registers_through_the_api_and_gets_the_reference(org, owner):
    response = client_for(owner).post(
        "/api/v1/usecases/", {**usecase_data(), "organisation": str(org.id)}, format="json"
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["reference"] == "UC-0001"
    assert body["dpia"]["risks"][0]["overall"] == "high"
    assert UseCase.objects.get().owner == owner


def test_invalid_content_comes_back_in_the_one_error_shape(org, owner):
    response = client_for(owner).post(
        "/api/v1/usecases/", {**usecase_data(lawful_basis="vibes"), "organisation": str(org.id)}, format="json"
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert "lawful_basis" in error["details"]
    assert not UseCase.objects.exists()


def test_registering_in_another_organisation_answers_404(org, other_org, owner):
    response = client_for(owner).post(
        "/api/v1/usecases/", {**usecase_data(), "organisation": str(other_org.id)}, format="json"
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_another_organisations_use_case_is_invisible(org, owner, outsider):
    usecase = usecase_create(actor=owner, organisation=org, data=usecase_data())
    client = client_for(outsider)
    assert client.get("/api/v1/usecases/").json()["results"] == []
    assert client.get(f"/api/v1/usecases/{usecase.id}/").status_code == 404
    assert client.post(f"/api/v1/usecases/{usecase.id}/transition/", {"action": "submit"}).status_code == 404
    assert client.patch(f"/api/v1/usecases/{usecase.id}/", {"title": "x"}, format="json").status_code == 404


def test_an_external_auditor_reads_but_cannot_change(org, owner, external_auditor):
    usecase = usecase_create(actor=owner, organisation=org, data=usecase_data())
    client = client_for(external_auditor)
    assert client.get(f"/api/v1/usecases/{usecase.id}/").json()["reference"] == "UC-0001"
    assert client.patch(f"/api/v1/usecases/{usecase.id}/", {"title": "x"}, format="json").status_code == 403


def test_transitions_and_revisions_through_the_api(org, owner, board_member):
    usecase = usecase_create(actor=owner, organisation=org, data=usecase_data())
    owner_client = client_for(owner)
    patched = owner_client.patch(f"/api/v1/usecases/{usecase.id}/", {"retention": "6 months"}, format="json")
    assert patched.json()["revision"] == 2
    assert (
        owner_client.post(f"/api/v1/usecases/{usecase.id}/transition/", {"action": "submit"}).json()["status"]
        == "in_review"
    )
    refused = client_for(board_member).post(
        f"/api/v1/usecases/{usecase.id}/transition/", {"action": "approve", "reason": "ok"}
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "invalid"
    revisions = owner_client.get(f"/api/v1/usecases/{usecase.id}/revisions/").json()["results"]
    assert [r["number"] for r in revisions] == [2, 1]
    assert revisions[0]["changed_fields"] == ["retention"]
    assert AuditEvent.objects.filter(action="usecase.submit").count() == 1
