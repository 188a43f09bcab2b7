"""What each role sees first: the next things that person has to do.

Apps contribute cards in their own ``dashboard.py`` with ``@card(role, order)``; a card function gets the request
and returns a dict (title, body, count, url, link_text, tone) or None when there is nothing to show.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest
from django.utils.module_loading import autodiscover_modules

from apps.accounts.models import Role

CardFunction = Callable[[HttpRequest], dict[str, Any] | None]


@dataclass(frozen=True)
class CardSpec:
    role: str
    order: int
    func: CardFunction


_REGISTRY: list[CardSpec] = []
_discovered = False

ROLE_HEADINGS = {
    Role.ADMIN: "Org admin dashboard",
    Role.OWNER: "Use-case owner dashboard",
    Role.STEWARD: "Data steward dashboard",
    Role.BOARD: "Ethics board dashboard",
    Role.AUDITOR: "Auditor dashboard",
    Role.PRIVACY: "Privacy officer dashboard",
}
ROLE_ORDER = [Role.PRIVACY, Role.ADMIN, Role.OWNER, Role.STEWARD, Role.BOARD, Role.AUDITOR]


def card(role: str, order: int = 100) -> Callable[[CardFunction], CardFunction]:
    def register(func: CardFunction) -> CardFunction:
        if not any(spec.func is func and spec.role == role for spec in _REGISTRY):
            _REGISTRY.append(CardSpec(role, order, func))
        return func

    return register


def _discover() -> None:
    global _discovered
    if not _discovered:
        autodiscover_modules("dashboard")
        _discovered = True


def dashboard_context(request: HttpRequest) -> dict[str, Any]:
    _discover()
    roles = getattr(request, "roles", set())
    sections = []
    for role in ROLE_ORDER:
        if role not in roles:
            continue
        cards = []
        for spec in sorted((s for s in _REGISTRY if s.role == role), key=lambda s: s.order):
            data = spec.func(request)
            if data:
                cards.append(data)
        sections.append({"role": role, "heading": ROLE_HEADINGS[role], "cards": cards})
    return {"sections": sections}
