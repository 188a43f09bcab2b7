"""The compliance pieces other pages embed: progress bars on the use-case page, open requirements on the review."""

from __future__ import annotations

from typing import Any

from django import template

from apps.compliance.selectors import open_requirements, progress_for

register = template.Library()


@register.inclusion_tag("compliance/_progress.html")
def compliance_progress(usecase: Any) -> dict[str, Any]:
    return {"usecase": usecase, "progress": progress_for(usecase)}


@register.inclusion_tag("compliance/_open_requirements.html")
def compliance_open_requirements(usecase: Any) -> dict[str, Any]:
    statuses = open_requirements(usecase)
    return {"usecase": usecase, "statuses": statuses}
