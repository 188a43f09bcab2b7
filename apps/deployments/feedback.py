"""Feedback on deployments and contested decisions: from signed-in users, and from affected persons on the public page.

Nothing is stored beyond what the person typed (kind, message, the decision reference and, only if they chose to
leave one, a way to reach them): no address, no account, no cookie of ours. The audit log keeps counts and keyed
digests, never the text or the contact (``apps.accounts.services.keyed_digest``: a plain hash of a short reference
could be reversed by trying them all). Triage gives each item a category and a severity, may link it to an alert, and
records the organisation's response; closing ends it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import Role, User
from apps.accounts.selectors import organisation_ids_for, roles_in
from apps.accounts.services import keyed_digest
from apps.audit.services import audit_record
from apps.core.errors import InvalidState, NotFound, PermissionDenied, ValidationFailed
from apps.deployments.models import Alert, Deployment, Feedback
from apps.ethics.notices import notify

BODY_MAX = 4000
REFERENCE_MAX = 100
CONTACT_MAX = 200
RESPONSE_MAX = 4000
ERASED = "[erased at the end of its retention period]"
# Who triages, closes, and reads the contact an affected person left.
TRIAGE_ROLES = frozenset({Role.ADMIN, Role.OWNER, Role.STEWARD})
# Who may leave feedback as a signed-in user (auditors read only).
WRITER_ROLES = frozenset({Role.ADMIN, Role.OWNER, Role.STEWARD, Role.BOARD})


def feedback_reference(feedback: Feedback) -> str:
    """The reference a person is given on the thank-you page and quotes when they write again."""
    return f"F-{str(feedback.id).replace('-', '')[:10].upper()}"


def feedback_visible_to(user: User) -> QuerySet[Feedback]:
    return Feedback.objects.filter(organisation_id__in=organisation_ids_for(user)).select_related(
        "deployment__usecase", "author", "alert", "triaged_by"
    )


def feedback_may(user: User, action: str, feedback: Feedback) -> bool:
    """view: any role of the organisation; triage, close and see_contact: owners, admins and stewards."""
    roles = roles_in(user, feedback.organisation)
    if action == "view":
        return bool(roles)
    if action in ("triage", "close", "see_contact"):
        return bool(roles & TRIAGE_ROLES)
    return False


def _text(value: Any, *, field: str, label: str, maximum: int, required: bool) -> str:
    text = str(value or "").strip()
    if required and not text:
        raise ValidationFailed(f"Write the {label}.", {field: ["required"]})
    if len(text) > maximum:
        raise ValidationFailed(
            f"The {label} is too long ({len(text)} characters; at most {maximum}).", {field: [f"at most {maximum}"]}
        )
    return text


def _kind(kind: Any) -> str:
    if kind not in Feedback.Kind.values:
        raise ValidationFailed("Say whether you contest a decision or give feedback.", {"kind": Feedback.Kind.values})
    return str(kind)


def _digests(feedback: Feedback) -> dict[str, Any]:
    """What the audit log keeps of a submission: sizes and keyed digests, never the words."""
    return {
        "deployment": str(feedback.deployment_id),
        "kind": feedback.kind,
        "source": feedback.source,
        "characters": len(feedback.body),
        "body_digest": keyed_digest(feedback.body),
        "has_decision_reference": bool(feedback.decision_reference),
        "has_contact": bool(feedback.contact),
    }


def _tell_owners(feedback: Feedback) -> None:
    """The deployment's and the use case's owners hear that something waits for triage (not what it says)."""
    deployment = feedback.deployment
    url = reverse("deployments:feedback") + f"?deployment={deployment.id}"
    what = "A decision was contested" if feedback.kind == Feedback.Kind.CONTESTATION else "New feedback"
    notify(
        [deployment.owner, deployment.usecase.owner],
        organisation=deployment.organisation,
        kind="feedback_new",
        message=f"{what} on {deployment} ({feedback_reference(feedback)}): it waits for triage.",
        url=url,
    )


def feedback_submit(*, actor: User, deployment: Deployment, kind: str, body: str) -> Feedback:
    """A signed-in member's feedback on a deployment (auditors read only)."""
    roles = roles_in(actor, deployment.organisation)
    if not roles:
        raise NotFound()
    if not roles & WRITER_ROLES:
        raise PermissionDenied("Auditors read feedback; they do not leave it.")
    kind = _kind(kind)
    body = _text(body, field="body", label="message", maximum=BODY_MAX, required=True)
    with transaction.atomic():
        feedback = Feedback.objects.create(
            organisation_id=deployment.organisation_id,
            deployment=deployment,
            source=Feedback.Source.INTERNAL,
            kind=kind,
            body=body,
            author=actor,
        )
        _tell_owners(feedback)
        audit_record(
            actor=actor,
            organisation=deployment.organisation_id,
            action="feedback.submit",
            target=feedback,
            after=_digests(feedback),
        )
    return feedback


