"""Reads: which requirements apply to a use case, their status with evidence, progress per framework, search.

Statuses are derived, never stored: a requirement is *met* when a person confirmed it and every piece of evidence they
confirmed is still current (same hashes, nothing expired), or when a crosswalk partner in another framework is met on evidence this
requirement holds too; *partly* when evidence is linked but not (or no longer) confirmed; *not met* without evidence;
*not applicable* when the use case's answers fall outside its rule (with the reason). A confirmation whose evidence
changed or expired therefore reopens by itself, at once, everywhere (pages, progress, statements).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

from apps.accounts.selectors import organisation_ids_for
from apps.compliance.evidence import Held, Item, digest_of, gather
from apps.compliance.models import CrosswalkLink, Framework, Requirement
from apps.compliance.rules import Answers, evaluate

MET, PARTLY, NOT_MET, NOT_APPLICABLE = "met", "partly", "not_met", "not_applicable"
STATUS_LABELS = {MET: "Met", PARTLY: "Partly met", NOT_MET: "Not met", NOT_APPLICABLE: "Not applicable"}


@dataclass
class RequirementStatus:
    framework_key: str
    requirement: Requirement
    status: str
    reason: str
    evidence: list[Item] = field(default_factory=list)
    expired: list[Item] = field(default_factory=list)
    confirmation: Any = None
    reopened: bool = False
    via: str = ""  # "eu-ai-act AIA-9" when met through a crosswalk partner

    @property
    def code(self) -> str:
        return self.requirement.code

    @property
    def status_label(self) -> str:
        return STATUS_LABELS[self.status]

    @property
    def evidence_digest(self) -> str:
        return evidence_digest(self.evidence)

    @property
    def open(self) -> bool:
        return self.status in (PARTLY, NOT_MET)


def evidence_digest(items: list[Item]) -> str:
    return digest_of(sorted(item.sha256 for item in items))


def frameworks_for(organisation_ids: set[Any]) -> list[Framework]:
    """Shipped catalogues and the organisations' own frameworks that have a current version (one query)."""
    return list(
        Framework.objects.filter(Q(organisation__isnull=True) | Q(organisation_id__in=organisation_ids))
        .filter(current__isnull=False)
        .select_related("current")
        .order_by("position", "name")
    )


@dataclass
class _Context:
    frameworks: list[Framework]
    requirements: dict[Any, list[Requirement]]  # framework id -> current requirements
    partners: dict[tuple[str, str], set[tuple[str, str]]]

    @classmethod
    def load(cls, organisation_ids: set[Any]) -> _Context:
        frameworks = frameworks_for(organisation_ids)
        by_version: dict[Any, list[Requirement]] = defaultdict(list)
        for requirement in Requirement.objects.filter(framework_version_id__in=[f.current_id for f in frameworks]):
            by_version[requirement.framework_version_id].append(requirement)
        partners: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)
        for a_fw, a_code, b_fw, b_code in CrosswalkLink.objects.values_list(
            "from_framework", "from_code", "to_framework", "to_code"
        ):
            partners[(a_fw, a_code)].add((b_fw, b_code))
            partners[(b_fw, b_code)].add((a_fw, a_code))
        return cls(frameworks, {f.id: by_version[f.current_id] for f in frameworks}, partners)

    def frameworks_of(self, usecase: Any) -> list[Framework]:
        return [f for f in self.frameworks if f.organisation_id in (None, usecase.organisation_id)]

    def requirement(self, framework_key: str, code: str, organisation_id: Any) -> Requirement | None:
        for framework in self.frameworks:
            if framework.key == framework_key and framework.organisation_id in (None, organisation_id):
                return next((r for r in self.requirements[framework.id] if r.code == code), None)
        return None


