"""Template context: how many unread notices the signed-in user has (shown in the header)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from apps.ethics.selectors import unread_notices


def notices(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"unread_notice_count": unread_notices(user).count()}
