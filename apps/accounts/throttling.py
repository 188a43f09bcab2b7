"""Login throttling: Django does not limit password guessing, so failures are counted per username and address."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.accounts.models import LoginFailure
from apps.audit.services import audit_record


def _window_start():  # type: ignore[no-untyped-def]
    return timezone.now() - timedelta(seconds=settings.LOGIN_FAILURE_WINDOW_SECONDS)


def login_blocked_for(username: str, ip_address: str | None) -> int:
    """Seconds until another attempt is allowed (0 when allowed now)."""
    username = username.strip().lower()
    recent = LoginFailure.objects.filter(created_at__gte=_window_start())
    by_user = recent.filter(username=username)
    by_address = recent.filter(ip_address=ip_address) if ip_address else LoginFailure.objects.none()
    limit = settings.LOGIN_FAILURE_LIMIT
    # An address may try a few different usernames (a shared office), but not spray many.
    blocking = [qs for qs, cap in ((by_user, limit), (by_address, limit * 4)) if qs.count() >= cap]
    if not blocking:
        return 0
    oldest = min(qs.order_by("created_at").values_list("created_at", flat=True).first() for qs in blocking)
    wait = oldest + timedelta(seconds=settings.LOGIN_FAILURE_WINDOW_SECONDS) - timezone.now()
    return max(1, int(wait.total_seconds()))


def login_failure_record(*, username: str, ip_address: str | None) -> None:
    """Count a failed sign-in; the attempt that reaches the limit writes one audit event (the lock-out)."""
    username = username.strip().lower()[:150]
    with transaction.atomic():
        LoginFailure.objects.create(username=username, ip_address=ip_address)
        count = LoginFailure.objects.filter(username=username, created_at__gte=_window_start()).count()
        if count == settings.LOGIN_FAILURE_LIMIT:
            audit_record(
                actor=None,
                action="login.locked",
                object_type="accounts.user",
                object_id=username,
                after={"username": username, "ip_address": ip_address, "failures": count},
            )


def login_failures_clear(*, username: str) -> None:
    """A successful sign-in forgets that username's failures (and old rows of everyone)."""
    LoginFailure.objects.filter(Q(username=username.strip().lower()) | Q(created_at__lt=_window_start())).delete()
