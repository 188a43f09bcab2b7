"""Password change and reset: throttled like sign-in, silent about which addresses have accounts, and a change ends
the person's other sessions."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client

from apps.audit.models import AuditEvent
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-brand-new-passphrase-2026"


def signed_in(user) -> Client:
    client = Client()
    assert client.post("/accounts/login/", {"username": user.username, "password": PASSWORD}).status_code == 302
    return client


def ask_reset(client, email, **extra):
    return client.post("/accounts/password/reset/", {"email": email}, **extra)


def test_a_password_is_reset_end_to_end_through_the_e_mail_and_lifts_a_lock(owner, settings):
    settings.SITE_URL = "https://attest.example.org"
    settings.LOGIN_FAILURE_LIMIT = 3
    for _ in range(3):
        Client().post("/accounts/login/", {"username": owner.username, "password": "forgotten"})
    response = ask_reset(Client(), owner.email.upper())
    assert response.status_code == 302 and response["Location"] == "/accounts/password/reset/sent/"
    assert [message.to for message in mail.outbox] == [[owner.email]]
    link = re.search(r"https://attest\.example\.org(/accounts/password/reset/\S+/)", mail.outbox[0].body).group(1)
    visitor = Client()
    form_page = visitor.get(link, follow=True)
    assert "Choose a new password" in form_page.content.decode()
    done = visitor.post(form_page.redirect_chain[-1][0], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert done["Location"] == "/accounts/password/reset/done/"
    assert Client().post("/accounts/login/", {"username": owner.username, "password": PASSWORD}).status_code == 200
    assert Client().post("/accounts/login/", {"username": owner.username, "password": NEW_PASSWORD}).status_code == 302
    assert "This link cannot be used" in visitor.get(link, follow=True).content.decode()  # single use
    assert AuditEvent.objects.filter(action="user.password_reset", object_id=str(owner.id)).count() == 1


def test_a_reset_request_never_reveals_whether_an_account_uses_the_address(owner):
    known, unknown = ask_reset(Client(), owner.email), ask_reset(Client(), "nobody@example.org")
    assert (known.status_code, known["Location"]) == (unknown.status_code, unknown["Location"])
    # Both addresses get a message (the unknown one is told no account uses it): nothing to tell apart from outside.
    assert sorted(message.to[0] for message in mail.outbox) == sorted([owner.email, "nobody@example.org"])
    assert "no account uses it" in next(m.body for m in mail.outbox if m.to == ["nobody@example.org"])


def test_reset_requests_are_throttled_per_address_asked_for(owner, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    for _ in range(3):
        assert ask_reset(Client(), owner.email).status_code == 302
    refused = ask_reset(Client(), owner.email)
    assert refused.status_code == 200 and "Too many reset requests" in refused.content.decode()
    assert len(mail.outbox) == 3
    # Counted for any address, known or not, so the refusal tells nothing either.
    for _ in range(3):
        ask_reset(Client(), "nobody@example.org")
    assert "Too many reset requests" in ask_reset(Client(), "nobody@example.org").content.decode()


def test_changing_the_password_signs_out_the_other_sessions_and_keeps_this_one(owner):
    here, elsewhere = signed_in(owner), signed_in(owner)
    assert elsewhere.get("/").status_code == 200
    response = here.post(
        "/accounts/password/change/",
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response["Location"] == "/accounts/password/change/done/"
    assert here.get("/").status_code == 200
    gone = elsewhere.get("/")
    assert gone.status_code == 302 and gone["Location"].startswith("/accounts/login/")
    assert AuditEvent.objects.filter(action="user.password_change", object_id=str(owner.id)).count() == 1


def test_guesses_of_the_current_password_are_throttled_like_sign_ins(owner, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    client = signed_in(owner)
    for n in range(3):
        page = client.post(
            "/accounts/password/change/",
            {"old_password": f"guess-{n}", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
        )
        assert page.status_code == 200
    refused = client.post(
        "/accounts/password/change/",
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert "Too many failed sign-ins" in refused.content.decode()
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD)
    assert AuditEvent.objects.filter(action="login.locked", object_id=str(owner.id)).count() == 1
