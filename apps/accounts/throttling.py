"""Throttling of password guesses (sign-in, the change form's current password) and of password-reset requests.

Django does not limit guessing. Each attempt is counted *before* the password is checked, in one transaction that
locks the counter rows (``SELECT ... FOR UPDATE``): forty guesses sent at once queue on the lock, the first ``limit``
are let through to the password check and the rest are refused without one. A successful sign-in clears the counts.

Keys, each with its own limit within ``LOGIN_FAILURE_WINDOW_SECONDS``:

- address and account (``LOGIN_FAILURE_LIMIT``): one source guessing one account is stopped after a few tries, and
  locks out only that address for that account;
- account from any address (``LOGIN_ACCOUNT_FAILURE_LIMIT``, looser): a guesser with many addresses still gets few;
- address alone (``LOGIN_ADDRESS_FAILURE_LIMIT``, off by default): against spraying one password over many accounts.
  Behind a reverse proxy that is not listed in ``ATTEST_TRUSTED_PROXIES`` every person shares the proxy's address, so a
  per-address limit would lock everyone out; turn it on only where the client address is real.

The client address is ``REMOTE_ADDR``, or, when that is a trusted proxy, the first address in ``X-Forwarded-For``
(read from the right) that is not one: a client can prepend anything to that header but not change what the
trusted proxies append.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac

from apps.accounts.models import AttemptCounter

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.cache
def _trusted_networks(configured: tuple[str, ...]) -> tuple[IpNetwork, ...]:
    return tuple(ipaddress.ip_network(item, strict=False) for item in configured)


def _parse_ip(value: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address((value or "").strip())
    except ValueError:
        return None


def client_address(request: Any) -> str | None:
    """The address of the person's machine, trusting ``X-Forwarded-For`` only as far as ``TRUSTED_PROXIES`` go."""
    if request is None:
        return None
    remote = request.META.get("REMOTE_ADDR")
    networks = _trusted_networks(tuple(settings.TRUSTED_PROXIES))

    def trusted(ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> bool:
        return ip is not None and any(ip in network for network in networks)

    if not networks or not trusted(_parse_ip(remote)):
        return remote
    client = remote
    for hop in reversed(request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")):
        ip = _parse_ip(hop)
        if ip is None:
            break  # garbage from the client side: the last trusted hop is all we know
        client = str(ip)
        if not trusted(ip):
            break
    return client


@dataclass(frozen=True)
class ThrottleKey:
    """One counter: ``scope`` names what is counted (``login``, ``reset``), ``kind`` which limit applies."""

    scope: str
    kind: str  # "pair", "account" or "address"
    value: str

    @property
    def digest(self) -> str:
        # Keyed with SECRET_KEY: the table holds no usernames or addresses, and a plain hash of an IPv4 address
        # would be reversed by trying all 2^32 of them.
        return salted_hmac("attest.throttle", f"{self.scope}|{self.kind}|{self.value}").hexdigest()

    @property
    def limit(self) -> int:
        return {
            "pair": settings.LOGIN_FAILURE_LIMIT,
            "account": settings.LOGIN_ACCOUNT_FAILURE_LIMIT,
            "address": settings.LOGIN_ADDRESS_FAILURE_LIMIT,
        }[self.kind]


def throttle_keys(scope: str, account: str, address: str | None) -> list[ThrottleKey]:
    """The counters an attempt on ``account`` (a username, or an e-mail for resets) from ``address`` touches."""
    account = account.strip().lower()[:254]
    where = address or "unknown"
    keys = [ThrottleKey(scope, "pair", f"{where}|{account}"), ThrottleKey(scope, "account", account)]
    if settings.LOGIN_ADDRESS_FAILURE_LIMIT > 0:
        keys.append(ThrottleKey(scope, "address", where))
    return keys


def _window() -> timedelta:
    return timedelta(seconds=settings.LOGIN_FAILURE_WINDOW_SECONDS)


def _seconds_until(moment: datetime) -> int:
    return max(1, int((moment - timezone.now()).total_seconds()) + 1)


def attempt_begin(keys: list[ThrottleKey]) -> int:
    """Count one attempt on every key, or none if any key is at its limit; return 0 when the attempt may go ahead,
    else the seconds until it could.

    Runs in its own transaction (committed before the caller checks a password, when the caller has none open), with
    the rows locked in a fixed order so two attempts never deadlock.
    """
    keys = sorted((key for key in keys if key.limit > 0), key=lambda key: key.digest)
    now = timezone.now()
    with transaction.atomic():
        AttemptCounter.objects.bulk_create(
            [AttemptCounter(key=key.digest, count=0, window_started_at=now) for key in keys], ignore_conflicts=True
        )
        rows = {
            row.key: row
            for row in AttemptCounter.objects.select_for_update()
            .filter(key__in=[key.digest for key in keys])
            .order_by("key")
        }
        wait = 0
        for key in keys:
            row = rows[key.digest]
            if row.window_started_at <= now - _window():
                row.count, row.window_started_at, row.locked_at = 0, now, None
            if row.count >= key.limit:
                wait = max(wait, _seconds_until(row.window_started_at + _window()))
        if wait:
            # Refused attempts are not counted: the lock ends one window after it began, whatever the guesser does.
            return wait
        for row in rows.values():
            row.count += 1
            row.save(update_fields=["count", "window_started_at", "locked_at"])
    return 0


def attempt_failed(keys: list[ThrottleKey]) -> list[ThrottleKey]:
    """After a failed check: the keys this failure locked (each reported once per window, for its audit event)."""
    locked = []
    for key in keys:
        if key.limit <= 0:
            continue
        marked = AttemptCounter.objects.filter(key=key.digest, count__gte=key.limit, locked_at__isnull=True).update(
            locked_at=timezone.now()
        )
        if marked:
            locked.append(key)
    return locked


def attempt_succeeded(keys: list[ThrottleKey]) -> None:
    """The password was right: forget the account's counts (not the per-address one), and expired rows of anyone."""
    AttemptCounter.objects.filter(key__in=[key.digest for key in keys if key.kind != "address"]).delete()
    AttemptCounter.objects.filter(window_started_at__lt=timezone.now() - _window()).delete()


def attempts_used(keys: list[ThrottleKey]) -> dict[str, int]:
    """Counts within the current window, by key kind (for tests and diagnostics)."""
    rows = AttemptCounter.objects.filter(
        key__in=[key.digest for key in keys], window_started_at__gt=timezone.now() - _window()
    )
    by_digest = dict(rows.values_list("key", "count"))
    return {key.kind: by_digest.get(key.digest, 0) for key in keys}
