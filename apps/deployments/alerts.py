"""Alerts on deployments: failing monitors and governance events, their workflow, and who is told.

One unresolved alert per (deployment, monitor) -- the partial unique constraint ``alert_one_unresolved_per_monitor``
holds it in the database. A monitor that keeps failing updates its alert (one more occurrence, the newest window and
result) and tells nobody again unless its severity rises; a monitor that recovers is noted on its alert, never
resolved by itself: a person resolves it, saying how. Governance checks (approval no longer in force, waivers expiring
or expired) use the same alerts, so they follow the same rules and are idempotent when run every hour.

People told, in the portal (a notice) and by e-mail after commit: the deployment's owner, the use case's owner, the
organisation's admins, the alert's assignee, and the board members who voted to approve the deployed model. The
organisation's webhook, when set, receives each alert opened, escalated or resolved (a job, signed with HMAC; see
``apps.deployments.webhooks``). Notices, e-mails and webhook payloads name monitors and deployments, never a value
about a person.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from datetime import date
from typing import Any
from urllib.parse import urlsplit

from django.db import transaction
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import Membership, Organisation, Role, User
from apps.accounts.selectors import organisation_ids_for, organisation_members, roles_in
from apps.audit.services import audit_record
from apps.core.errors import InvalidState, NotFound, PermissionDenied, ValidationFailed
from apps.core.keys import wrap_secret
from apps.deployments.models import Alert, AlertComment, AlertWebhook, Deployment, MonitoringWindow
from apps.deployments.selectors import approval_blockers
from apps.deployments.webhooks import check_url
from apps.ethics import rules
from apps.ethics.models import ReviewRequest, Vote, Waiver
from apps.ethics.notices import notify
from apps.jobs.models import Job
from apps.jobs.services import job_create

# A monitor's result status -> the alert's severity ("pass" and "insufficient" never open one).
SEVERITY_BY_STATUS = {"fail": Alert.Severity.CRITICAL, "warn": Alert.Severity.WARNING}
SEVERITY_RANK = {Alert.Severity.INFO: 0, Alert.Severity.WARNING: 1, Alert.Severity.CRITICAL: 2}
# Who works an alert (acknowledge, assign, resolve, comment); approving board members may comment too.
ACT_ROLES = frozenset({Role.ADMIN, Role.OWNER, Role.STEWARD})
APPROVING_CHOICES = (rules.APPROVE, rules.APPROVE_WITH_CONDITIONS)
WAIVER_WARNING_DAYS = 14
GOVERNANCE = "governance"
APPROVAL_MONITOR = "governance:approval"
WAIVER_MONITOR = "governance:waiver:"
HISTORY_KEPT = 12
RESOLUTION_MAX = 500
COMMENT_MAX = 4000

FAMILY_LABELS = {
    "data_drift": "Data drift",
    "prediction_drift": "Prediction drift",
    "data_quality": "Data quality",
    "performance": "Performance",
    "fairness": "Fairness drift",
    "privacy": "Privacy compliance",
    GOVERNANCE: "Governance",
}


# ------------------------------------------------------------------------------------------------------- reading


def alert_url(alert: Alert) -> str:
    return reverse("deployments:alert", kwargs={"alert_id": alert.id})


def deployment_url(deployment: Deployment) -> str:
    return reverse("deployments:detail", kwargs={"deployment_id": deployment.id})


def approvers_of(model_version: Any) -> list[User]:
    """Board members who voted to approve ``model_version`` for deployment in a review that approved it, and who are
    still on the organisation's board: they see alerts on the models they approved."""
    voters = Vote.objects.filter(
        review__model_version=model_version,
        review__kind=ReviewRequest.Kind.DEPLOYMENT,
        review__status=ReviewRequest.Status.DECIDED,
        review__decision__outcome__in=(rules.APPROVED, rules.APPROVED_WITH_CONDITIONS),
        choice__in=APPROVING_CHOICES,
    ).values("voter_id")
    on_board = Membership.objects.filter(organisation_id=model_version.organisation_id, role=Role.BOARD).values(
        "user_id"
    )
    return list(User.objects.filter(id__in=voters, is_active=True).filter(id__in=on_board).order_by("username"))


