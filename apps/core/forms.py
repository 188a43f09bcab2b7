"""Helpers that show service errors on HTML forms."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import HttpRequest

from apps.core.errors import AttestError


def add_service_errors(request: HttpRequest, form: forms.Form, error: AttestError) -> None:
    """Attach a service's field errors to the form's fields (others to the form) and flash its message."""
    details = error.details if isinstance(error.details, dict) else {}
    placed = False
    for field, problems in details.items():
        texts = problems if isinstance(problems, list) else [str(problems)]
        if isinstance(problems, dict):
            texts = [
                f"{key}: {', '.join(map(str, value)) if isinstance(value, list) else value}"
                for key, value in problems.items()
            ]
        target = field if field in form.fields else None
        for text in texts:
            form.add_error(target, str(text))
            placed = True
    if not placed:
        form.add_error(None, error.message)
    messages.error(request, error.message)


def chart_html(svg: str) -> str:
    """Mark a chart from ``apps.core.charts`` safe for templates: that renderer escapes every label it draws."""
    from django.utils.safestring import mark_safe

    return mark_safe(svg)  # noqa: S308 - see the docstring
