"""Every role of the organisation reads evaluations (the board relies on them); owners and admins request them."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.accounts.models import User
from apps.accounts.selectors import organisation_ids_for
from apps.evaluation.models import Evaluation


def visible_to(user: User, action: str = "view") -> QuerySet[Evaluation]:
    return Evaluation.objects.filter(organisation_id__in=organisation_ids_for(user))
