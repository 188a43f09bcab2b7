"""API tokens: read-only and read-write scopes, a required bounded expiry, last use written at most once a minute."""

from datetime import date, timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.models import ApiToken
from apps.accounts.services import api_token_create
from apps.core.errors import ValidationFailed
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def bearer(secret):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def test_a_read_only_token_reads_but_every_unsafe_method_is_refused_with_403_and_a_code(owner):
    _token, secret = api_token_create(actor=owner, name="dashboard", scope=ApiToken.Scope.READ)
    client = bearer(secret)
    assert client.get("/api/v1/me/").json()["username"] == owner.username
    before = ApiToken.objects.count()
    for method in ("post", "put", "patch", "delete"):
        response = getattr(client, method)("/api/v1/tokens/", {"name": "sneaky"}, format="json")
        assert response.status_code == 403, method
        assert response.json()["error"]["code"] == "token_read_only"
        assert set(response.json()["error"]) == {"code", "message", "details"}
    assert ApiToken.objects.count() == before


def test_a_read_write_token_may_change_things(owner):
    _token, secret = api_token_create(actor=owner, name="pipeline", scope=ApiToken.Scope.READ_WRITE)
    response = bearer(secret).post("/api/v1/tokens/", {"name": "child", "scope": "read"}, format="json")
    assert response.status_code == 201
    assert response.json()["scope"] == "read"
    assert ApiToken.objects.get(name="child").scope == ApiToken.Scope.READ


def test_a_token_without_a_chosen_expiry_gets_the_default_and_none_lasts_beyond_the_maximum(owner, settings):
    settings.API_TOKEN_DEFAULT_DAYS, settings.API_TOKEN_MAX_DAYS = 90, 365
    token, _ = api_token_create(actor=owner, name="ci")
    assert timedelta(days=89, hours=23) < token.expires_at - timezone.now() <= timedelta(days=90)
    with pytest.raises(ValidationFailed) as refused:
        api_token_create(actor=owner, name="forever", expires_at=timezone.now() + timedelta(days=400))
    assert "expires_at" in refused.value.details
    with pytest.raises(ValidationFailed):
        api_token_create(actor=owner, name="typo", scope="admin")


def test_an_expired_token_is_refused(owner):
    token, secret = api_token_create(actor=owner, name="ci")
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = bearer(secret).get("/api/v1/me/")
    assert response.status_code == 401 and response.json()["error"]["code"] == "not_authenticated"


def test_last_use_is_written_at_most_once_a_minute(owner):
    token, secret = api_token_create(actor=owner, name="ci")
    bearer(secret).get("/api/v1/me/")
    first = ApiToken.objects.get(pk=token.pk).last_used_at
    assert first is not None
    bearer(secret).get("/api/v1/me/")
    assert ApiToken.objects.get(pk=token.pk).last_used_at == first
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=first - timedelta(minutes=2))
    bearer(secret).get("/api/v1/me/")
    assert ApiToken.objects.get(pk=token.pk).last_used_at > first


def test_the_token_page_creates_a_read_only_token_with_its_expiry_and_shows_scope_and_last_use(client, owner):
    client.post("/accounts/login/", {"username": owner.username, "password": PASSWORD})
    expiry = date.today() + timedelta(days=30)
    page = client.post("/accounts/tokens/", {"name": "Reporting", "scope": "read", "expires_at": expiry.isoformat()})
    token = ApiToken.objects.get(name="Reporting")
    assert token.scope == ApiToken.Scope.READ and token.expires_at.date() == expiry
    body = page.content.decode()
    assert "Read only" in body and "never" in body  # scope column, and "last used: never"
    refused = client.post("/accounts/tokens/", {"name": "No expiry", "scope": "read"})
    assert not ApiToken.objects.filter(name="No expiry").exists()
    assert "This field is required" in refused.content.decode()