def alerts_visible_to(user: User) -> QuerySet[Alert]:
    """Alerts of the organisations ``user`` belongs to or audits (others' alerts answer 404)."""
    return Alert.objects.filter(organisation_id__in=organisation_ids_for(user)).select_related(
        "deployment__usecase", "deployment__model_version", "assignee", "window"
    )


def alerts_on_models_approved_by(user: User, organisation: Organisation) -> QuerySet[Alert]:
    """Unresolved alerts on active deployments of models ``user`` voted to approve (the board member's card)."""
    approved = Vote.objects.filter(
        voter=user,
        review__organisation=organisation,
        review__kind=ReviewRequest.Kind.DEPLOYMENT,
        review__status=ReviewRequest.Status.DECIDED,
        review__decision__outcome__in=(rules.APPROVED, rules.APPROVED_WITH_CONDITIONS),
        choice__in=APPROVING_CHOICES,
    ).values("review__model_version_id")
    return (
        Alert.objects.filter(organisation=organisation, deployment__model_version_id__in=approved)
        .exclude(status=Alert.Status.RESOLVED)
        .select_related("deployment__usecase", "deployment__model_version")
    )


def alert_may(user: User, action: str, alert: Alert) -> bool:
    """Whether ``user`` may ``action`` (view, act, comment) ``alert``: auditors read; owners, admins and stewards act;
    board members who approved the model comment."""
    roles = roles_in(user, alert.organisation)
    if action == "view":
        return bool(roles)
    if roles & ACT_ROLES:
        return action in ("act", "comment")
    if action == "comment" and Role.BOARD in roles:
        return any(member.id == user.id for member in approvers_of(alert.deployment.model_version))
    return False


def _require(user: User, action: str, alert: Alert, message: str) -> None:
    if not roles_in(user, alert.organisation):
        raise NotFound()
    if not alert_may(user, action, alert):
        raise PermissionDenied(message)


# --------------------------------------------------------------------------------------------------- notifications


def _people_told(deployment: Deployment, assignee_ids: Iterable[Any]) -> list[User]:
    """Everyone told about alerts of ``deployment`` assigned to ``assignee_ids``: still members of its organisation,
    each once (one set of queries however many alerts a sync changed)."""
    people: list[User | None] = [deployment.owner, deployment.usecase.owner]
    people += list(User.objects.filter(id__in=[i for i in assignee_ids if i is not None]))
    people += list(organisation_members(deployment.organisation, Role.ADMIN))
    people += approvers_of(deployment.model_version)
    members = set(
        Membership.objects.filter(organisation_id=deployment.organisation_id).values_list("user_id", flat=True)
    )
    unique = {p.id: p for p in people if p is not None and p.is_active and p.id in members}
    return list(unique.values())


def recipients_of(alert: Alert) -> list[User]:
    """Everyone told about an alert: still members of its organisation, each once."""
    return _people_told(alert.deployment, [alert.assignee_id])


def _announce(deployment: Deployment, opened: list[Alert], escalated: list[Alert]) -> None:
    """One notice per person per call, however many alerts it opened or escalated (no storm of notices)."""
    changed = opened + escalated
    if not changed:
        return
    parts = []
    if opened:
        parts.append(f"{len(opened)} new alert{'s' if len(opened) != 1 else ''}")
    if escalated:
        parts.append(f"{len(escalated)} escalated")
    titles = "; ".join(f"{a.title} ({a.get_severity_display().lower()})" for a in changed[:3])
    more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
    message = f"{deployment}: {' and '.join(parts)}: {titles}{more}."
    url = alert_url(changed[0]) if len(changed) == 1 else deployment_url(deployment)
    notify(
        _people_told(deployment, {alert.assignee_id for alert in changed}),
        organisation=deployment.organisation,
        kind="alert_escalated" if escalated and not opened else "alert_opened",
        message=message,
        url=url,
    )


