"""Writes: an organisation's own frameworks, evidence linked by hand, confirmations. One audit event each, carrying
digests and counts only (never the evidence's label, address or file name)."""

from __future__ import annotations

import hashlib
from datetime import date
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.audit.services import audit_record
from apps.compliance import loader
from apps.compliance.models import Confirmation, EvidenceLink, Framework, FrameworkAssessment
from apps.compliance.permissions import can
from apps.compliance.selectors import NOT_APPLICABLE, framework_for, requirement_status
from apps.core.errors import InvalidState, NotFound, PermissionDenied, ValidationFailed

MAX_EVIDENCE_BYTES = 20 * 1024 * 1024


def _require(user: Any, action: str, organisation: Any) -> None:
    if not can(user, "view", organisation):
        raise NotFound()
    if not can(user, action, organisation):
        raise PermissionDenied(
            "Org admins load frameworks."
            if action == "manage_frameworks"
            else "Org admins, use-case owners and privacy officers link evidence and confirm requirements."
        )


def framework_upload(
    *,
    actor: Any,
    organisation: Any,
    data: bytes,
    filename: str,
    key: str = "",
    name: str = "",
    version: str = "",
    kind: str = Framework.Kind.CUSTOM,
) -> Any:
    """Load an organisation's own framework or internal policy from a YAML catalogue or a CSV of requirements.
    All or nothing: a bad file raises ``ValidationFailed`` with every problem and stores nothing."""
    _require(actor, "manage_frameworks", organisation)
    if kind not in (Framework.Kind.CUSTOM, Framework.Kind.POLICY):
        raise ValidationFailed("Choose an own framework or an internal policy.", {"kind": ["custom or policy"]})
    if len(data) > MAX_EVIDENCE_BYTES:
        raise ValidationFailed("The file is too large.", {"file": ["at most 20 MB"]})
    parsed = loader.parse_upload(data, filename, key=key, name=name, version=version)
    framework_key = parsed["framework"]["id"]
    if (
        framework_key in loader.CATALOGUE_ORDER
        or Framework.objects.filter(organisation__isnull=True, key=framework_key).exists()
    ):
        raise ValidationFailed("That id belongs to a published framework; choose another.", {"key": [framework_key]})
    sha256 = hashlib.sha256(data).hexdigest()
    with transaction.atomic():
        version_row, created = loader.store_catalogue(parsed, sha256, organisation=organisation, kind=kind, actor=actor)
        if not created:
            raise InvalidState("This exact file is already loaded.", {"sha256": sha256})
        audit_record(
            actor=actor,
            organisation=organisation,
            action="framework.upload",
            target=version_row.framework,
            after={
                "key": framework_key,
                "kind": kind,
                "version": version_row.version,
                "sha256": sha256,
                "requirements": len(parsed["requirements"]),
            },
        )
    return version_row


def _applicable(usecase: Any, framework_key: str, code: str) -> Any:
    status = requirement_status(usecase, framework_key, code)
    if status is None:
        raise NotFound("No such requirement in this framework.")
    if status.status == NOT_APPLICABLE:
        raise InvalidState("This requirement does not apply to the use case.", {"reason": status.reason})
    return status


