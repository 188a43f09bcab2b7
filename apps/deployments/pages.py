"""What the deployment pages show, gathered in a fixed number of queries whatever the number of windows, alerts or
deployments (reads only; the writes are the services').

The inventory lists the models in production with their open alerts, last evaluated window and the waivers they rely
on that expire soon; the deployment page adds the approval, the plan, the windows with their figures, the alerts,
feedback and retraining requests.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps.deployments.figures import Figure, first_window, monitoring_figures, worst_status
from apps.deployments.models import Alert, Deployment, Feedback, MonitoringWindow, RetrainingRequest
from apps.ethics.models import Waiver

UNRESOLVED = (Alert.Status.OPEN, Alert.Status.ACKNOWLEDGED)
WAIVER_NOTICE_DAYS = 30
# How many of the newest windows the page charts; the report covers any period in full.
PAGE_WINDOWS = 52

INVENTORY_SORTS = {
    "usecase": ("usecase__reference", "environment"),
    "environment": ("environment", "usecase__reference"),
    "model": ("model_version__number", "usecase__reference"),
    "deployed": ("deployed_on", "usecase__reference"),
    "alerts": ("open_critical", "open_warning", "open_alerts", "usecase__reference"),
    "window": ("last_window_ends", "usecase__reference"),
}
ALERT_STATES = {"open": "Any open alert", "critical": "Open critical alert", "none": "No open alert"}


def _open_count(severity: str | None = None) -> Coalesce:
    alerts = Alert.objects.filter(deployment=OuterRef("pk"), status__in=UNRESOLVED)
    if severity:
        alerts = alerts.filter(severity=severity)
    counted = alerts.order_by().values("deployment").annotate(n=Count("id")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def _last_evaluated(field: str) -> Subquery:
    windows = MonitoringWindow.objects.filter(deployment=OuterRef("pk"), status=MonitoringWindow.Status.EVALUATED)
    return Subquery(windows.order_by("-starts_at").values(field)[:1])


def with_monitoring_state(deployments: QuerySet[Deployment]) -> QuerySet[Deployment]:
    """Deployments annotated with their open alerts by severity and their newest evaluated window (subqueries: one
    query for any number of alerts and windows)."""
    return deployments.select_related("usecase", "model_version", "owner").annotate(
        open_alerts=_open_count(),
        open_critical=_open_count(Alert.Severity.CRITICAL),
        open_warning=_open_count(Alert.Severity.WARNING),
        open_info=_open_count(Alert.Severity.INFO),
        last_window_id=_last_evaluated("id"),
        last_window_ends=_last_evaluated("ends_at"),
    )


def filter_inventory(deployments: QuerySet[Deployment], *, environment: str = "", alert_state: str = "") -> QuerySet:
    if environment:
        deployments = deployments.filter(environment=environment)
    if alert_state == "open":
        deployments = deployments.filter(open_alerts__gt=0)
    elif alert_state == "critical":
        deployments = deployments.filter(open_critical__gt=0)
    elif alert_state == "none":
        deployments = deployments.filter(open_alerts=0)
    return deployments


def sort_inventory(deployments: QuerySet[Deployment], sort: str) -> tuple[QuerySet[Deployment], str]:
    """Order by a column (``-name`` for descending); an unknown column sorts by use case."""
    key = sort.lstrip("-")
    if key not in INVENTORY_SORTS:
        key, sort = "usecase", "usecase"
    fields = INVENTORY_SORTS[key]
    if sort.startswith("-"):
        return deployments.order_by(*(f"-{f}" for f in fields)), sort
    return deployments.order_by(*fields), sort


@dataclass
class WaiverNote:
    id: Any
    expires_on: date
    expired: bool
    waived: list[dict[str, Any]]


def waivers_relied_on(deployments: list[Deployment], *, within_days: int | None = None) -> dict[Any, list[WaiverNote]]:
    """For each deployment, the waivers it relies on (one query for all), optionally only those expiring within
    ``within_days`` (expired ones included)."""
    ids = {str(w) for d in deployments for w in (d.waivers or [])}
    if not ids:
        return {d.pk: [] for d in deployments}
    today = timezone.localdate()
    waivers = {str(w.pk): w for w in Waiver.objects.filter(id__in=ids)}
    notes: dict[Any, list[WaiverNote]] = {}
    for deployment in deployments:
        found = []
        for waiver_id in deployment.waivers or []:
            waiver = waivers.get(str(waiver_id))
            if waiver is None:
                continue
            if within_days is not None and waiver.expires_on > today + timedelta(days=within_days):
                continue
            found.append(WaiverNote(waiver.pk, waiver.expires_on, waiver.expires_on < today, waiver.waived or []))
        notes[deployment.pk] = sorted(found, key=lambda n: n.expires_on)
    return notes


def last_windows(deployments: list[Deployment]) -> dict[Any, dict[str, Any]]:
    """The newest evaluated window of each deployment with its worst status (one query)."""
    ids = [d.last_window_id for d in deployments if getattr(d, "last_window_id", None)]
    windows = {
        w.pk: w for w in MonitoringWindow.objects.filter(id__in=ids).only("id", "starts_at", "ends_at", "results")
    }
    found = {}
    for deployment in deployments:
        window = windows.get(getattr(deployment, "last_window_id", None))
        if window is not None:
            found[deployment.pk] = {"window": window, "worst": worst_status(window.results or [])}
    return found


def inventory_rows(page_deployments: list[Deployment]) -> list[dict[str, Any]]:
    expiring = waivers_relied_on(page_deployments, within_days=WAIVER_NOTICE_DAYS)
    windows = last_windows(page_deployments)
    return [{"deployment": d, "expiring": expiring.get(d.pk, []), "last": windows.get(d.pk)} for d in page_deployments]


# ---------------------------------------------------------------------------------------------- deployment page


@dataclass
class WindowRow:
    window: MonitoringWindow
    worst: str
    counts: dict[str, int]


def window_rows(windows: list[MonitoringWindow]) -> list[WindowRow]:
    rows = []
    for window in windows:
        counts: dict[str, int] = {}
        for result in window.results or []:
            status = result.get("status", "")
            counts[status] = counts.get(status, 0) + 1
        rows.append(WindowRow(window, worst_status(window.results or []), counts))
    return rows


def deployment_windows(deployment: Deployment, *, limit: int | None = PAGE_WINDOWS) -> list[MonitoringWindow]:
    """The deployment's windows, oldest first (the newest ``limit`` of them)."""
    windows = MonitoringWindow.objects.filter(deployment=deployment).select_related("job").order_by("-starts_at")
    if limit:
        windows = windows[:limit]
    return list(reversed(list(windows)))


