"""People join an organisation only by accepting an invitation; admins learn nothing about other accounts; a person
with several organisations chooses where to act after each sign-in and always sees it."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.middleware import SESSION_KEY
from apps.accounts.models import AuditorGrant, Invitation, Membership, Role, User
from apps.accounts.services import email_digest, invitation_create, membership_add
from apps.audit.models import AuditEvent
from apps.core.errors import ValidationFailed
from tests.conftest import PASSWORD, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(admin_user):
    client = Client()
    client.force_login(admin_user)
    return client


def invite(client, email, role=Role.BOARD, capture=None):
    with capture(execute=True):
        return client.post(
            "/accounts/members/", {"action": "invite", "invite-email": email, "invite-role": role}, follow=True
        )


def link_in(message) -> str:
    return re.search(r"https?://[^/\s]+(/accounts/invitations/[^/\s]+/)", message.body).group(1)


def test_an_admin_cannot_add_a_person_of_another_organisation_directly(admin_client, admin_user, org, outsider):
    # Today's members page and API added anyone known by e-mail, with no say of theirs.
    admin_client.post("/accounts/members/", {"action": "add", "add-user": outsider.email, "add-role": Role.BOARD})
    api = APIClient()
    api.force_authenticate(admin_user)
    response = api.post(
        "/api/v1/memberships/",
        {"organisation": str(org.id), "user": outsider.username, "role": Role.BOARD},
        format="json",
    )
    assert response.status_code == 400
    assert outsider.full_name not in str(response.json())
    with pytest.raises(ValidationFailed):
        membership_add(actor=admin_user, organisation=org, user=outsider, role=Role.BOARD)
    assert not Membership.objects.filter(user=outsider, organisation=org).exists()


def test_inviting_says_the_same_whether_or_not_the_address_has_an_account(
    admin_client, org, outsider, django_capture_on_commit_callbacks
):
    known = invite(admin_client, outsider.email, capture=django_capture_on_commit_callbacks)
    unknown = invite(admin_client, "nobody-here@example.org", capture=django_capture_on_commit_callbacks)
    said = [[str(m) for m in response.context["messages"]] for response in (known, unknown)]
    assert said[0] == said[1] == ["Invitation sent. It takes effect when it is accepted."]
    for response in (known, unknown):
        assert outsider.full_name not in response.content.decode()
    assert sorted(message.to[0] for message in mail.outbox) == sorted([outsider.email, "nobody-here@example.org"])
    assert not Membership.objects.filter(user=outsider, organisation=org).exists()  # until they accept


def test_an_invited_person_accepts_while_signed_in_and_the_link_works_once(
    admin_client, org, outsider, django_capture_on_commit_callbacks
):
    invite(admin_client, outsider.email, capture=django_capture_on_commit_callbacks)
    link = link_in(mail.outbox[-1])
    assert "Ministry of Examples" in mail.outbox[-1].body
    person = Client()
    person.force_login(outsider)
    page = person.get(link, follow=True)
    assert page.redirect_chain[-1][0] == "/accounts/invitations/accept/"  # the token leaves the address bar
    assert "Ethics board member" in page.content.decode()
    assert not Membership.objects.filter(user=outsider, organisation=org).exists()  # nothing before accepting
    person.post("/accounts/invitations/accept/", {"action": "accept"})
    assert Membership.objects.filter(user=outsider, organisation=org, role=Role.BOARD).exists()
    again = Client()
    again.force_login(outsider)
    assert again.get(link, follow=True).status_code == 410
    assert Invitation.objects.get().status == Invitation.Status.ACCEPTED


def test_a_person_without_an_account_opens_one_with_the_invited_address(
    admin_client, org, django_capture_on_commit_callbacks
):
    invite(admin_client, "New.Person@Example.org", role=Role.STEWARD, capture=django_capture_on_commit_callbacks)
    visitor = Client()
    visitor.get(link_in(mail.outbox[-1]))
    response = visitor.post(
        "/accounts/invitations/accept/",
        {
            "action": "accept",
            "account-username": "newperson",
            "account-full_name": "New Person",
            "account-password": PASSWORD,
            "account-password_again": PASSWORD,
        },
    )
    assert response.status_code == 302
    person = User.objects.get(username="newperson")
    assert person.email == "new.person@example.org"
    assert Membership.objects.filter(user=person, organisation=org, role=Role.STEWARD).exists()
    assert visitor.get("/").status_code == 200 and "Acting in" in visitor.get("/").content.decode()


def test_an_auditor_invitation_gives_read_access_once_accepted(admin_client, org, django_capture_on_commit_callbacks):
    regulator = make_user("rhea_regulator")
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(
            "/accounts/members/",
            {"action": "invite_auditor", "auditor-email": regulator.email, "auditor-reason": "Supervision"},
        )
    assert not AuditorGrant.objects.filter(user=regulator).exists()
    client = Client()
    client.force_login(regulator)
    client.get(link_in(mail.outbox[-1]))
    client.post("/accounts/invitations/accept/", {"action": "accept"})
    grant = AuditorGrant.objects.get(user=regulator, organisation=org)
    assert grant.reason == "Supervision" and grant.revoked_at is None


def test_revoked_and_expired_invitations_cannot_be_accepted(
    admin_user, org, outsider, django_capture_on_commit_callbacks
):
    for state in ("revoked", "expired"):
        with django_capture_on_commit_callbacks(execute=True):
            invitation = invitation_create(
                actor=admin_user, organisation=org, email=f"{state}@example.org", role=Role.OWNER
            )
        if state == "revoked":
            admin = Client()
            admin.force_login(admin_user)
            admin.post("/accounts/members/", {"action": "revoke_invitation", "invitation": str(invitation.id)})
        else:
            Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
        client = Client()
        client.force_login(outsider)
        client.get(link_in(mail.outbox[-1]))
        assert client.post("/accounts/invitations/accept/", {"action": "accept"}).status_code == 410
    assert not Membership.objects.filter(user=outsider, organisation=org).exists()


def test_the_audit_log_keeps_a_digest_of_the_invited_address_never_the_address(
    admin_client, outsider, django_capture_on_commit_callbacks
):
    invite(admin_client, outsider.email, capture=django_capture_on_commit_callbacks)
    client = Client()
    client.force_login(outsider)
    client.get(link_in(mail.outbox[-1]))
    client.post("/accounts/invitations/accept/", {"action": "accept"})
    events = AuditEvent.objects.filter(action__startswith="invitation.")
    assert [e.action for e in events.order_by("id")] == ["invitation.create", "invitation.accept"]
    for event in events:
        assert event.after["email_digest"] == email_digest(outsider.email)
        assert outsider.email not in str(event.after)


def test_after_sign_in_a_person_with_several_organisations_chooses_and_a_rename_captures_nothing(org, other_org, owner):
    Membership.objects.create(user=owner, organisation=other_org, role=Role.STEWARD)
    other_org.name = "AAA Agency"  # sorts first: it used to become everyone's default
    other_org.save()
    client = Client()
    response = client.post("/accounts/login/", {"username": owner.username, "password": PASSWORD}, follow=True)
    assert response.redirect_chain[-1][0].startswith("/accounts/organisation/")
    assert client.session.get(SESSION_KEY) is None
    page = response.content.decode()
    assert "Choose the organisation you act in" in page and "AAA Agency" in page and "Ministry of Examples" in page
    chosen = client.post("/accounts/organisation/", {"organisation": str(org.id), "next": "/usecases/"})
    assert chosen["Location"] == "/usecases/"
    header = client.get("/").content.decode()
    assert "Acting in <strong>Ministry of Examples</strong>" in header
    # Signing in again forgets the choice: the person chooses again.
    client.post("/accounts/logout/")
    client.post("/accounts/login/", {"username": owner.username, "password": PASSWORD})
    assert client.get("/")["Location"].startswith("/accounts/organisation/?next=")


def test_a_person_with_one_organisation_acts_in_it_and_sees_its_name(client, owner):
    client.post("/accounts/login/", {"username": owner.username, "password": PASSWORD})
    assert "Acting in <strong>Ministry of Examples</strong>" in client.get("/").content.decode()