def evidence_link_add(
    *,
    actor: Any,
    usecase: Any,
    framework_key: str,
    requirement_code: str,
    label: str,
    url: str = "",
    file_name: str = "",
    file_bytes: bytes | None = None,
    expires_on: date | None = None,
) -> EvidenceLink:
    """Attach evidence Attest does not hold: a link (its address hashed) or an uploaded file (its sha256 kept, so a
    changed file is a different piece of evidence)."""
    _require(actor, "act", usecase.organisation)
    _applicable(usecase, framework_key, requirement_code)
    errors: dict[str, list[str]] = {}
    label = (label or "").strip()
    if not label:
        errors["label"] = ["Say what the evidence is."]
    if bool(url) == (file_bytes is not None):
        errors["evidence"] = ["Give either a link or a file."]
    if url and not url.startswith(("https://", "http://")):
        errors["url"] = ["An http(s) address."]
    if file_bytes is not None and len(file_bytes) > MAX_EVIDENCE_BYTES:
        errors["file"] = ["At most 20 MB."]
    if expires_on and expires_on <= timezone.localdate():
        errors["expires_on"] = ["An expiry date in the future."]
    if errors:
        raise ValidationFailed("The evidence was not linked.", errors)
    sha256 = hashlib.sha256(file_bytes if file_bytes is not None else url.encode()).hexdigest()
    with transaction.atomic():
        link = EvidenceLink.objects.create(
            organisation=usecase.organisation,
            usecase=usecase,
            framework_key=framework_key,
            requirement_code=requirement_code,
            label=label[:200],
            url=url,
            filename=(file_name or "")[:200],
            sha256=sha256,
            expires_on=expires_on,
            added_by=actor,
        )
        audit_record(
            actor=actor,
            organisation=usecase.organisation,
            action="compliance_evidence.add",
            target=link,
            after={
                "usecase": str(usecase.id),
                "framework": framework_key,
                "requirement": requirement_code,
                "source": "link" if url else "upload",
                "sha256": sha256,
                "expires_on": expires_on.isoformat() if expires_on else None,
            },
        )
    return link


def evidence_link_remove(*, actor: Any, link: EvidenceLink) -> EvidenceLink:
    _require(actor, "act", link.organisation)
    if link.removed_at is not None:
        raise InvalidState("The evidence was already removed.")
    with transaction.atomic():
        link.removed_at = timezone.now()
        link.save(update_fields=["removed_at", "updated_at"])
        audit_record(
            actor=actor,
            organisation=link.organisation,
            action="compliance_evidence.remove",
            target=link,
            after={"framework": link.framework_key, "requirement": link.requirement_code, "sha256": link.sha256},
        )
    return link


def requirement_confirm(*, actor: Any, usecase: Any, framework_key: str, requirement_code: str) -> Confirmation:
    """A person confirms that the evidence as it is now meets the requirement; the confirmation is bound to the
    digest of that evidence, so any change or expiry reopens the requirement."""
    _require(actor, "act", usecase.organisation)
    status = _applicable(usecase, framework_key, requirement_code)
    if not status.evidence:
        raise InvalidState("Link evidence before confirming the requirement.", {"requirement": [requirement_code]})
    if (
        status.status == "met"
        and not status.via
        and status.confirmation is not None
        and status.confirmation.evidence_digest == status.evidence_digest
    ):
        raise InvalidState("The requirement is already confirmed on this evidence.")
    expiries = [item.expires_on for item in status.evidence if item.expires_on]
    with transaction.atomic():
        confirmation = Confirmation.objects.create(
            organisation=usecase.organisation,
            usecase=usecase,
            framework_key=framework_key,
            requirement_code=requirement_code,
            evidence_digest=status.evidence_digest,
            evidence_hashes=sorted(item.sha256 for item in status.evidence),
            earliest_expiry=min(expiries) if expiries else None,
            confirmed_by=actor,
        )
        audit_record(
            actor=actor,
            organisation=usecase.organisation,
            action="compliance_requirement.confirm",
            target=confirmation,
            after={
                "usecase": str(usecase.id),
                "framework": framework_key,
                "requirement": requirement_code,
                "evidence_digest": confirmation.evidence_digest,
                "evidence_count": len(status.evidence),
            },
        )
    return confirmation


def compliance_statement_request(*, actor: Any, usecase: Any, framework_key: str) -> Any:
    """Queue the signed compliance statement of a use case against a framework. Its subject, the use case's
    assessment against the framework, is made the first time without an event of its own: the one audit event is
    ``report.request``, which names that subject."""
    from apps.reports.services import report_request

    if not can(actor, "view", usecase.organisation):
        raise NotFound()
    framework = framework_for(actor, framework_key)
    if framework is None or framework.organisation_id not in (None, usecase.organisation_id):
        raise NotFound("No such framework.")
    assessment, _created = FrameworkAssessment.objects.get_or_create(
        usecase=usecase, framework=framework, defaults={"organisation": usecase.organisation}
    )
    return report_request(actor=actor, kind="compliance", subject=assessment)
