"""Signed-in sessions: tracking rows for their owner's list, and idle and absolute timeouts enforced on the server.

The cookie's own max-age is a request to the browser, not a guarantee: a copied cookie would live as long as its row
in the session table. So the time of sign-in and of the last activity live in the session itself and
``SessionActivityMiddleware`` ends a session past either limit. Activity is written at most once a minute per
session (the session and its ``UserSession`` row), so a busy page does not turn every read into two writes; the idle
limit is therefore exact to within that minute.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.contrib.auth import logout
from django.contrib.sessions.models import Session
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from apps.accounts.models import User, UserSession
from apps.accounts.throttling import client_address

SIGNED_IN_AT = "attest_signed_in_at"
SEEN_AT = "attest_seen_at"
TRACKED = "attest_session_tracked"
# Why the last session ended, read once by the sign-in page ("idle" or "absolute").
SIGNED_OUT_REASON = "attest_signed_out_reason"
TOUCH_EVERY_SECONDS = 60


def session_key_hash(session_key: str) -> str:
    return hashlib.sha256(session_key.encode("ascii")).hexdigest()


_BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"), ("Safari/", "Safari"))
_SYSTEMS = (("Android", "Android"), ("iPhone", "iOS"), ("iPad", "iPadOS"), ("Windows", "Windows"), ("Mac OS", "macOS"))
_TOOL = re.compile(r"^(curl|python-requests|Wget|HeadlessChrome|Playwright)", re.IGNORECASE)


def device_summary(user_agent: str) -> str:
    """'Firefox on Linux': enough for a person to recognise their device; the full user agent is not kept."""
    if not user_agent:
        return ""
    tool = _TOOL.match(user_agent)
    if tool:
        return tool.group(1)
    browser = next((name for marker, name in _BROWSERS if marker in user_agent), "a browser")
    system = next((name for marker, name in _SYSTEMS if marker in user_agent), "")
    if not system and ("Linux" in user_agent or "X11" in user_agent):
        system = "Linux"
    return f"{browser} on {system}" if system else browser


def network_of(address: str | None) -> str:
    """The address truncated to its network (IPv4 /24, IPv6 /48): where, roughly, without naming the machine."""
    if not address:
        return ""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return ""
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def delete_django_sessions(key_hashes: set[str]) -> int:
    """Delete the sessions whose key hashes to one of ``key_hashes``; returns how many.

    Only hashes are stored, so the live sessions are hashed and compared: one pass over the unexpired rows of the
    session table, which holds one row per signed-in browser, a few thousand for a portal of this kind.
    """
    if not key_hashes:
        return 0
    live = Session.objects.filter(expire_date__gt=timezone.now()).values_list("session_key", flat=True)
    keys = [key for key in live.iterator() if session_key_hash(key) in key_hashes]
    Session.objects.filter(session_key__in=keys).delete()
    return len(keys)


def _moment(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def session_started(request: HttpRequest, user: User) -> None:
    """Called right after Django's login(): stamp the sign-in time and start tracking the (new, rotated) session."""
    now = time.time()
    request.session[SIGNED_IN_AT] = now
    request.session[SEEN_AT] = now
    request.session.pop(SIGNED_OUT_REASON, None)
    if request.session.session_key is None:
        request.session.save()
    _track(request, user, now)
    # Rows of sessions past the absolute limit are of no use to anyone: drop this person's at each sign-in.
    UserSession.objects.filter(
        user=user, signed_in_at__lt=timezone.now() - timedelta(seconds=settings.SESSION_COOKIE_AGE)
    ).delete()


def _track(request: HttpRequest, user: User, now: float) -> None:
    key_hash = session_key_hash(request.session.session_key or "")
    UserSession.objects.update_or_create(
        key_hash=key_hash,
        defaults={"last_seen_at": _moment(now)},
        create_defaults={
            "user": user,
            "device": device_summary(request.headers.get("User-Agent", ""))[:80],
            "network": network_of(client_address(request)),
            "signed_in_at": _moment(request.session.get(SIGNED_IN_AT, now)),
            "last_seen_at": _moment(now),
        },
    )
    request.session[TRACKED] = True


def _end(request: HttpRequest, reason: str) -> None:
    key = request.session.session_key
    if key:
        UserSession.objects.filter(key_hash=session_key_hash(key)).delete()
    logout(request)  # flushes the session: its row is deleted and a new, anonymous key is issued
    request.session[SIGNED_OUT_REASON] = reason


class SessionActivityMiddleware:
    """Ends sessions idle longer than ``ATTEST_SESSION_IDLE_SECONDS`` or older than ``SESSION_COOKIE_AGE`` since sign-in,
    and refreshes the session's tracking row at most once a minute; a tracked session whose row was revoked ends."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and hasattr(request, "session"):
            self._check(request, user)
        return self.get_response(request)

    def _check(self, request: HttpRequest, user: User) -> None:
        session = request.session
        now = time.time()
        # Sessions from before this middleware carry no stamps: they start counting now.
        signed_in_at = session.get(SIGNED_IN_AT) or session.setdefault(SIGNED_IN_AT, now)
        seen_at = session.get(SEEN_AT) or session.setdefault(SEEN_AT, now)
        if now - signed_in_at > settings.SESSION_COOKIE_AGE:
            _end(request, "absolute")
            return
        if now - seen_at > settings.SESSION_IDLE_SECONDS:
            _end(request, "idle")
            return
        if now - seen_at < TOUCH_EVERY_SECONDS and session.get(TRACKED):
            return
        session[SEEN_AT] = now
        key = session.session_key
        if key is None:
            return
        if session.get(TRACKED):
            touched = UserSession.objects.filter(key_hash=session_key_hash(key)).update(last_seen_at=_moment(now))
            if not touched:
                # Revoked while this request was on its way (revocation deletes the session row too).
                _end(request, "revoked")
            return
        _track(request, user, now)


def signed_out_message(reason: str | None) -> str:
    """What the sign-in page says about the session that just ended."""
    if reason == "idle":
        minutes = max(1, settings.SESSION_IDLE_SECONDS // 60)
        return f"You were signed out after {minutes} minutes of inactivity. Sign in again to continue."
    if reason == "absolute":
        hours = settings.SESSION_COOKIE_AGE / 3600
        span = f"{hours:g} hours" if hours >= 1 else f"{settings.SESSION_COOKIE_AGE // 60} minutes"
        return f"You were signed out because sessions last at most {span}. Sign in again to continue."
    if reason == "revoked":
        return "This session was ended from another session or by an administrator. Sign in again to continue."
    return ""
