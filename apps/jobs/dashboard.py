"""Dashboard cards of the jobs app."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import reverse

from apps.accounts.models import Role
from apps.core.dashboard import card
from apps.jobs.models import Job


@card(Role.ADMIN, order=90)
def diagnostics(request: HttpRequest) -> dict[str, Any]:
    last = Job.objects.filter(organisation=request.organisation, kind="diagnostics").first()  # type: ignore[attr-defined]
    status = f"Last run: {last.get_status_display().lower()}." if last else "Not run yet."
    return {
        "title": "Workers and diagnostics",
        "body": f"Check that the web, broker, workers and database talk. {status}",
        "url": reverse("jobs:diagnostics"),
        "link_text": "Run diagnostics",
    }


def _my_jobs(request: HttpRequest) -> dict[str, Any] | None:
    running = Job.objects.filter(
        organisation=request.organisation,
        created_by=request.user,  # type: ignore[attr-defined]
        status__in=[Job.Status.QUEUED, Job.Status.RUNNING],
    ).count()
    failed = Job.objects.filter(
        organisation=request.organisation,
        created_by=request.user,  # type: ignore[attr-defined]
        status=Job.Status.FAILED,
    ).count()
    return {
        "title": "My jobs",
        "count": running,
        "body": f"{running} queued or running; {failed} failed.",
        "tone": "warning" if failed else None,
        "url": reverse("jobs:list"),
        "link_text": "See jobs",
    }


card(Role.OWNER, order=60)(_my_jobs)
card(Role.STEWARD, order=60)(_my_jobs)
