"""Signed-in sessions: the person's list, revocation (one, every other, by an admin), sign-out, idle and absolute
limits enforced on the server."""

import time
from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from apps.accounts.models import UserSession
from apps.accounts.sessions import SEEN_AT, SIGNED_IN_AT, session_key_hash
from apps.audit.models import AuditEvent
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
)


def signed_in(user, *, user_agent=FIREFOX, address="203.0.113.77") -> Client:
    client = Client(HTTP_USER_AGENT=user_agent, REMOTE_ADDR=address)
    response = client.post("/accounts/login/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302
    return client


def key_hash_of(client: Client) -> str:
    return session_key_hash(client.cookies["sessionid"].value)


def is_signed_in(client: Client) -> bool:
    return client.get("/accounts/sessions/").status_code == 200


def test_the_sessions_page_lists_each_device_with_a_truncated_network_and_no_full_address(owner):
    laptop = signed_in(owner)
    signed_in(owner, user_agent=CHROME_WINDOWS, address="2001:db8:1234:5678::1")
    page = laptop.get("/accounts/sessions/").content.decode()
    assert "Firefox on Linux" in page and "Chrome on Windows" in page
    assert "203.0.113.0/24" in page and "2001:db8:1234::/48" in page
    assert "203.0.113.77" not in page
    stored = list(UserSession.objects.filter(user=owner).values())
    assert len(stored) == 2
    assert not any("203.0.113.77" in str(value) or "Gecko" in str(value) for row in stored for value in row.values())
    # The row is keyed by the hash of the session key; the key itself is nowhere in the table.
    raw_key = laptop.cookies["sessionid"].value
    assert UserSession.objects.filter(key_hash=session_key_hash(raw_key)).exists()
    assert not any(raw_key in str(value) for row in stored for value in row.values())


def test_a_person_ends_another_of_their_sessions_and_it_is_signed_out_at_once(owner):
    laptop, phone = signed_in(owner), signed_in(owner, user_agent=CHROME_WINDOWS)
    phone_key = phone.cookies["sessionid"].value
    phone_row = UserSession.objects.get(key_hash=session_key_hash(phone_key))
    response = laptop.post("/accounts/sessions/", {"session": str(phone_row.id)})
    assert response.status_code == 302
    assert not Session.objects.filter(session_key=phone_key).exists()
    assert not is_signed_in(phone)
    assert is_signed_in(laptop)
    (event,) = AuditEvent.objects.filter(action="session.revoke")
    text = str(event.after)
    assert "203.0.113" not in text and "Chrome" not in text and phone_key not in text


def test_ending_every_other_session_keeps_only_the_current_one(owner):
    laptop, phone, tablet = signed_in(owner), signed_in(owner), signed_in(owner)
    laptop.post("/accounts/sessions/", {"action": "end_others"})
    assert is_signed_in(laptop)
    assert not is_signed_in(phone) and not is_signed_in(tablet)
    assert list(UserSession.objects.filter(user=owner).values_list("key_hash", flat=True)) == [key_hash_of(laptop)]


def test_nobody_ends_someone_elses_session_from_their_own_page(owner, steward):
    victim = signed_in(owner)
    attacker = signed_in(steward)
    row = UserSession.objects.get(key_hash=key_hash_of(victim))
    assert attacker.post("/accounts/sessions/", {"session": str(row.id)}).status_code == 404
    assert is_signed_in(victim)


def test_an_org_admin_signs_a_member_out_everywhere_and_others_cannot(admin_user, owner, steward, outsider):
    member_laptop, member_phone = signed_in(owner), signed_in(owner)
    assert (
        signed_in(steward).post("/accounts/members/", {"action": "end_sessions", "user": str(owner.id)}).status_code
        == 404
    )
    assert is_signed_in(member_laptop)
    signed_in(admin_user).post("/accounts/members/", {"action": "end_sessions", "user": str(owner.id)})
    assert not is_signed_in(member_laptop) and not is_signed_in(member_phone)
    assert (
        AuditEvent.objects.filter(
            action="session.revoke_member", organisation=owner.memberships.first().organisation
        ).count()
        == 1
    )


def test_an_admin_cannot_end_sessions_of_someone_outside_the_organisation(admin_user, outsider):
    stranger = signed_in(outsider)
    signed_in(admin_user).post("/accounts/members/", {"action": "end_sessions", "user": str(outsider.id)})
    assert is_signed_in(stranger)
    assert not AuditEvent.objects.filter(action="session.revoke_member").exists()


def test_signing_out_deletes_the_session_and_its_row(owner):
    client = signed_in(owner)
    key = client.cookies["sessionid"].value
    client.post("/accounts/logout/")
    assert not Session.objects.filter(session_key=key).exists()
    assert not UserSession.objects.filter(key_hash=session_key_hash(key)).exists()


def age_session(client: Client, **seconds_ago: float) -> None:
    session = client.session
    now = time.time()
    for key, ago in seconds_ago.items():
        session[{"seen": SEEN_AT, "signed_in": SIGNED_IN_AT}[key]] = now - ago
    session.save()


def test_an_idle_session_is_ended_on_the_server_and_the_sign_in_page_says_why(owner, settings):
    settings.SESSION_IDLE_SECONDS = 30 * 60
    client = signed_in(owner)
    key = client.cookies["sessionid"].value
    age_session(client, seen=30 * 60 + 5)
    response = client.get("/", follow=True)
    assert response.redirect_chain[-1][0].startswith("/accounts/login/")
    assert "You were signed out after 30 minutes of inactivity" in response.content.decode()
    assert not Session.objects.filter(session_key=key).exists()
    # Read once: the next visit to the sign-in page no longer says it.
    assert "inactivity" not in client.get("/accounts/login/").content.decode()


def test_activity_within_the_idle_limit_keeps_the_session(owner, settings):
    settings.SESSION_IDLE_SECONDS = 30 * 60
    client = signed_in(owner)
    age_session(client, seen=29 * 60)
    assert is_signed_in(client)
    age_session(client, seen=29 * 60)  # the request above refreshed it: another 29 minutes pass
    assert is_signed_in(client)


def test_a_session_ends_at_the_absolute_limit_even_when_active(owner, settings):
    settings.SESSION_COOKIE_AGE = 8 * 3600
    client = signed_in(owner)
    age_session(client, signed_in=8 * 3600 + 5, seen=10)
    response = client.get("/", follow=True)
    assert "sessions last at most 8 hours" in response.content.decode()
    assert not is_signed_in(client)


def test_last_seen_is_written_at_most_once_a_minute(owner):
    client = signed_in(owner)
    row = UserSession.objects.get(key_hash=key_hash_of(client))
    earlier = timezone.now() - timedelta(minutes=5)
    UserSession.objects.filter(pk=row.pk).update(last_seen_at=earlier)
    client.get("/accounts/sessions/")
    assert UserSession.objects.get(pk=row.pk).last_seen_at == earlier  # seen less than a minute ago: no write
    age_session(client, seen=61)
    client.get("/accounts/sessions/")
    assert UserSession.objects.get(pk=row.pk).last_seen_at > earlier + timedelta(minutes=4)


def test_a_session_whose_row_was_revoked_elsewhere_ends_at_its_next_touch(owner):
    client = signed_in(owner)
    UserSession.objects.filter(key_hash=key_hash_of(client)).delete()
    age_session(client, seen=61)
    response = client.get("/", follow=True)
    assert "ended from another session or by an administrator" in response.content.decode()


def test_ending_the_current_session_from_the_list_signs_the_person_out(owner):
    client = signed_in(owner)
    key = client.cookies["sessionid"].value
    age_session(client, seen=61)  # the request below also refreshes the session it ends
    row = UserSession.objects.get(key_hash=session_key_hash(key))
    response = client.post("/accounts/sessions/", {"session": str(row.id)})
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert not Session.objects.filter(session_key=key).exists()
    assert not is_signed_in(client)


def test_the_api_lists_only_the_callers_sessions_marks_the_current_one_and_revokes(owner, steward):
    laptop, phone = signed_in(owner), signed_in(owner)
    signed_in(steward)
    listed = laptop.get("/api/v1/sessions/").json()["results"]
    assert len(listed) == 2
    assert [
        row["current"] for row in listed if row["id"] == str(UserSession.objects.get(key_hash=key_hash_of(laptop)).id)
    ] == [True]
    phone_row = UserSession.objects.get(key_hash=key_hash_of(phone))
    response = laptop.post(f"/api/v1/sessions/{phone_row.id}/revoke/")
    assert response.status_code == 200 and response.json()["current"] is False
    assert not is_signed_in(phone) and is_signed_in(laptop)
    steward_row = UserSession.objects.get(user=steward)
    assert laptop.post(f"/api/v1/sessions/{steward_row.id}/revoke/").json()["error"]["code"] == "not_found"
