from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.models import ApiToken
from apps.accounts.services import api_token_create, api_token_revoke

pytestmark = pytest.mark.django_db


def bearer(secret):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def test_a_bearer_token_authenticates_and_records_its_use(org, owner):
    token, secret = api_token_create(actor=owner, name="ci")
    response = bearer(secret).get("/api/v1/me/")
    assert response.status_code == 200
    assert response.json()["username"] == owner.username
    assert response.json()["organisations"][0]["roles"] == ["owner"]
    assert ApiToken.objects.get(pk=token.pk).last_used_at is not None


def test_a_created_token_is_shown_once_through_the_api(owner):
    client = APIClient()
    client.force_authenticate(owner)
    created = client.post("/api/v1/tokens/", {"name": "pipeline"}, format="json").json()
    assert created["secret"].startswith("atk_")
    listed = client.get("/api/v1/tokens/").json()["results"]
    assert "secret" not in listed[0] and created["secret"] not in str(listed)
    assert bearer(created["secret"]).get("/api/v1/me/").status_code == 200


@pytest.mark.parametrize("state", ["revoked", "expired", "unknown", "malformed"])
def test_bad_tokens_are_refused_with_401_in_the_one_shape(owner, state):
    token, secret = api_token_create(actor=owner, name="ci")
    if state == "revoked":
        api_token_revoke(actor=owner, token=token)
    elif state == "expired":
        ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    elif state == "unknown":
        secret = "atk_" + "x" * 43
    else:
        secret = "not-a-token"
    response = bearer(secret).get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_session_writes_need_a_csrf_token(org, admin_user):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(admin_user)
    response = client.patch(f"/api/v1/organisations/{org.id}/", {"dpo_name": "x"}, format="json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["error"]["message"]


def test_errors_share_one_shape_for_every_status(org, admin_user, steward):
    client = APIClient()
    client.force_authenticate(admin_user)
    as_steward = APIClient()
    as_steward.force_authenticate(steward)
    responses = {
        400: client.post("/api/v1/tokens/", {}, format="json"),
        403: as_steward.post("/api/v1/usecases/", {"organisation": str(org.id), "title": "x"}, format="json"),
        404: client.get("/api/v1/usecases/00000000-0000-0000-0000-000000000000/"),
        405: client.delete("/api/v1/me/"),
        401: APIClient().get("/api/v1/me/"),
    }
    for status, response in responses.items():
        assert response.status_code == status, (status, response.content)
        body = response.json()
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, body


def test_the_schema_is_valid_openapi_3(client):
    from drf_spectacular.validation import validate_schema

    response = client.get("/api/schema/?format=json", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    import json

    schema = json.loads(response.content)
    assert schema["openapi"].startswith("3.")
    validate_schema(schema)
    assert "bearerAuth" in schema["components"]["securitySchemes"]