def _queue_webhooks(organisation: Organisation, alerts: list[Alert]) -> list[Job]:
    """Queue the signed delivery of each alert's current state to the organisation's webhook, if one is set."""
    if not alerts or not AlertWebhook.objects.filter(organisation=organisation, active=True).exists():
        return []
    return [
        job_create(
            actor=None,
            organisation=organisation,
            kind="alert_webhook",
            spec={"alert_id": str(alert.id)},
            target=alert,
        )
        for alert in alerts
    ]


# ------------------------------------------------------------------------------------------------------ upserting


def _title(monitor: str, deployment: Deployment) -> str:
    family, _, rest = monitor.partition(":")
    subject = rest.replace(":", " · ").replace("_", " ")
    label = FAMILY_LABELS.get(family, family.replace("_", " ").capitalize())
    return f"{label}: {subject} ({deployment.environment})"[:300] if subject else f"{label} ({deployment.environment})"


def _window_ref(window: MonitoringWindow | None) -> dict[str, Any] | None:
    if window is None:
        return None
    return {"id": str(window.id), "starts_at": window.starts_at.isoformat(), "ends_at": window.ends_at.isoformat()}


def _result_detail(result: dict[str, Any]) -> dict[str, Any]:
    """What an alert keeps of a monitor result: aggregates and thresholds only (the engine gives no row values)."""
    keys = ("status", "severity", "family", "subject", "value", "threshold", "interval", "rows", "message")
    return {key: result.get(key) for key in keys if key in result}


def _upsert(
    *,
    deployment: Deployment,
    unresolved: dict[str, Alert],
    monitor: str,
    family: str,
    severity: str,
    title: str,
    detail: dict[str, Any],
    window: MonitoringWindow | None,
    now: Any,
    counts_occurrence: bool,
) -> tuple[Alert, str]:
    """Open the monitor's alert, or update the unresolved one (inside the caller's transaction, with the deployment
    row locked). Returns the alert and what happened: opened, escalated, updated or unchanged."""
    alert = unresolved.get(monitor)
    if alert is None:
        alert = Alert.objects.create(
            organisation_id=deployment.organisation_id,
            deployment=deployment,
            monitor=monitor[:200],
            family=family[:40],
            severity=severity,
            title=title,
            detail={**detail, "history": [detail["last"]] if detail.get("last") else []},
            window=window,
            last_notified_at=now,
        )
        unresolved[monitor] = alert
        return alert, "opened"
    escalates = SEVERITY_RANK[severity] > SEVERITY_RANK[Alert.Severity(alert.severity)]
    new_window = window is not None and alert.window_id != window.id
    # A finding noted as cleared (or a monitor noted as recovered) that holds again is no longer cleared.
    back_again = bool(alert.detail.get("cleared_at") or alert.detail.get("recovered"))
    if not (escalates or (counts_occurrence and new_window) or back_again):
        return alert, "unchanged"
    history = list(alert.detail.get("history") or [])
    if detail.get("last"):
        history.append(detail["last"])
    alert.detail = {**alert.detail, **detail, "history": history[-HISTORY_KEPT:], "recovered": None}
    alert.title = title
    fields = ["detail", "title", "updated_at"]
    if counts_occurrence and new_window:
        alert.occurrences += 1
        alert.window = window
        fields += ["occurrences", "window"]
    if escalates:
        alert.severity = severity
        alert.escalated_at = alert.last_notified_at = now
        fields += ["severity", "escalated_at", "last_notified_at"]
    alert.save(update_fields=fields)
    return alert, "escalated" if escalates else "updated"