def _current_items(
    framework_key: str, requirement: Requirement, held: Held, partners: set[tuple[str, str]], today: Any
) -> tuple[list[Item], list[Item]]:
    """(current evidence, expired evidence) of a requirement: what Attest holds of its kinds, what was linked to it,
    and what was linked to its crosswalk partners (one piece of evidence, several frameworks)."""
    items: dict[tuple[str, str], Item] = {}
    for kind in requirement.evidence_kinds:
        for item in held.by_kind.get(kind, []):
            items[(item.kind, item.sha256)] = item
    for key in [(framework_key, requirement.code), *sorted(partners)]:
        for item in held.linked.get(key, []):
            items[(item.kind, item.sha256)] = item
    current = [i for i in items.values() if not (i.expires_on and i.expires_on < today)]
    expired = [i for i in items.values() if i.expires_on and i.expires_on < today]
    return current, expired


def _still_holds(confirmation: Any, current_hashes: set[str]) -> bool:
    """A confirmation holds while every piece of evidence it was given is still current (unchanged, not superseded,
    not expired). Evidence added since does not reopen it; a changed DPIA or a new report version does."""
    confirmed = set(confirmation.evidence_hashes)
    return bool(confirmed) and confirmed <= current_hashes


def _status(
    framework: Framework, requirement: Requirement, usecase: Any, held: Held, context: _Context, today: Any
) -> RequirementStatus:
    answers = Answers.of(usecase, uses_third_party_model=held.uses_third_party_model)
    applies, reason = evaluate(requirement.applies, answers)
    if not applies:
        return RequirementStatus(framework.key, requirement, NOT_APPLICABLE, f"Not applicable: {reason}.")
    partners = context.partners.get((framework.key, requirement.code), set())
    current, expired = _current_items(framework.key, requirement, held, partners, today)
    confirmation = held.confirmations.get((framework.key, requirement.code))
    result = RequirementStatus(framework.key, requirement, NOT_MET, "", current, expired, confirmation)
    hashes = {item.sha256 for item in current}
    if confirmation is not None and _still_holds(confirmation, hashes):
        result.status = MET
        result.reason = f"Confirmed by {confirmation.confirmed_by.display_name} on {confirmation.created_at:%d %b %Y}."
        return result
    for partner_key, partner_code in sorted(partners):
        partner_confirmation = held.confirmations.get((partner_key, partner_code))
        partner = context.requirement(partner_key, partner_code, usecase.organisation_id)
        if partner_confirmation is None or partner is None or not _still_holds(partner_confirmation, hashes):
            continue
        partner_partners = context.partners.get((partner_key, partner_code), set())
        partner_current, _ = _current_items(partner_key, partner, held, partner_partners, today)
        if _still_holds(partner_confirmation, {item.sha256 for item in partner_current}):
            result.status, result.via = MET, f"{partner_key} {partner_code}"
            result.reason = (
                f"Met through {partner_code} (crosswalk), confirmed by "
                f"{partner_confirmation.confirmed_by.display_name} on {partner_confirmation.created_at:%d %b %Y}."
            )
            return result
    if confirmation is not None:
        result.reopened = True
        confirmed = set(confirmation.evidence_hashes)
        lapsed = [item for item in expired if item.sha256 in confirmed]
        if lapsed:
            when = min(item.expires_on for item in lapsed if item.expires_on)
            cause = f"evidence expired on {when:%d %b %Y}"
        elif confirmation.earliest_expiry and confirmation.earliest_expiry < today:
            cause = f"evidence expired on {confirmation.earliest_expiry:%d %b %Y}"
        else:
            cause = "the evidence changed"
        result.reason = (
            f"Reopened: {cause} since {confirmation.confirmed_by.display_name} confirmed it on "
            f"{confirmation.created_at:%d %b %Y}."
        )
        result.status = PARTLY if current else NOT_MET
        return result
    if current:
        result.status = PARTLY
        result.reason = f"{len(current)} piece(s) of evidence linked; awaiting a person's confirmation."
    else:
        result.reason = "No evidence yet."
    return result


def _assess(usecases: list[Any], context: _Context) -> dict[Any, dict[str, list[RequirementStatus]]]:
    held = gather(usecases)
    today = timezone.localdate()
    result: dict[Any, dict[str, list[RequirementStatus]]] = {}
    for usecase in usecases:
        result[usecase.id] = {
            framework.key: [
                _status(framework, requirement, usecase, held[usecase.id], context, today)
                for requirement in context.requirements[framework.id]
            ]
            for framework in context.frameworks_of(usecase)
        }
    return result


