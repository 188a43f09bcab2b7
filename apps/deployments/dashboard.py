"""Dashboard cards of deployments: the board member's alerts on the models they approved."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import reverse

from apps.accounts.models import Role
from apps.core.dashboard import card
from apps.deployments.alerts import alert_url, alerts_on_models_approved_by
from apps.deployments.models import Alert


@card(Role.BOARD, order=7)
def alerts_on_models_i_approved(request: HttpRequest) -> dict[str, Any] | None:
    """Members who voted to approve a deployed model follow what happens to it in production."""
    alerts = list(
        alerts_on_models_approved_by(request.user, request.organisation).order_by("-created_at")  # type: ignore[attr-defined]
    )
    if not alerts:
        return None
    critical = sum(1 for alert in alerts if alert.severity == Alert.Severity.CRITICAL)
    newest = alerts[0]
    newest_words = f"Newest: {newest.title} on {newest.deployment}."
    body = f"{critical} critical. {newest_words}" if critical else newest_words
    return {
        "title": "Alerts on models you approved",
        "count": len(alerts),
        "body": body,
        "url": alert_url(newest) if len(alerts) == 1 else reverse("deployments:alerts"),
        "link_text": "Open the alert" if len(alerts) == 1 else "All alerts",
        "tone": "danger" if critical else "warning",
    }