def _lock(deployment: Deployment) -> dict[str, Alert]:
    """Lock the deployment row (syncs and governance checks of one deployment queue here, so two never both open the
    same monitor's alert) and return its unresolved alerts by monitor, locked too."""
    Deployment.objects.select_for_update().filter(pk=deployment.pk).values_list("pk", flat=True).first()
    return {
        a.monitor: a
        for a in Alert.objects.select_for_update().filter(deployment=deployment).exclude(status=Alert.Status.RESOLVED)
    }


def _worst_per_monitor(results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    order = {"fail": 3, "warn": 2, "pass": 1, "insufficient": 0}
    worst: dict[str, dict[str, Any]] = {}
    for result in results or []:
        monitor = str(result.get("monitor") or "").strip()
        if not monitor:
            continue
        if monitor not in worst or order.get(result.get("status"), 0) > order.get(worst[monitor].get("status"), 0):
            worst[monitor] = result
    return worst


def alerts_sync(*, deployment: Deployment, window: MonitoringWindow, results: list[dict[str, Any]]) -> list[Alert]:
    """Fold one evaluated window's monitor results into the deployment's alerts and return those opened or updated.

    "fail" (critical) and "warn" (warning) open the monitor's alert, or update its unresolved one: one more
    occurrence when the window is new (syncing the same window again counts it once), the newest result, and a
    notice only when the severity rises (escalation). "pass" and "insufficient" open nothing and resolve nothing: a
    recovery is noted on the alert for the person who resolves it. One audit event per call, with counts and monitor
    names only."""
    now = timezone.now()
    by_monitor = _worst_per_monitor(results)
    opened: list[Alert] = []
    escalated: list[Alert] = []
    updated: list[Alert] = []
    recovered: list[Alert] = []
    with transaction.atomic():
        unresolved = _lock(deployment)
        deployment = Deployment.objects.select_related("usecase__owner", "owner", "model_version", "organisation").get(
            pk=deployment.pk
        )
        for monitor, result in sorted(by_monitor.items()):
            status = result.get("status")
            severity = SEVERITY_BY_STATUS.get(status)
            if severity is None:
                alert = unresolved.get(monitor)
                if alert is not None and status == "pass":
                    alert.detail = {
                        **alert.detail,
                        "recovered": {"window": _window_ref(window), "status": status, "noted_at": now.isoformat()},
                    }
                    alert.save(update_fields=["detail", "updated_at"])
                    recovered.append(alert)
                continue
            last = {**_result_detail(result), "window": _window_ref(window)}
            alert, change = _upsert(
                deployment=deployment,
                unresolved=unresolved,
                monitor=monitor,
                family=str(result.get("family") or monitor.split(":")[0]),
                severity=severity,
                title=_title(monitor, deployment),
                detail={"result": _result_detail(result), "last": last, "window": _window_ref(window)},
                window=window,
                now=now,
                counts_occurrence=True,
            )
            {"opened": opened, "escalated": escalated, "updated": updated}.get(change, []).append(alert)
        jobs = _queue_webhooks(deployment.organisation, opened + escalated)
        _announce(deployment, opened, escalated)
        audit_record(
            actor=None,
            organisation=deployment.organisation_id,
            action="alert.sync",
            target=deployment,
            after={
                "window": str(window.id) if window else None,
                "results": len(by_monitor),
                "opened": len(opened),
                "updated": len(updated),
                "escalated": len(escalated),
                "recovered": len(recovered),
                "monitors": {
                    "opened": [a.monitor for a in opened],
                    "updated": [a.monitor for a in updated],
                    "escalated": [a.monitor for a in escalated],
                    "recovered": [a.monitor for a in recovered],
                },
                "alerts": [str(a.id) for a in opened + updated + escalated],
                "webhook_jobs": [str(job.id) for job in jobs],
            },
        )
    return opened + escalated + updated


# ------------------------------------------------------------------------------------------------------ governance


def _relied_waivers(deployment: Deployment) -> list[Waiver]:
    ids: set[str] = set()
    for item in deployment.waivers or []:
        ids.add(str(item.get("id") if isinstance(item, dict) else item))
    decision = getattr(deployment.review, "decision", None)
    for item in (decision.waivers if decision else None) or []:
        if isinstance(item, dict) and item.get("id"):
            ids.add(str(item["id"]))
    return list(Waiver.objects.filter(id__in=ids, status=Waiver.Status.GRANTED).order_by("expires_on"))


def _governance_findings(deployment: Deployment, today: date) -> list[dict[str, Any]]:
    findings = []
    blockers = approval_blockers(deployment.model_version, today=today)
    if blockers:
        findings.append(
            {
                "monitor": APPROVAL_MONITOR,
                "severity": Alert.Severity.CRITICAL,
                "title": f"Approval no longer in force ({deployment.environment})",
                "detail": {"blockers": blockers[:20], "review": str(deployment.review_id)},
            }
        )
    for waiver in _relied_waivers(deployment):
        days = (waiver.expires_on - today).days
        if days < 0:
            severity, words = Alert.Severity.CRITICAL, f"expired on {waiver.expires_on:%d %b %Y}"
        elif days <= WAIVER_WARNING_DAYS:
            severity, words = Alert.Severity.WARNING, f"expires on {waiver.expires_on:%d %b %Y} ({days} days)"
        else:
            continue
        findings.append(
            {
                "monitor": f"{WAIVER_MONITOR}{waiver.id}",
                "severity": severity,
                "title": f"Waiver relied on {words} ({deployment.environment})",
                "detail": {
                    "waiver": str(waiver.id),
                    "expires_on": waiver.expires_on.isoformat(),
                    "waived": [item.get("key") for item in waiver.waived or []],
                },
            }
        )
    return findings


def alerts_check_governance(*, now: Any = None) -> list[Alert]:
    """The hourly governance round over every active deployment: a critical alert when its approval is no longer in
    force (revoked, superseded, a waiver it needed lapsed), a warning when a waiver it relies on expires within
    14 days, critical once expired. Idempotent: an unresolved alert for the same finding is left alone unless its
    severity rises, so an hourly run tells people once. One audit event per deployment whose alerts changed."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    changed_alerts: list[Alert] = []
    for deployment in (
        Deployment.objects.filter(status=Deployment.Status.ACTIVE).select_related("review").order_by("created_at")
    ):
        findings = _governance_findings(deployment, today)
        with transaction.atomic():
            unresolved = _lock(deployment)
            locked = (
                Deployment.objects.select_related("usecase__owner", "owner", "model_version", "organisation")
                .filter(pk=deployment.pk, status=Deployment.Status.ACTIVE)
                .first()
            )
            if locked is None:
                continue  # ended while we looked
            opened: list[Alert] = []
            escalated: list[Alert] = []
            cleared: list[Alert] = []
            found = {finding["monitor"] for finding in findings}
            for finding in findings:
                alert, change = _upsert(
                    deployment=locked,
                    unresolved=unresolved,
                    monitor=finding["monitor"],
                    family=GOVERNANCE,
                    severity=finding["severity"],
                    title=finding["title"][:300],
                    detail={**finding["detail"], "checked_at": now.isoformat(), "cleared_at": None},
                    window=None,
                    now=now,
                    counts_occurrence=False,
                )
                {"opened": opened, "escalated": escalated}.get(change, []).append(alert)
            for monitor, alert in unresolved.items():
                if monitor.startswith(f"{GOVERNANCE}:") and monitor not in found and not alert.detail.get("cleared_at"):
                    # The finding no longer holds (approval renewed, waiver extended): noted, left to a person.
                    alert.detail = {**alert.detail, "cleared_at": now.isoformat()}
                    alert.save(update_fields=["detail", "updated_at"])
                    cleared.append(alert)
            if not (opened or escalated or cleared):
                continue
            jobs = _queue_webhooks(locked.organisation, opened + escalated)
            _announce(locked, opened, escalated)
            audit_record(
                actor=None,
                organisation=locked.organisation_id,
                action="alert.governance",
                target=locked,
                after={
                    "opened": [a.monitor for a in opened],
                    "escalated": [a.monitor for a in escalated],
                    "cleared": [a.monitor for a in cleared],
                    "alerts": [str(a.id) for a in opened + escalated + cleared],
                    "webhook_jobs": [str(job.id) for job in jobs],
                },
            )
            changed_alerts += opened + escalated
    return changed_alerts


# -------------------------------------------------------------------------------------------------------- workflow


def _locked_alert(alert: Alert) -> Alert:
    return Alert.objects.select_for_update().select_related("deployment", "organisation").get(pk=alert.pk)


def alert_acknowledge(*, actor: User, alert: Alert) -> Alert:
    """Someone is looking at it: open -> acknowledged."""
    _require(actor, "act", alert, "Owners, admins and data stewards acknowledge alerts.")
    with transaction.atomic():
        locked = _locked_alert(alert)
        if locked.status != Alert.Status.OPEN:
            raise InvalidState(f"The alert is {locked.get_status_display().lower()} already.")
        locked.status = Alert.Status.ACKNOWLEDGED
        locked.acknowledged_by, locked.acknowledged_at = actor, timezone.now()
        locked.save(update_fields=["status", "acknowledged_by", "acknowledged_at", "updated_at"])
        audit_record(
            actor=actor,
            organisation=locked.organisation_id,
            action="alert.acknowledge",
            target=locked,
            before={"status": Alert.Status.OPEN},
            after={"status": locked.status, "monitor": locked.monitor, "severity": locked.severity},
        )
    return locked


def alert_assign(*, actor: User, alert: Alert, assignee: User | None) -> Alert:
    """Give the alert to a member who can work it (owner, admin or steward), or take it back (None). The assignee is
    told."""
    _require(actor, "act", alert, "Owners, admins and data stewards assign alerts.")
    if assignee is not None and not (roles_in(assignee, alert.organisation) & ACT_ROLES):
        raise ValidationFailed(
            "Assign the alert to an owner, admin or data steward of the organisation.",
            {"assignee": ["not someone who can work this alert"]},
        )
    with transaction.atomic():
        locked = _locked_alert(alert)
        if locked.status == Alert.Status.RESOLVED:
            raise InvalidState("The alert is resolved.")
        before = str(locked.assignee_id) if locked.assignee_id else None
        locked.assignee = assignee
        locked.save(update_fields=["assignee", "updated_at"])
        if assignee is not None and assignee.id != actor.id:
            notify(
                [assignee],
                organisation=locked.organisation,
                kind="alert_assigned",
                message=f"{actor.display_name} assigned you an alert on {locked.deployment}: {locked.title}.",
                url=alert_url(locked),
            )
        audit_record(
            actor=actor,
            organisation=locked.organisation_id,
            action="alert.assign",
            target=locked,
            before={"assignee": before},
            after={"assignee": str(assignee.id) if assignee else None},
        )
    return locked


def alert_comment(*, actor: User, alert: Alert, body: str) -> AlertComment:
    """A comment on the alert (owners, admins, stewards, and board members who approved the model)."""
    _require(actor, "comment", alert, "Auditors read alerts; board members comment on alerts of models they approved.")
    body = (body or "").strip()
    if not body:
        raise ValidationFailed("Write a comment.", {"body": ["empty"]})
    if len(body) > COMMENT_MAX:
        raise ValidationFailed(f"A comment holds at most {COMMENT_MAX} characters.", {"body": ["too long"]})
    with transaction.atomic():
        comment = AlertComment.objects.create(alert=alert, author=actor, body=body)
        audit_record(
            actor=actor,
            organisation=alert.organisation_id,
            action="alert.comment",
            target=comment,
            after={
                "alert": str(alert.id),
                "characters": len(body),
                "sha256": hashlib.sha256(body.encode()).hexdigest(),
            },
        )
    return comment


def alert_resolve(*, actor: User, alert: Alert, resolution: str) -> Alert:
    """A person closes the alert, saying what was done (a retraining, a data fix, a justified acceptance). The
    webhook hears of it; the next failure of the monitor opens a new alert."""
    _require(actor, "act", alert, "Owners, admins and data stewards resolve alerts.")
    resolution = (resolution or "").strip()
    if not resolution:
        raise ValidationFailed("Say how the alert was resolved.", {"resolution": ["required"]})
    if len(resolution) > RESOLUTION_MAX:
        raise ValidationFailed(f"A resolution holds at most {RESOLUTION_MAX} characters.", {"resolution": ["too long"]})
    with transaction.atomic():
        locked = _locked_alert(alert)
        if locked.status == Alert.Status.RESOLVED:
            raise InvalidState("The alert is resolved already.")
        before = locked.status
        locked.status = Alert.Status.RESOLVED
        locked.resolved_by, locked.resolved_at, locked.resolution = actor, timezone.now(), resolution
        locked.save(update_fields=["status", "resolved_by", "resolved_at", "resolution", "updated_at"])
        jobs = _queue_webhooks(locked.organisation, [locked])
        audit_record(
            actor=actor,
            organisation=locked.organisation_id,
            action="alert.resolve",
            target=locked,
            before={"status": before},
            after={
                "status": locked.status,
                "monitor": locked.monitor,
                "occurrences": locked.occurrences,
                "resolution_sha256": hashlib.sha256(resolution.encode()).hexdigest(),
                "webhook_job": str(jobs[0].id) if jobs else None,
            },
        )
    return locked


# --------------------------------------------------------------------------------------------------------- webhook


def _require_admin(actor: User, organisation: Organisation) -> None:
    roles = roles_in(actor, organisation)
    if not roles:
        raise NotFound()
    if Role.ADMIN not in roles:
        raise PermissionDenied("Only org admins set the alert webhook.")


def alert_webhook_set(*, actor: User, organisation: Organisation, url: str) -> tuple[AlertWebhook, str]:
    """Set (or replace) the organisation's alert webhook and return it with its signing secret, shown this once.

    The address must be https and resolve only to public addresses (no private, loopback, link-local or metadata
    address); it is checked again at every delivery. Setting it again makes a new secret."""
    _require_admin(actor, organisation)
    url = (url or "").strip()
    check_url(url)
    secret = secrets.token_urlsafe(32)
    with transaction.atomic():
        existing = AlertWebhook.objects.select_for_update().filter(organisation=organisation).first()
        webhook = existing or AlertWebhook(organisation=organisation)
        webhook.url = url
        webhook.wrapped_secret = wrap_secret(secret.encode()).encode("ascii")
        webhook.active = True
        webhook.last_delivery_status = ""
        webhook.save()
        audit_record(
            actor=actor,
            organisation=organisation,
            action="alert_webhook.set",
            target=webhook,
            # The path may itself be a credential (many receivers put a token in it): only the host and a digest.
            after={
                "host": urlsplit(url).hostname,
                "url_sha256": hashlib.sha256(url.encode()).hexdigest(),
                "replaced": existing is not None,
            },
        )
    return webhook, secret


def alert_webhook_remove(*, actor: User, organisation: Organisation) -> None:
    """Stop sending alerts to the organisation's webhook (its secret is destroyed with it)."""
    _require_admin(actor, organisation)
    with transaction.atomic():
        webhook = AlertWebhook.objects.select_for_update().filter(organisation=organisation).first()
        if webhook is None:
            raise InvalidState("No alert webhook is set.")
        host = urlsplit(webhook.url).hostname
        webhook_id = str(webhook.id)
        webhook.delete()
        audit_record(
            actor=actor,
            organisation=organisation,
            action="alert_webhook.remove",
            object_type="deployments.alertwebhook",
            object_id=webhook_id,
            after={"host": host},
        )