def requirement_statuses(usecase: Any, framework_key: str) -> list[RequirementStatus]:
    """Every requirement of the framework's current version, with its status for this use case."""
    context = _Context.load({usecase.organisation_id})
    return _assess([usecase], context)[usecase.id].get(framework_key, [])


def requirement_status(usecase: Any, framework_key: str, code: str) -> RequirementStatus | None:
    return next((s for s in requirement_statuses(usecase, framework_key) if s.code == code), None)


def progress_of(framework: Framework, statuses: list[RequirementStatus]) -> dict[str, Any]:
    counts = {key: sum(1 for s in statuses if s.status == key) for key in (MET, PARTLY, NOT_MET, NOT_APPLICABLE)}
    applicable = len(statuses) - counts[NOT_APPLICABLE]
    return {
        "framework": framework.key,
        "name": framework.name,
        **counts,
        "total": len(statuses),
        "applicable": applicable,
        "percent": round(100 * counts[MET] / applicable) if applicable else 100,
    }


def progress_for_many(usecases: Any) -> dict[Any, list[dict[str, Any]]]:
    """Progress per framework for each use case, keyed by use-case id; the number of queries does not depend on how
    many use cases are given."""
    usecases = list(usecases)
    if not usecases:
        return {}
    context = _Context.load({usecase.organisation_id for usecase in usecases})
    assessed = _assess(usecases, context)
    by_key = {framework.key: framework for framework in context.frameworks}
    return {
        usecase_id: [progress_of(by_key[key], statuses) for key, statuses in frameworks.items()]
        for usecase_id, frameworks in assessed.items()
    }


def progress_for(usecase: Any) -> list[dict[str, Any]]:
    return progress_for_many([usecase])[usecase.id]


def open_requirements(usecase: Any) -> list[RequirementStatus]:
    """Applicable requirements not met, across frameworks: the board sees them on its review page."""
    context = _Context.load({usecase.organisation_id})
    return [s for statuses in _assess([usecase], context)[usecase.id].values() for s in statuses if s.open]


def framework_for(user: Any, key: str) -> Framework | None:
    """A framework the user may see: a shipped catalogue, or one of the user's organisations' own."""
    ids = organisation_ids_for(user)
    return (
        Framework.objects.filter(Q(organisation__isnull=True) | Q(organisation_id__in=ids), key=key)
        .filter(current__isnull=False)
        .select_related("current")
        .order_by("organisation_id")  # an organisation's own key never shadows a catalogue: catalogues come first
        .first()
    )


def search_requirements(user: Any, query: str, limit: int = 20, organisation: Any = None) -> list[dict[str, Any]]:
    """Requirements of the current catalogues and the user's organisations' own frameworks matching the query
    (``organisation``: only that one's own frameworks, when the user may see it)."""
    query = (query or "").strip()
    if not query:
        return []
    ids = organisation_ids_for(user)
    if organisation is not None:
        ids = [i for i in ids if i == getattr(organisation, "pk", organisation)]
    rows = (
        Requirement.objects.filter(framework_version__framework__current_id=F("framework_version_id"))
        .filter(
            Q(framework_version__framework__organisation__isnull=True)
            | Q(framework_version__framework__organisation_id__in=ids)
        )
        .filter(Q(code__icontains=query) | Q(title__icontains=query) | Q(text__icontains=query))
        .select_related("framework_version__framework")
        .order_by("framework_version__framework__position", "position")[:limit]
    )
    return [
        {
            "framework": requirement.framework_version.framework.key,
            "framework_name": requirement.framework_version.framework.name,
            "id": requirement.code,
            "title": requirement.title,
            "text": requirement.text,
            "url": reverse("compliance:framework", args=[requirement.framework_version.framework.key])
            + f"#req-{requirement.code}",
        }
        for requirement in rows
    ]