def feedback_submit_public(
    *, deployment: Deployment, kind: str, body: str, decision_reference: str = "", contact: str = ""
) -> Feedback:
    """An affected person's contestation or feedback from the public page: only while the deployment is active.
    Throttling is the page's (per client address and per deployment) and happens before this is called."""
    if deployment.status != Deployment.Status.ACTIVE:
        raise NotFound()
    kind = _kind(kind)
    body = _text(body, field="body", label="message", maximum=BODY_MAX, required=True)
    decision_reference = _text(
        decision_reference,
        field="decision_reference",
        label="decision reference",
        maximum=REFERENCE_MAX,
        required=False,
    )
    contact = _text(contact, field="contact", label="contact", maximum=CONTACT_MAX, required=False)
    with transaction.atomic():
        feedback = Feedback.objects.create(
            organisation_id=deployment.organisation_id,
            deployment=deployment,
            source=Feedback.Source.PUBLIC,
            kind=kind,
            body=body,
            decision_reference=decision_reference,
            contact=contact,
        )
        _tell_owners(feedback)
        audit_record(
            actor=None,
            organisation=deployment.organisation_id,
            action="feedback.submit_public",
            target=feedback,
            after=_digests(feedback),
        )
    return feedback


def feedback_triage(
    *,
    actor: User,
    feedback: Feedback,
    category: str,
    severity: str,
    alert: Alert | None = None,
    response: str = "",
) -> Feedback:
    """Categorise an item, judge its severity, optionally link it to an alert of the same deployment, and record
    the organisation's response. A triaged item may be triaged again until it is closed."""
    if not roles_in(actor, feedback.organisation):
        raise NotFound()
    if not feedback_may(actor, "triage", feedback):
        raise PermissionDenied("Owners, admins and data stewards triage feedback.")
    categories = [c for c in Feedback.Category.values if c != Feedback.Category.UNTRIAGED]
    errors: dict[str, list[str]] = {}
    if category not in categories:
        errors["category"] = [f"one of {', '.join(categories)}"]
    if severity not in Alert.Severity.values:
        errors["severity"] = [f"one of {', '.join(Alert.Severity.values)}"]
    if alert is not None and alert.deployment_id != feedback.deployment_id:
        errors["alert"] = ["an alert of the same deployment"]
    if errors:
        raise ValidationFailed("The triage is not complete.", errors)
    response = _text(response, field="response", label="response", maximum=RESPONSE_MAX, required=False)
    with transaction.atomic():
        locked = Feedback.objects.select_for_update().get(pk=feedback.pk)
        if locked.status == Feedback.Status.CLOSED:
            raise InvalidState("The feedback is closed.")
        before = {"status": locked.status, "category": locked.category, "severity": locked.severity}
        locked.category, locked.severity, locked.alert = category, severity, alert
        locked.response = response or locked.response
        locked.status = Feedback.Status.TRIAGED
        locked.triaged_by, locked.triaged_at = actor, timezone.now()
        locked.save()
        audit_record(
            actor=actor,
            organisation=locked.organisation_id,
            action="feedback.triage",
            target=locked,
            before=before,
            after={
                "status": locked.status,
                "category": category,
                "severity": severity,
                "alert": str(alert.id) if alert else None,
                "response_characters": len(locked.response),
                "response_digest": keyed_digest(locked.response) if locked.response else None,
            },
        )
    return locked


def feedback_close(*, actor: User, feedback: Feedback, response: str = "") -> Feedback:
    """End the item (answered, acted on, or not actionable), with a last response if one is given."""
    if not roles_in(actor, feedback.organisation):
        raise NotFound()
    if not feedback_may(actor, "close", feedback):
        raise PermissionDenied("Owners, admins and data stewards close feedback.")
    response = _text(response, field="response", label="response", maximum=RESPONSE_MAX, required=False)
    with transaction.atomic():
        locked = Feedback.objects.select_for_update().get(pk=feedback.pk)
        if locked.status == Feedback.Status.CLOSED:
            raise InvalidState("The feedback is closed already.")
        before = locked.status
        locked.status = Feedback.Status.CLOSED
        locked.response = response or locked.response
        locked.save(update_fields=["status", "response", "updated_at"])
        audit_record(
            actor=actor,
            organisation=locked.organisation_id,
            action="feedback.close",
            target=locked,
            before={"status": before},
            after={
                "status": locked.status,
                "category": locked.category,
                "response_characters": len(locked.response),
            },
        )
    return locked


def feedback_erase_expired(*, now: Any = None) -> int:
    """Erase what was typed (message, decision reference, contact, response) in feedback closed more than
    ``FEEDBACK_RETENTION_DAYS`` ago, keeping its kind, category, severity, dates and alert link (beat, daily). One
    audit event per organisation with erasures, holding the count and the items' ids."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.FEEDBACK_RETENTION_DAYS)
    # A closed item changes no more (the services refuse it), so its last update is its closure.
    expired = Feedback.objects.filter(status=Feedback.Status.CLOSED, updated_at__lt=cutoff).exclude(body=ERASED)
    erased = 0
    for organisation_id in sorted(set(expired.values_list("organisation_id", flat=True)), key=str):
        with transaction.atomic():
            ids = list(expired.filter(organisation_id=organisation_id).select_for_update().values_list("id", flat=True))
            count = Feedback.objects.filter(id__in=ids).update(
                body=ERASED, decision_reference="", contact="", response="", updated_at=now
            )
            audit_record(
                actor=None,
                organisation=organisation_id,
                action="feedback.erase",
                object_type="deployments.feedback",
                after={
                    "count": count,
                    "feedback": sorted(str(i) for i in ids),
                    "retention_days": settings.FEEDBACK_RETENTION_DAYS,
                },
            )
            erased += count
    return erased
