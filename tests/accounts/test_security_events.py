"""Lock-outs and API tokens are recorded in the chain of each organisation the person belongs to, so its admins see
them; nothing in one organisation's event names another."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from apps.accounts.models import Membership, Role
from apps.accounts.services import api_token_create, api_token_revoke, keyed_digest
from apps.audit.models import AuditEvent
from apps.audit.verify import audit_chain_verify
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def events_seen_by(user, action):
    client = APIClient()
    client.force_authenticate(user)
    response = client.get("/api/v1/audit/events/", {"action": action})
    assert response.status_code == 200
    return response.json()["results"]


def test_an_org_admin_sees_a_lock_out_of_their_member(org, admin_user, owner, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    for _ in range(3):
        Client().post("/accounts/login/", {"username": owner.username, "password": "wrong"}, REMOTE_ADDR="192.0.2.5")
    seen = events_seen_by(admin_user, "login.locked")
    assert len(seen) == 1
    assert seen[0]["object_id"] == str(owner.id)
    assert seen[0]["after"]["username"] == owner.username and seen[0]["after"]["address_digest"] == keyed_digest(
        "192.0.2.5"
    )
    assert "192.0.2.5" not in str(seen[0]["after"])  # the never-erased log keeps no client address
    trail = Client()
    trail.force_login(admin_user)
    assert "login.locked" in trail.get("/audit/").content.decode()


def test_token_events_go_to_each_organisation_of_the_person_and_name_no_other(org, other_org, admin_user, outsider):
    person = make_user("tara_two_orgs", organisation=org, roles=(Role.STEWARD,))
    Membership.objects.create(user=person, organisation=other_org, role=Role.OWNER)
    token, _secret = api_token_create(actor=person, name="ci")
    api_token_revoke(actor=person, token=token)
    for admin, organisation, foreign in ((admin_user, org, other_org), (outsider, other_org, org)):
        seen = events_seen_by(admin, "api_token.")
        assert sorted(event["action"] for event in seen) == ["api_token.create", "api_token.revoke"]
        assert all(event["organisation"] == str(organisation.id) for event in seen)
        assert str(foreign.id) not in str(seen) and foreign.name not in str(seen)
        assert audit_chain_verify(organisation=organisation).ok
    assert not AuditEvent.objects.filter(action__startswith="api_token.", organisation__isnull=True).exists()


def test_a_lock_out_of_an_unknown_username_stays_on_the_platform_chain_without_the_typed_name(org, settings):
    settings.LOGIN_FAILURE_LIMIT = 2
    typed = "correct-horse-typed-into-the-username-box"
    for _ in range(2):
        Client().post("/accounts/login/", {"username": typed, "password": "wrong"})
    event = AuditEvent.objects.get(action="login.locked")
    assert event.organisation_id is None
    assert typed not in str(event.after) and "username_digest" in event.after
