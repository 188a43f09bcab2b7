"""``{% retraining_comparison_for review as comparison %}``: the retraining evidence a deployment review shows."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.simple_tag
def retraining_comparison_for(review: Any) -> dict[str, Any] | None:
    from apps.deployments.retraining import retraining_comparison

    return retraining_comparison(review)
