"""Every role of an organisation, and an external auditor it granted, reads and downloads its reports; members who
make the evidence (admins, owners, stewards, board members) issue them. Verification is open to every signed-in user:
it reveals only what the uploaded file already contains."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.accounts.models import User
from apps.accounts.selectors import organisation_ids_for
from apps.reports.models import Report


def visible_to(user: User, action: str = "view") -> QuerySet[Report]:
    if action != "view":
        raise ValueError(f"unknown action {action!r}")
    return Report.objects.filter(organisation_id__in=organisation_ids_for(user)).select_related(
        "organisation", "usecase", "model_version", "superseded_by", "job"
    )
