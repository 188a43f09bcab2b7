"""Notices: a row per person (read in the header) now, and an e-mail once the transaction commits, so a rolled-back
vote, sync or submission tells nobody. Used by the board's services and by the deployments' alerts and feedback."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse

from apps.accounts.models import Organisation, User
from apps.ethics.models import Notice, ReviewRequest


def notify(
    users: list[User],
    *,
    organisation: Organisation,
    kind: str,
    message: str,
    review: ReviewRequest | None = None,
    url: str = "",
) -> None:
    """Tell each active user once; the link is ``url``, or the review's page when a review is given."""
    if review is not None and not url:
        url = reverse("ethics:review", kwargs={"review_id": review.id})
    unique = {user.id: user for user in users if user is not None and user.is_active}
    Notice.objects.bulk_create(
        [
            Notice(user=u, organisation=organisation, review=review, kind=kind, message=message[:500], url=url)
            for u in unique.values()
        ]
    )
    recipients = [u.email for u in unique.values() if u.email]
    if not recipients:
        return
    link = f"{settings.SITE_URL.rstrip('/')}{url}" if url else ""
    body = f"{message}\n\n{link}\n\n{organisation.name} · Attest"

    def send() -> None:
        for address in recipients:
            send_mail(f"[Attest] {message[:120]}", body, settings.DEFAULT_FROM_EMAIL, [address], fail_silently=True)

    transaction.on_commit(send)
