"""What each role sees first: the next things that person has to do."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest


def dashboard_context(request: HttpRequest) -> dict[str, Any]:
    return {"roles": sorted(getattr(request, "roles", set()))}
