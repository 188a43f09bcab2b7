import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from apps.accounts.middleware import SESSION_KEY
from apps.accounts.models import AttemptCounter, Membership, Role, User
from apps.audit.models import AuditEvent
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def login(client, username, password):
    return client.post("/accounts/login/", {"username": username, "password": password})


def test_a_person_signs_in_and_the_session_is_rotated(client, owner):
    client.get("/accounts/login/")
    before = client.cookies.get("sessionid")
    response = login(client, owner.username, PASSWORD)
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.cookies["sessionid"].value != (before.value if before else None)


def test_sign_in_is_locked_after_repeated_failures_even_with_the_right_password(client, owner, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    for _ in range(3):
        assert login(client, owner.username, "wrong-password").status_code == 200
    response = login(client, owner.username, PASSWORD)
    assert response.status_code == 200
    assert "Too many failed sign-ins" in response.content.decode()
    assert AuditEvent.objects.filter(action="login.locked").count() == 1


def test_a_lock_on_one_username_does_not_block_another(client, owner, steward, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    for _ in range(3):
        login(client, owner.username, "wrong-password")
    assert login(Client(), steward.username, PASSWORD).status_code == 302


def test_a_successful_sign_in_clears_earlier_failures(client, owner, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    login(client, owner.username, "wrong")
    login(client, owner.username, "wrong")
    assert login(client, owner.username, PASSWORD).status_code == 302
    assert not AttemptCounter.objects.exists()


def test_the_organisation_switcher_refuses_an_invisible_organisation(client, org, other_org, admin_user):
    client.force_login(admin_user)
    response = client.post("/accounts/organisation/", {"organisation": str(other_org.id)})
    assert response.status_code == 404
    assert client.session.get(SESSION_KEY) is None


def test_switching_organisation_changes_roles_and_dashboard(client, org, other_org, admin_user):
    Membership.objects.create(user=admin_user, organisation=other_org, role=Role.AUDITOR)
    client.force_login(admin_user)
    client.post("/accounts/organisation/", {"organisation": str(org.id)})
    assert "Org admin dashboard" in client.get("/").content.decode()
    client.post("/accounts/organisation/", {"organisation": str(other_org.id)})
    page = client.get("/").content.decode()
    assert "Auditor dashboard" in page and "Org admin dashboard" not in page


def test_an_admin_adds_and_removes_roles_on_the_members_page(client, org, admin_user, steward):
    client.force_login(admin_user)
    client.post("/accounts/members/", {"action": "role", "role-user": str(steward.id), "role-role": Role.BOARD})
    membership = Membership.objects.get(user=steward, role=Role.BOARD)
    client.post("/accounts/members/", {"action": "remove", "membership": str(membership.id)})
    assert not Membership.objects.filter(pk=membership.pk).exists()
    assert AuditEvent.objects.filter(action__in=["membership.add", "membership.remove"]).count() == 2


def test_a_non_admin_cannot_post_to_the_members_page(client, org, owner, steward):
    client.force_login(owner)
    response = client.post(
        "/accounts/members/", {"action": "role", "role-user": str(steward.id), "role-role": Role.ADMIN}
    )
    assert response.status_code == 404
    assert not Membership.objects.filter(user=steward, role=Role.ADMIN).exists()


def test_a_new_token_secret_is_shown_once(client, owner):
    client.force_login(owner)
    expiry = (timezone.localdate() + timedelta(days=30)).isoformat()  # every token expires (a required field)
    page = client.post("/accounts/tokens/", {"name": "CI", "scope": "read", "expires_at": expiry}).content.decode()
    secret = re.search(r'id="new-token-secret" value="(atk_[^"]+)"', page).group(1)
    assert len(secret) > 40
    again = client.get("/accounts/tokens/").content.decode()
    assert secret not in again and secret[:12] in again  # only the recognisable prefix stays visible


def test_seed_demo_is_idempotent_and_every_printed_login_works(settings, tmp_path, capsys):
    settings.STORAGE_ROOT = tmp_path
    call_command("seed_demo")
    first = capsys.readouterr().out
    users, events = User.objects.count(), AuditEvent.objects.count()
    call_command("seed_demo")
    assert (User.objects.count(), AuditEvent.objects.count()) == (users, events)
    logins = [line.split()[:2] for line in first.splitlines() if "attest-demo-" in line]
    assert len(logins) == 10  # eight members (a privacy officer too), the regulator, another organisation's admin
    for username, password in logins:
        assert login(Client(), username, password).status_code == 302, username
