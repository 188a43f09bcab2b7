"""The deployment pages: the inventory of models in production, a deployment with its monitoring charts, windows,
tokens and actions, alerts and their workflow, feedback triage and retraining requests.

Views are glue: they scope what the user may see (other organisations' objects answer 404), call the services of
the deployments app (deploy, promote, tokens, batches; alerts, feedback, retraining) and render. Action forms are
shown only where the services' own permission rules accept them, so auditors read everything and act on nothing.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from apps.accounts.middleware import organisation_or_404
from apps.accounts.models import Membership
from apps.accounts.selectors import organisation_members, roles_in
from apps.core.errors import AttestError, PermissionDenied
from apps.core.forms import chart_html
from apps.core.uploads import accepts_upload
from apps.datasets.uploads import EncryptingUploadHandler, dataset_upload_limit
from apps.deployments import alerts as alert_service
from apps.deployments import feedback as feedback_service
from apps.deployments import pages
from apps.deployments import permissions as deployment_permissions
from apps.deployments.alerts import ACT_ROLES, alert_may, alerts_visible_to
from apps.deployments.feedback import WRITER_ROLES, feedback_may, feedback_reference, feedback_visible_to
from apps.deployments.figures import cell, opened_in
from apps.deployments.forms import (
    AssignForm,
    CommentForm,
    DeployForm,
    FeedbackForm,
    PeriodForm,
    PromoteForm,
    ReasonForm,
    ResolveForm,
    RetrainingOpenForm,
    TokenForm,
    TriageForm,
)
from apps.deployments.models import (
    Alert,
    Deployment,
    Feedback,
    MonitoringWindow,
    ProductionBatch,
    RetrainingRequest,
    ScoringToken,
)
from apps.deployments.retraining import (
    UNDERWAY,
    retraining_may,
    retraining_prefill,
    retraining_progress,
    retraining_request_launch,
    retraining_request_open,
)
from apps.deployments.selectors import approval_blockers, deployments_of_model
from apps.deployments.services import (
    deployment_register,
    deployment_rollback,
    deployment_withdraw,
    production_batch_upload,
    scoring_token_create,
    scoring_token_revoke,
)
from apps.ethics import rules
from apps.ethics.models import ReviewRequest
from apps.reports.models import Report
from apps.reports.permissions import visible_to as reports_visible_to
from apps.reports.services import ISSUER_ROLES
from apps.reports.services import report_request as issue_report
from apps.training.permissions import models_visible_to

PAGE_SIZE = 25


def _deployments(request: HttpRequest) -> QuerySet[Deployment]:
    """Deployments the user may see, in the organisation they act in (another organisation's answer 404)."""
    return deployment_permissions.visible_to(request.user).filter(organisation=organisation_or_404(request))


def _may_act(request: HttpRequest, obj: Any) -> bool:
    """Owners and admins of the object's organisation deploy, promote, roll back, withdraw, manage tokens and post
    production data (the services enforce the same rule)."""
    return deployment_permissions.can(request.user, "act", obj.organisation)


def _may_retrain(request: HttpRequest, deployment: Deployment) -> bool:
    return deployment.status == Deployment.Status.ACTIVE and retraining_may(request.user, "act", deployment)


def _deployment(request: HttpRequest, deployment_id: Any) -> Deployment:
    return get_object_or_404(
        _deployments(request).select_related(
            "usecase", "model_version__training_run", "owner", "review__decision", "previous__model_version"
        ),
        id=deployment_id,
    )


def _fail(request: HttpRequest, exc: AttestError) -> None:
    messages.error(request, exc.message)


def _form_errors(request: HttpRequest, form: Any) -> None:
    for field, errors in form.errors.items():
        label = form.fields[field].label or field.replace("_", " ") if field in form.fields else ""
        for error in errors:
            messages.error(request, f"{str(label).capitalize()}: {error}" if label else str(error))


def public_url(deployment: Deployment) -> str:
    """The public contestation and feedback page of a deployment (no login)."""
    return reverse("public:feedback", kwargs={"slug": deployment.public_slug})


# ----------------------------------------------------------------------------------------------------- inventory


@login_required
def inventory(request: HttpRequest) -> HttpResponse:
    organisation = organisation_or_404(request)
    base = _deployments(request).filter(status=Deployment.Status.ACTIVE)
    environments = sorted(set(base.values_list("environment", flat=True)))
    environment = request.GET.get("environment", "")
    environment = environment if environment in environments else ""
    alert_state = request.GET.get("alerts", "")
    alert_state = alert_state if alert_state in pages.ALERT_STATES else ""
    deployments = pages.filter_inventory(
        pages.with_monitoring_state(base), environment=environment, alert_state=alert_state
    )
    deployments, sort = pages.sort_inventory(deployments, request.GET.get("sort", "usecase"))
    page = Paginator(deployments, PAGE_SIZE).get_page(request.GET.get("page"))
    filters = {k: v for k, v in (("environment", environment), ("alerts", alert_state)) if v}
    columns = []
    for key, label in (
        ("usecase", "Use case"),
        ("environment", "Environment"),
        ("model", "Model version"),
        ("deployed", "Deployed on"),
        ("alerts", "Open alerts"),
        ("window", "Last window evaluated"),
    ):
        current = sort.lstrip("-") == key
        descending = sort.startswith("-")
        columns.append(
            {
                "label": label,
                "next": f"-{key}" if current and not descending else key,
                "aria_sort": ("descending" if descending else "ascending") if current else "",
            }
        )
    return render(
        request,
        "deployments/inventory.html",
        {
            "organisation": organisation,
            "page": page,
            "rows": pages.inventory_rows(list(page.object_list)),
            "columns": columns,
            "environments": environments,
            "environment": environment,
            "alert_states": pages.ALERT_STATES,
            "alert_state": alert_state,
            "sort": sort,
            "filter_query": urlencode(filters),
            "page_query": urlencode({**filters, "sort": sort}),
            "waiver_days": pages.WAIVER_NOTICE_DAYS,
        },
    )


# ------------------------------------------------------------------------------------------------ deployment page


def _deployment_context(request: HttpRequest, deployment: Deployment, **extra: Any) -> dict[str, Any]:
    windows = pages.deployment_windows(deployment)
    evaluated = [w for w in windows if w.results]
    figures = pages.figures_for(deployment, evaluated)
    active = deployment.status == Deployment.Status.ACTIVE
    may_manage = active and _may_act(request, deployment)
    candidates = []
    if may_manage:
        # Only versions the board approved for deployment at some point can be in force, so the newest ten of those
        # are checked (not the newest ten versions, which may all be unapproved retrainings hiding an approved one).
        approved = (
            models_visible_to(request.user)
            .filter(
                usecase=deployment.usecase,
                non_private=False,
                reviews__kind=ReviewRequest.Kind.DEPLOYMENT,
                reviews__decision__outcome__in=(rules.APPROVED, rules.APPROVED_WITH_CONDITIONS),
            )
            .exclude(id=deployment.model_version_id)
            .select_related("usecase")
            .distinct()
            .order_by("-number")[:10]
        )
        candidates = [model for model in approved if not approval_blockers(model)]
    batches = list(
        ProductionBatch.objects.filter(deployment=deployment)
        .select_related("job", "window")
        .order_by("-received_at")[:10]
    )
    roles = roles_in(request.user, deployment.organisation)
    return {
        "deployment": deployment,
        "decision": getattr(deployment.review, "decision", None),
        "waivers": pages.waivers_relied_on([deployment]).get(deployment.pk, []),
        "plan_rows": pages.plan_rows(deployment.plan),
        "windows": list(reversed(pages.window_rows(windows))),
        "figures": [{"figure": f, "svg": chart_html(f.svg)} for f in figures],
        "alerts": pages.unresolved_alerts(deployment),
        "unresolved_count": Alert.objects.filter(deployment=deployment).exclude(status=Alert.Status.RESOLVED).count(),
        "resolved_alerts": Alert.objects.filter(deployment=deployment, status=Alert.Status.RESOLVED).count(),
        "feedback_counts": pages.feedback_counts(deployment),
        "retraining": pages.retraining_of(deployment),
        "tokens": list(ScoringToken.objects.filter(deployment=deployment).select_related("created_by")),
        "batches": batches,
        "live_batches": [b for b in batches if b.job is not None and not b.job.is_finished],
        "reports": list(
            reports_visible_to(request.user)
            .filter(kind=Report.Kind.MONITORING, subject_type="deployments.deployment", subject_id=str(deployment.id))
            .order_by("-created_at")[:10]
        ),
        "public_url": public_url(deployment),
        "may_manage": may_manage,
        "may_report": bool(roles & ISSUER_ROLES),
        "may_leave_feedback": bool(roles & WRITER_ROLES),
        "upload_url": reverse("deployments:upload", kwargs={"deployment_id": deployment.id}),
        "candidates": candidates,
        "today": timezone.localdate(),
        "period_default_from": deployment.deployed_on,
        **extra,
    }


@login_required
def deployment_detail(request: HttpRequest, deployment_id: Any) -> HttpResponse:
    deployment = _deployment(request, deployment_id)
    return render(request, "deployments/detail.html", _deployment_context(request, deployment))


@login_required
@require_POST
def deploy(request: HttpRequest, model_id: Any) -> HttpResponse:
    """Deploy an approved model version (the form on the model's page)."""
    model = get_object_or_404(models_visible_to(request.user).select_related("usecase"), id=model_id)
    form = DeployForm(request.POST)
    if not form.is_valid():
        _form_errors(request, form)
        return redirect("training:run", run_id=model.training_run_id)
    data = form.cleaned_data
    try:
        deployment = deployment_register(
            actor=request.user,
            model_version=model,
            environment=data["environment"],
            system=data["system"],
            owner=request.user,
            deployed_on=data.get("deployed_on") or timezone.localdate(),
        )
    except AttestError as exc:
        _fail(request, exc)
        return redirect("training:run", run_id=model.training_run_id)
    messages.success(request, f"{model} is deployed to {deployment.environment}.")
    return redirect("deployments:detail", deployment_id=deployment.id)


@login_required
@require_POST
def promote(request: HttpRequest, deployment_id: Any) -> HttpResponse:
    """Put another approved version of the use case into this environment: a registration in the same environment,
    which replaces the active one (``deployment_register`` records it as a promotion)."""
    deployment = _deployment(request, deployment_id)
    form = PromoteForm(request.POST)
    if not form.is_valid():
        _form_errors(request, form)
        return redirect("deployments:detail", deployment_id=deployment.id)
    model = get_object_or_404(
        models_visible_to(request.user).filter(usecase=deployment.usecase), id=form.cleaned_data["model_version"]
    )
    try:
        new = deployment_register(
            actor=request.user,
            model_version=model,
            environment=deployment.environment,
            system=deployment.system,
            owner=deployment.owner,
            deployed_on=timezone.localdate(),
        )
    except AttestError as exc:
        _fail(request, exc)
        return redirect("deployments:detail", deployment_id=deployment.id)
    messages.success(request, f"{model} now serves {new.environment}; the previous version was replaced.")
    return redirect("deployments:detail", deployment_id=new.id)


@login_required
@require_POST
def rollback(request: HttpRequest, deployment_id: Any) -> HttpResponse:
    deployment = _deployment(request, deployment_id)
    form = ReasonForm(request.POST)
    if not form.is_valid():
        _form_errors(request, form)
        return redirect("deployments:detail", deployment_id=deployment.id)
    try:
        restored = deployment_rollback(actor=request.user, deployment=deployment, reason=form.cleaned_data["reason"])
    except AttestError as exc:
        _fail(request, exc)
        return redirect("deployments:detail", deployment_id=deployment.id)
    messages.success(request, f"Rolled back: {restored.model_version} serves {restored.environment} again.")
    return redirect("deployments:detail", deployment_id=restored.id)


@login_required
@require_POST
def withdraw(request: HttpRequest, deployment_id: Any) -> HttpResponse:
    deployment = _deployment(request, deployment_id)
    form = ReasonForm(request.POST)
    if not form.is_valid():
        _form_errors(request, form)
        return redirect("deployments:detail", deployment_id=deployment.id)
    try:
        deployment_withdraw(actor=request.user, deployment=deployment, reason=form.cleaned_data["reason"])
    except AttestError as exc:
        _fail(request, exc)
    else:
        messages.success(request, f"{deployment} is withdrawn: it no longer serves.")
    return redirect("deployments:detail", deployment_id=deployment.id)


@login_required
@require_POST
def token_create(request: HttpRequest, deployment_id: Any) -> HttpResponse:
    """A new scoring token: its secret is shown in this response only (Attest keeps its sha256)."""
    deployment = _deployment(request, deployment_id)
    form = TokenForm(request.POST)
    if not form.is_valid():
        _form_errors(request, form)
        return redirect("deployments:detail", deployment_id=deployment.id)
    try:
        token, secret = scoring_token_create(actor=request.user, deployment=deployment, name=form.cleaned_data["name"])
    except AttestError as exc:
        _fail(request, exc)
        return redirect("deployments:detail", deployment_id=deployment.id)
    response = render(
        request,
        "deployments/detail.html",
        _deployment_context(request, deployment, new_token=token, secret=secret),
    )
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def token_revoke(request: HttpRequest, deployment_id: Any, token_id: Any) -> HttpResponse:
    deployment = _deployment(request, deployment_id)
    token = get_object_or_404(ScoringToken, id=token_id, deployment=deployment)
    try:
        scoring_token_revoke(actor=request.user, token=token)
    except AttestError as exc:
        _fail(request, exc)
    else:
        messages.success(request, f"Token {token.name} revoked: requests with it are refused from now on.")
    return redirect("deployments:detail", deployment_id=deployment.id)


def _may_upload(user: Any, request: HttpRequest, kwargs: dict[str, Any]) -> None:
    """Checked before the body is read: only owners and admins of the deployment's organisation send it data."""
    deployment = deployment_permissions.visible_to(user).filter(id=kwargs["deployment_id"]).first()
    if deployment is None or getattr(request, "organisation", None) != deployment.organisation:
        raise Http404
    if not deployment_permissions.can(user, "act", deployment.organisation):
        raise PermissionDenied("Only use-case owners and org admins send production data.")


@accepts_upload(
    handler=EncryptingUploadHandler,
    max_file_bytes=dataset_upload_limit,
    fields=("file",),
    allowed=_may_upload,
    back=lambda request, kwargs: reverse("deployments:detail", args=[kwargs["deployment_id"]]) + "#data-heading",
)
@login_required
def batch_upload(request: HttpRequest, deployment_id: Any) -> HttpResponse:
    """A production batch uploaded in the portal, encrypted while it streamed in; its processing is a job whose
    progress the deployment page shows."""
    if request.method != "POST":
        raise Http404
    deployment = _deployment(request, deployment_id)
    upload = request.FILES.get("file")
    try:
        if upload is None:
            raise AttestError("invalid", "Choose a CSV file of production rows to upload.")
        production_batch_upload(actor=request.user, deployment=deployment, uploaded_file=upload)
    except AttestError as exc:
        _fail(request, exc)
    else:
        messages.success(request, "Batch received: it is folded into its window in the background.")
    return redirect(reverse("deployments:detail", args=[deployment.id]) + "#data-heading")


@login_required
@require_POST
def report_request(request: HttpRequest, deployment_id: Any) -> HttpResponse:
    """Issue the signed post-market monitoring report of this deployment for a period."""
    deployment = _deployment(request, deployment_id)
    form = PeriodForm(request.POST)
    if not form.is_valid():
        _form_errors(request, form)
        return redirect("deployments:detail", deployment_id=deployment.id)
    try:
        report = issue_report(
            actor=request.user,
            kind=Report.Kind.MONITORING,
            subject=deployment,
            period=(form.cleaned_data["period_from"], form.cleaned_data["period_to"]),
        )
    except AttestError as exc:
        _fail(request, exc)
        return redirect("deployments:detail", deployment_id=deployment.id)
    messages.success(request, f"{report.reference} is being rendered and signed.")
    return redirect("reports:detail", report_id=report.id)


# ------------------------------------------------------------------------------------------------------- alerts


def _alerts(request: HttpRequest) -> QuerySet[Alert]:
    return alerts_visible_to(request.user).filter(organisation=organisation_or_404(request))


@login_required
def alert_list(request: HttpRequest) -> HttpResponse:
    alerts = _alerts(request)
    status = request.GET.get("status", "unresolved")
    if status == "unresolved":
        alerts = alerts.exclude(status=Alert.Status.RESOLVED)
    elif status in Alert.Status.values:
        alerts = alerts.filter(status=status)
    else:
        status = "all"
    severity = request.GET.get("severity", "")
    if severity in Alert.Severity.values:
        alerts = alerts.filter(severity=severity)
    else:
        severity = ""
    deployment_id = request.GET.get("deployment", "")
    deployment = None
    if deployment_id:
        deployment = _deployments(request).filter(id=deployment_id).select_related("usecase", "model_version").first()
        if deployment is None:
            raise Http404
        alerts = alerts.filter(deployment=deployment)
    page = Paginator(alerts.order_by("-created_at"), PAGE_SIZE).get_page(request.GET.get("page"))
    page.object_list = pages.with_opened_window(list(page.object_list))
    query = urlencode(
        {k: v for k, v in (("status", status), ("severity", severity), ("deployment", deployment_id)) if v}
    )
    return render(
        request,
        "deployments/alerts.html",
        {
            "page": page,
            "status": status,
            "severity": severity,
            "deployment": deployment,
            "statuses": [("unresolved", "Open or acknowledged"), *Alert.Status.choices, ("all", "All")],
            "severities": Alert.Severity.choices,
            "query": query,
        },
    )


def _alert(request: HttpRequest, alert_id: Any) -> Alert:
    return get_object_or_404(
        _alerts(request).select_related("acknowledged_by", "resolved_by"),
        id=alert_id,
    )


def _monitor_history(alert: Alert, limit: int = 12) -> list[dict[str, Any]]:
    """The alert's monitor in the deployment's newest windows: its value, threshold and status in each."""
    windows = MonitoringWindow.objects.filter(
        deployment=alert.deployment, status=MonitoringWindow.Status.EVALUATED
    ).order_by("-starts_at")[:limit]
    history = []
    for window in reversed(list(windows)):
        result = next((r for r in window.results or [] if r.get("monitor") == alert.monitor), None)
        history.append({"window": window, "result": result, "text": cell(result, with_limit=True)})
    return history


def alert_context(request: HttpRequest, alert: Alert) -> dict[str, Any]:
    unresolved = alert.status != Alert.Status.RESOLVED
    may_act = unresolved and alert_may(request.user, "act", alert)
    members = []
    if may_act:
        workers = Membership.objects.filter(organisation=alert.organisation, role__in=ACT_ROLES).values("user_id")
        members = list(organisation_members(alert.organisation).filter(id__in=workers))
    pages.with_opened_window([alert])
    opened_start = alert.opened_window_start  # type: ignore[attr-defined]
    events = [("Opened", alert.created_at, None, f"in the window of {opened_start:%d %b %Y}" if opened_start else "")]
    if alert.escalated_at:
        events.append(("Escalated", alert.escalated_at, None, "its severity rose"))
    if alert.acknowledged_at:
        events.append(("Acknowledged", alert.acknowledged_at, alert.acknowledged_by, ""))
    if alert.resolved_at:
        events.append(("Resolved", alert.resolved_at, alert.resolved_by, alert.resolution))
    retraining = RetrainingRequest.objects.filter(alert=alert).select_related("opened_by").first()
    # One retraining request underway per deployment: another alert's request is where this one goes too.
    underway = (
        RetrainingRequest.objects.filter(deployment=alert.deployment, status__in=UNDERWAY)
        .select_related("opened_by", "alert")
        .first()
    )
    return {
        "alert": alert,
        "deployment": alert.deployment,
        "result": (alert.detail or {}).get("result") or alert.detail or {},
        "opened_window_id": opened_in(alert),
        "history": _monitor_history(alert),
        "events": sorted(events, key=lambda e: e[1]),
        "comments": list(alert.comments.select_related("author")),
        "feedback": list(alert.feedback.all()[:20]),
        "may_act": may_act,
        "may_comment": alert_may(request.user, "comment", alert),
        "members": members,
        "retraining": retraining,
        "underway": underway if retraining is None else None,
        "may_retrain": retraining is None and underway is None and _may_retrain(request, alert.deployment),
        "retrain_reason": f"{alert.title}"
        + (f", since the window of {opened_start:%d %b %Y}." if opened_start else "."),
    }


@login_required
def alert_detail(request: HttpRequest, alert_id: Any) -> HttpResponse:
    alert = _alert(request, alert_id)
    return render(request, "deployments/alert.html", alert_context(request, alert))


def _alert_action(request: HttpRequest, alert_id: Any, act: Any, done: str, form: Any = None) -> HttpResponse:
    """One step of the alert workflow on an alert the user may see: once ``form`` (if any) is valid, ``act(alert)``
    calls the service of ``alerts.py``, which decides who may; the page then says what happened or why not."""
    alert = _alert(request, alert_id)
    if form is not None and not form.is_valid():
        _form_errors(request, form)
        return redirect("deployments:alert", alert_id=alert.id)
    try:
        act(alert)
    except AttestError as exc:
        _fail(request, exc)
    else:
        messages.success(request, done)
    return redirect("deployments:alert", alert_id=alert.id)


@login_required
@require_POST
def alert_acknowledge(request: HttpRequest, alert_id: Any) -> HttpResponse:
    return _alert_action(
        request,
        alert_id,
        lambda alert: alert_service.alert_acknowledge(actor=request.user, alert=alert),
        "Alert acknowledged: the team knows and is on it.",
    )


@login_required
@require_POST
def alert_assign(request: HttpRequest, alert_id: Any) -> HttpResponse:
    form = AssignForm(request.POST)
    assignee = None
    if form.is_valid() and form.cleaned_data["assignee"]:
        # The alert is looked up in the organisation acted in (``_alerts``), so its members are that organisation's.
        assignee = organisation_members(organisation_or_404(request)).filter(id=form.cleaned_data["assignee"]).first()
        if assignee is None:
            messages.error(request, "Choose a member of the organisation.")
            return redirect("deployments:alert", alert_id=alert_id)
    return _alert_action(
        request,
        alert_id,
        lambda alert: alert_service.alert_assign(actor=request.user, alert=alert, assignee=assignee),
        f"Assigned to {assignee.display_name}." if assignee else "Unassigned.",
        form,
    )


@login_required
@require_POST
def alert_comment(request: HttpRequest, alert_id: Any) -> HttpResponse:
    form = CommentForm(request.POST)
    return _alert_action(
        request,
        alert_id,
        lambda alert: alert_service.alert_comment(actor=request.user, alert=alert, body=form.cleaned_data["body"]),
        "Comment added.",
        form,
    )


@login_required
@require_POST
def alert_resolve(request: HttpRequest, alert_id: Any) -> HttpResponse:
    form = ResolveForm(request.POST)
    return _alert_action(
        request,
        alert_id,
        lambda alert: alert_service.alert_resolve(
            actor=request.user, alert=alert, resolution=form.cleaned_data["resolution"]
        ),
        "Alert resolved. It opens again if the monitor fails in a later window.",
        form,
    )


@login_required
@require_POST
def alert_retrain(request: HttpRequest, alert_id: Any) -> HttpResponse:
    """Open a retraining request from an alert; its page shows the pre-filled training run."""
    alert = _alert(request, alert_id)
    form = RetrainingOpenForm(request.POST)
    if not form.is_valid():
        _form_errors(request, form)
        return redirect("deployments:alert", alert_id=alert.id)
    try:
        item = retraining_request_open(
            actor=request.user, deployment=alert.deployment, reason=form.cleaned_data["reason"], alert=alert
        )
    except AttestError as exc:
        _fail(request, exc)
        return redirect("deployments:alert", alert_id=alert.id)
    messages.success(request, "Retraining request opened: check the pre-filled run, then launch it.")
    return redirect("deployments:retraining", request_id=item.id)


# ----------------------------------------------------------------------------------------------------- feedback


@login_required
def feedback_list(request: HttpRequest) -> HttpResponse:
    organisation = organisation_or_404(request)
    items = feedback_visible_to(request.user).filter(organisation=organisation)
    status = request.GET.get("status", "new")
    if status in Feedback.Status.values:
        items = items.filter(status=status)
    else:
        status = "all"
    kind = request.GET.get("kind", "")
    if kind in Feedback.Kind.values:
        items = items.filter(kind=kind)
    else:
        kind = ""
    deployment_id = request.GET.get("deployment", "")
    deployment = None
    if deployment_id:
        deployment = _deployments(request).filter(id=deployment_id).select_related("usecase").first()
        if deployment is None:
            raise Http404
        items = items.filter(deployment=deployment)
    page = Paginator(items.order_by("-created_at"), PAGE_SIZE).get_page(request.GET.get("page"))
    entries = list(page.object_list)
    deployments = {e.deployment_id for e in entries}
    open_alerts: dict[Any, list[Alert]] = {d: [] for d in deployments}
    for alert in Alert.objects.filter(deployment_id__in=deployments).exclude(status=Alert.Status.RESOLVED):
        open_alerts[alert.deployment_id].append(alert)
    # One organisation per page, so one answer for every item on it.
    may_triage = bool(entries) and feedback_may(request.user, "triage", entries[0])
    may_see_contact = bool(entries) and feedback_may(request.user, "see_contact", entries[0])
    counted = Feedback.objects.filter(organisation=organisation)
    if deployment is not None:
        counted = counted.filter(deployment=deployment)  # the page is about one deployment: so are its counts
    counts = dict(counted.order_by().values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    query = urlencode({k: v for k, v in (("status", status), ("kind", kind), ("deployment", deployment_id)) if v})
    return render(
        request,
        "deployments/feedback.html",
        {
            "page": page,
            "entries": [
                {"item": e, "reference": feedback_reference(e), "alerts": open_alerts.get(e.deployment_id, [])}
                for e in entries
            ],
            "may_triage": may_triage,
            "may_see_contact": may_see_contact,
            "status": status,
            "kind": kind,
            "deployment": deployment,
            "statuses": [*Feedback.Status.choices, ("all", "All")],
            "kinds": Feedback.Kind.choices,
            "categories": [c for c in Feedback.Category.choices if c[0] != Feedback.Category.UNTRIAGED],
            "severities": Alert.Severity.choices,
            "counts": counts,
            "query": query,
        },
    )


@login_required
@require_POST
def feedback_triage(request: HttpRequest, feedback_id: Any) -> HttpResponse:
    item = _feedback(request, feedback_id)
    form = TriageForm(request.POST)
    target = _feedback_back(request)
    if not form.is_valid():
        _form_errors(request, form)
        return redirect(target)
    data = form.cleaned_data
    alert = None
    if data.get("alert"):
        alert = Alert.objects.filter(deployment=item.deployment, id=data["alert"]).first()
        if alert is None:
            messages.error(request, "Link it to an alert of the same deployment.")
            return redirect(target)
    try:
        feedback_service.feedback_triage(
            actor=request.user,
            feedback=item,
            category=data["category"],
            severity=data["severity"],
            alert=alert,
            response=data.get("response", ""),
        )
    except AttestError as exc:
        _fail(request, exc)
    else:
        messages.success(request, "Feedback triaged.")
    return redirect(target)


@login_required
@require_POST
def feedback_close(request: HttpRequest, feedback_id: Any) -> HttpResponse:
    item = _feedback(request, feedback_id)
    try:
        feedback_service.feedback_close(actor=request.user, feedback=item, response=request.POST.get("response", ""))
    except AttestError as exc:
        _fail(request, exc)
    else:
        messages.success(request, "Feedback closed.")
    return redirect(_feedback_back(request))


@login_required
@require_POST
def feedback_submit(request: HttpRequest, deployment_id: Any) -> HttpResponse:
    """A signed-in member's feedback on a deployment (the form on the deployment page)."""
    deployment = _deployment(request, deployment_id)
    form = FeedbackForm(request.POST)
    if not form.is_valid():
        _form_errors(request, form)
        return redirect("deployments:detail", deployment_id=deployment.id)
    try:
        feedback_service.feedback_submit(
            actor=request.user, deployment=deployment, kind=form.cleaned_data["kind"], body=form.cleaned_data["body"]
        )
    except AttestError as exc:
        _fail(request, exc)
    else:
        messages.success(request, "Thank you: your feedback waits for triage.")
    return redirect("deployments:detail", deployment_id=deployment.id)


def _feedback(request: HttpRequest, feedback_id: Any) -> Feedback:
    return get_object_or_404(
        feedback_visible_to(request.user).filter(organisation=organisation_or_404(request)), id=feedback_id
    )


def _feedback_back(request: HttpRequest) -> str:
    """Back to the triage list as it was filtered (only this site's own query string)."""
    back = request.POST.get("back", "")
    safe = back and all(part.partition("=")[0] in ("status", "kind", "deployment", "page") for part in back.split("&"))
    return reverse("deployments:feedback") + (f"?{back}" if safe else "")


# --------------------------------------------------------------------------------------------------- retraining


def _retraining(request: HttpRequest, request_id: Any) -> RetrainingRequest:
    return get_object_or_404(
        RetrainingRequest.objects.filter(deployment__in=_deployments(request)).select_related(
            "deployment__usecase",
            "deployment__model_version__training_run",
            "alert",
            "feedback",
            "opened_by",
            "dataset_version__dataset",
            "training_run__job",
            "review__decision",
        ),
        id=request_id,
    )


@login_required
def retraining_detail(request: HttpRequest, request_id: Any) -> HttpResponse:
    item = _retraining(request, request_id)
    progress = retraining_progress(item)
    may_act = retraining_may(request.user, "act", item)
    return render(
        request,
        "deployments/retraining.html",
        {
            "item": item,
            "deployment": item.deployment,
            "prefill": retraining_prefill(item),
            "progress": progress,
            "may_launch": may_act and progress["status"] == RetrainingRequest.Status.OPEN,
            "may_request_review": may_act and progress["may_request_review"],
        },
    )


@login_required
@require_POST
def retraining_launch(request: HttpRequest, request_id: Any) -> HttpResponse:
    item = _retraining(request, request_id)
    try:
        retraining_request_launch(actor=request.user, request=item)
    except AttestError as exc:
        _fail(request, exc)
    else:
        messages.success(request, "Training launched on the newest prepared version; it is evaluated when it ends.")
    return redirect("deployments:retraining", request_id=item.id)


# --------------------------------------------------------------------------------------------- the model's page


def model_deployments(request: HttpRequest, model: Any) -> dict[str, Any]:
    """What the model's page shows about deployment: where it runs, and the deploy form with its blockers."""
    where = list(deployments_of_model(model))
    blockers = approval_blockers(model)
    return {
        "where_it_runs": where,
        "deploy_blockers": blockers,
        "may_deploy": not model.non_private and _may_act(request, model),
    }