def figures_for(deployment: Deployment, windows: list[MonitoringWindow]) -> list[Figure]:
    """The figures of ``windows`` with the alerts that opened in them marked (one query for the alerts)."""
    if not windows:
        return []
    alerts = Alert.objects.filter(deployment=deployment, created_at__gte=windows[0].starts_at).only(
        "monitor", "family", "window_id", "title", "detail"
    )
    return monitoring_figures(plan=deployment.plan, windows=windows, alerts=list(alerts))


def plan_rows(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """The monitoring plan as rows: each monitor family, whether it is on, and its settings in words."""
    rows = []
    for family, settings in ((plan or {}).get("monitors") or {}).items():
        settings = settings if isinstance(settings, dict) else {"value": settings}
        details = ", ".join(
            # Sorted: PostgreSQL's jsonb keeps no key order, and the page and the report must read alike.
            f"{key.replace('_', ' ')} {_plain(value)}"
            for key, value in sorted(settings.items())
            if key != "enabled"
        )
        rows.append(
            {
                "family": family.replace("_", " ").capitalize(),
                "enabled": settings.get("enabled", True),
                "details": details,
            }
        )
    return rows


def _plain(value: Any) -> str:
    if isinstance(value, dict):
        return "(" + ", ".join(f"{k.replace('_', ' ')} {_plain(v)}" for k, v in value.items()) + ")"
    if isinstance(value, list | tuple):
        return ", ".join(_plain(v) for v in value) or "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


SEVERITY_RANK = {Alert.Severity.CRITICAL: 0, Alert.Severity.WARNING: 1, Alert.Severity.INFO: 2}


def with_opened_window(alerts: list[Alert]) -> list[Alert]:
    """Each alert with ``opened_window_start``: the start of the window in which it opened (from its history)."""
    for alert in alerts:
        start = first_window(alert).get("starts_at")
        try:
            alert.opened_window_start = datetime.fromisoformat(start) if start else None  # type: ignore[attr-defined]
        except ValueError:
            alert.opened_window_start = None  # type: ignore[attr-defined]
        if alert.opened_window_start is None and alert.window is not None:  # type: ignore[attr-defined]
            alert.opened_window_start = alert.window.starts_at  # type: ignore[attr-defined]
    return alerts


def unresolved_alerts(deployment: Deployment, limit: int = 25) -> list[Alert]:
    """The deployment's open and acknowledged alerts, open before acknowledged, critical first."""
    alerts = list(
        Alert.objects.filter(deployment=deployment)
        .exclude(status=Alert.Status.RESOLVED)
        .select_related("assignee", "window")
        .order_by("-created_at")[:500]
    )
    alerts.sort(key=lambda a: (a.status != Alert.Status.OPEN, SEVERITY_RANK.get(a.severity, 3), a.title))
    return with_opened_window(alerts[:limit])


def feedback_counts(deployment: Deployment) -> dict[str, int]:
    rows = Feedback.objects.filter(deployment=deployment).values("status").annotate(n=Count("id"))
    return {row["status"]: row["n"] for row in rows}


def retraining_of(deployment: Deployment) -> list[RetrainingRequest]:
    return list(
        RetrainingRequest.objects.filter(deployment=deployment).select_related("opened_by", "alert", "training_run")
    )
