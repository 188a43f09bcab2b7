"""Small template helpers shared by pages (and, later, reports)."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.filter
def get_item(mapping: Any, key: Any) -> Any:
    """``{{ row|get_item:name }}``: dictionary lookup by a variable key."""
    if isinstance(mapping, dict):
        return mapping.get(key)
    return None


@register.filter
def number(value: Any, digits: int = 3) -> str:
    """A figure as the board and reports show it: fixed decimals, an en dash for missing."""
    if value is None:
        return "–"
    try:
        return f"{float(value):.{int(digits)}f}"
    except (TypeError, ValueError):
        return str(value)


@register.filter
def interval(pair: Any, digits: int = 3) -> str:
    if not pair or pair[0] is None:
        return "–"
    return f"[{float(pair[0]):.{int(digits)}f}, {float(pair[1]):.{int(digits)}f}]"
