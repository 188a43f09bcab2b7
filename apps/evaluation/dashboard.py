"""Dashboard cards of evaluations."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import reverse

from apps.accounts.models import Role
from apps.core.dashboard import card
from apps.evaluation.models import Evaluation


def _latest(request: HttpRequest) -> dict[str, Any] | None:
    latest = Evaluation.objects.filter(
        organisation=request.organisation,  # type: ignore[attr-defined]
        status="succeeded",
        model_version__non_private=False,
    ).first()
    if latest is None:
        return None
    verdict = {
        "pass": "all fairness and robustness gates pass",
        "fail": "some fairness or robustness gates fail",
        "unknown": "some fairness or robustness gates cannot be evaluated (no pass without a waiver)",
    }.get(latest.verdict, "no gate verdict")
    bound = latest.audit.get("empirical_epsilon_lower_bound")
    body = f"{latest.model_version}: {verdict}."
    if bound is not None:
        body += f" Audit lower bound epsilon {bound:.2f} beside the proven {latest.audit.get('proven_epsilon'):.2f}."
    return {
        "title": "Latest evaluation",
        "body": body,
        "url": reverse("evaluation:detail", args=[latest.id]),
        "link_text": "Open the evaluation",
        "tone": None if latest.verdict == "pass" else "warning",
    }


card(Role.OWNER, order=25)(_latest)
card(Role.BOARD, order=20)(_latest)
card(Role.AUDITOR, order=35)(_latest)
