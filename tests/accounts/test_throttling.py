"""Password guessing is counted before the password is checked, per account and per address-and-account."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.test import Client, RequestFactory

from apps.accounts.models import User
from apps.accounts.throttling import client_address
from apps.audit.models import AuditEvent
from tests.conftest import PASSWORD, make_user

PROXY = "10.0.0.2"


def login(client, username, password, **extra):
    return client.post("/accounts/login/", {"username": username, "password": password}, **extra)


@pytest.fixture
def counted_password_checks(monkeypatch):
    """How many times a password was actually checked (thread-safe: parallel requests check in their own threads)."""
    calls = []
    lock = threading.Lock()
    original = User.check_password

    def counting(self, raw_password):
        with lock:
            calls.append(self.username)
        return original(self, raw_password)

    monkeypatch.setattr(User, "check_password", counting)
    return calls


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_forty_parallel_wrong_guesses_check_at_most_five_passwords_and_lock_the_account(
    owner, counted_password_checks, settings
):
    settings.LOGIN_FAILURE_LIMIT = 5
    barrier = threading.Barrier(40)
    statuses = []

    def guess(n):
        try:
            barrier.wait()
            statuses.append(login(Client(), owner.username, f"wrong-guess-{n}").status_code)
        finally:
            connection.close()  # each thread had its own connection

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 40
    assert len(counted_password_checks) <= 5
    # The account is locked: even the right password is refused without being checked.
    checked = len(counted_password_checks)
    response = login(Client(), owner.username, PASSWORD)
    assert response.status_code == 200 and "Too many failed sign-ins" in response.content.decode()
    assert len(counted_password_checks) == checked
    assert AuditEvent.objects.filter(action="login.locked", object_id=str(owner.id)).count() == 1


@pytest.mark.django_db
def test_wrong_passwords_on_other_accounts_from_one_proxy_address_do_not_lock_out_a_correct_login(owner, settings):
    # Behind the reverse proxy every person arrives from its address; without a trusted proxy configured it is all
    # Attest can see.
    settings.TRUSTED_PROXIES = []
    for n in range(20):
        victim = make_user(f"colleague_{n}")
        assert login(Client(), victim.username, "wrong-password", REMOTE_ADDR=PROXY).status_code == 200
    assert login(Client(), owner.username, PASSWORD, REMOTE_ADDR=PROXY).status_code == 302


@pytest.mark.django_db
def test_a_locked_address_and_account_pair_leaves_the_person_at_another_address_signing_in(owner, settings):
    settings.TRUSTED_PROXIES = [PROXY]
    settings.LOGIN_FAILURE_LIMIT, settings.LOGIN_ACCOUNT_FAILURE_LIMIT = 3, 10
    attacker = {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": "203.0.113.9"}
    for _ in range(3):
        login(Client(), owner.username, "wrong-password", **attacker)
    assert "Too many failed sign-ins" in login(Client(), owner.username, PASSWORD, **attacker).content.decode()
    person = {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": "198.51.100.7"}
    assert login(Client(), owner.username, PASSWORD, **person).status_code == 302


@pytest.mark.django_db
def test_guesses_from_many_addresses_still_stop_at_the_account_limit(owner, settings, counted_password_checks):
    settings.TRUSTED_PROXIES = [PROXY]
    settings.LOGIN_FAILURE_LIMIT, settings.LOGIN_ACCOUNT_FAILURE_LIMIT = 3, 6
    for n in range(20):
        login(Client(), owner.username, "wrong-password", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=f"203.0.113.{n}")
    assert len(counted_password_checks) == 6
    response = login(Client(), owner.username, PASSWORD, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert "Too many failed sign-ins" in response.content.decode()


@pytest.mark.parametrize(
    ("trusted", "remote", "forwarded", "expected"),
    [
        ([], "10.0.0.2", "203.0.113.9", "10.0.0.2"),  # no proxy configured: the header is never believed
        (["10.0.0.0/8"], "192.0.2.1", "203.0.113.9", "192.0.2.1"),  # not from the proxy: the header is the client's
        (["10.0.0.0/8"], "10.0.0.2", "203.0.113.9", "203.0.113.9"),
        # A client prepends a forged address; the proxy appends the real one, which is what counts.
        (["10.0.0.0/8"], "10.0.0.2", "1.2.3.4, 203.0.113.9", "203.0.113.9"),
        # Two proxies in a row, both trusted.
        (["10.0.0.0/8"], "10.0.0.2", "1.2.3.4, 203.0.113.9, 10.0.0.7", "203.0.113.9"),
        (["10.0.0.0/8"], "10.0.0.2", "not-an-address", "10.0.0.2"),
        (["10.0.0.0/8", "::1"], "::1", "2001:db8::1", "2001:db8::1"),
    ],
)
def test_the_client_address_comes_from_x_forwarded_for_only_through_trusted_proxies(
    settings, trusted, remote, forwarded, expected
):
    settings.TRUSTED_PROXIES = trusted
    request = RequestFactory().get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)
    assert client_address(request) == expected
