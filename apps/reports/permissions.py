"""Every role of an organisation, and an external auditor it granted, reads and downloads its reports; members who
make the evidence (admins, owners, stewards, board members) issue them. Verification is open to every signed-in user:
it reveals only what the uploaded file already contains. The reports of data-subject requests are read only by those
who handle requests and by auditors."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from apps.accounts.models import User
from apps.accounts.selectors import organisation_ids_for
from apps.reports.models import Report


def visible_to(user: User, action: str = "view") -> QuerySet[Report]:
    if action != "view":
        raise ValueError(f"unknown action {action!r}")
    from apps.accounts.models import Role
    from apps.rights.permissions import officer_organisation_ids

    # Reports of data-subject requests name a person's pseudonym and where their data is: only those who handle
    # requests (and auditors, who read requests) see them.
    rights_readers = officer_organisation_ids(user) | organisation_ids_for(user, [Role.AUDITOR])
    return (
        Report.objects.filter(organisation_id__in=organisation_ids_for(user))
        .exclude(
            Q(kind__in=[Report.Kind.SUBJECT_ACCESS, Report.Kind.RIGHTS_CERTIFICATE])
            & ~Q(organisation_id__in=rights_readers)
        )
        .select_related("organisation", "usecase", "model_version", "superseded_by", "job")
    )
