"""HTML pages for data-subject requests: the list with deadlines, registration, and the request page (trace,
decisions, execution with job progress, documents)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_POST

from apps.accounts.models import User
from apps.accounts.selectors import organisation_members
from apps.core.errors import AttestError, ValidationFailed
from apps.jobs.lifecycle import failure_of
from apps.rights import selectors, services
from apps.rights.forms import AssignForm, DecideForm, ExtendForm, RectifyForm, RegisterForm
from apps.rights.models import ModelDecision, SubjectRequest
from apps.rights.permissions import can, officer_roles, visible_to
from apps.training.models import ModelVersion


def _organisation(request: HttpRequest, action: str = "view") -> Any:
    organisation = getattr(request, "organisation", None)
    if organisation is None or not can(request.user, "view", organisation):
        raise Http404
    if action == "manage" and not can(request.user, "manage", organisation):
        raise Http404
    return organisation


def _officers(organisation: Any) -> list[User]:
    users: dict[Any, User] = {}
    for role in officer_roles(organisation):
        for user in organisation_members(organisation, role):
            users[user.pk] = user
    return sorted(users.values(), key=lambda u: u.display_name)


def _get(request: HttpRequest, pk: Any) -> SubjectRequest:
    return get_object_or_404(visible_to(request.user), pk=pk)


@login_required
def request_list(request: HttpRequest) -> HttpResponse:
    organisation = _organisation(request)
    show = request.GET.get("show", "open")
    show = show if show in selectors.FILTERS else "open"
    kind = request.GET.get("kind", "")
    return render(
        request,
        "rights/list.html",
        {
            "requests": selectors.requests_for(request.user, organisation, show=show, kind=kind)[:200],
            "counts": selectors.deadline_counts(organisation),
            "show": show,
            "kind": kind,
            "filters": [
                ("open", "Open"),
                ("due_soon", "Due within 7 days"),
                ("overdue", "Overdue"),
                ("waiting", "Waiting"),
                ("completed", "Completed"),
                ("all", "All"),
            ],
            "kinds": SubjectRequest.Kind.choices,
            "today": timezone.localdate(),
            "can_manage": can(request.user, "manage", organisation),
        },
    )


@login_required
def request_register(request: HttpRequest) -> HttpResponse:
    organisation = _organisation(request, "manage")
    officers = _officers(organisation)
    form = RegisterForm(request.POST or None, officers=officers)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        assignee = next((u for u in officers if str(u.pk) == data["assignee"]), None)
        try:
            subject_request = services.subject_request_register(
                actor=request.user,
                organisation=organisation,
                kind=data["kind"],
                identifier=data["identifier"],
                identity_verification=data["identity_verification"],
                received_on=data["received_on"],
                purposes=data["purposes"].splitlines(),
                assignee=assignee,
            )
        except AttestError as exc:
            form.add_error(None, exc.message)
            for field, errors in (exc.details or {}).items() if isinstance(exc.details, dict) else []:
                if field in form.fields:
                    for error in errors:
                        form.add_error(field, error)
        else:
            messages.success(request, f"{subject_request.reference} registered; its trace is running.")
            return redirect("rights:detail", pk=subject_request.pk)
    return render(request, "rights/register.html", {"form": form})


@login_required
def request_detail(request: HttpRequest, pk: Any) -> HttpResponse:
    subject_request = _get(request, pk)
    organisation = subject_request.organisation
    manage = can(request.user, "manage", organisation) and subject_request.is_open
    decisions = {str(d.model_version_id): d for d in subject_request.decisions.select_related("decided_by")}
    models = []
    for entry in subject_request.trace.get("models", []):
        models.append({**entry, "decision": decisions.get(entry["model_version_id"])})
    trace_job = subject_request.trace_job
    export = subject_request.exports.order_by("-created_at").first() if hasattr(subject_request, "exports") else None
    return render(
        request,
        "rights/detail.html",
        {
            "req": subject_request,
            "models": models,
            "trace": subject_request.trace,
            "traced_at": parse_datetime(subject_request.trace.get("traced_at") or ""),
            "trace_live": trace_job is not None and trace_job.status in ("queued", "running"),
            "trace_job": trace_job,
            "trace_failure": failure_of(trace_job, None) if trace_job is not None else "",
            "execute_job": subject_request.execute_job,
            "execute_live": subject_request.status == SubjectRequest.Status.IN_PROGRESS,
            "undecided": selectors.undecided_models(subject_request),
            "manage": manage,
            "can_download_export": can(request.user, "manage", organisation),
            "export": export,
            "assign_form": AssignForm(
                initial={"assignee": str(subject_request.assignee_id or "")}, officers=_officers(organisation)
            ),
            "extend_form": ExtendForm(),
            "rectify_form": RectifyForm(),
            "decision_choices": ModelDecision.Decision.choices,
            "duplicates": SubjectRequest.objects.filter(
                organisation=organisation, pseudonym=subject_request.pseudonym
            ).exclude(pk=subject_request.pk),
            "today": timezone.localdate(),
        },
    )


def _act(request: HttpRequest, pk: Any, call: Any, success: str) -> HttpResponse:
    subject_request = _get(request, pk)
    if not can(request.user, "manage", subject_request.organisation):
        raise Http404
    try:
        call(subject_request)
    except AttestError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, success)
    return redirect("rights:detail", pk=subject_request.pk)


@login_required
@require_POST
def request_assign(request: HttpRequest, pk: Any) -> HttpResponse:
    def call(subject_request: SubjectRequest) -> None:
        officers = _officers(subject_request.organisation)
        form = AssignForm(request.POST, officers=officers)
        if not form.is_valid():
            raise ValidationFailed("Choose an officer of this organisation.")
        assignee = next((u for u in officers if str(u.pk) == form.cleaned_data["assignee"]), None)
        services.subject_request_assign(actor=request.user, request=subject_request, assignee=assignee)

    return _act(request, pk, call, "Assignee saved.")


@login_required
@require_POST
def request_extend(request: HttpRequest, pk: Any) -> HttpResponse:
    def call(subject_request: SubjectRequest) -> None:
        form = ExtendForm(request.POST)
        reason = form.cleaned_data["reason"] if form.is_valid() else ""
        services.subject_request_extend(actor=request.user, request=subject_request, reason=reason)

    return _act(request, pk, call, "Deadline extended by two months.")


@login_required
@require_POST
def request_decide(request: HttpRequest, pk: Any) -> HttpResponse:
    def call(subject_request: SubjectRequest) -> None:
        form = DecideForm(request.POST)
        if not form.is_valid():
            raise ValidationFailed("Choose a decision for the model.")
        model_version = get_object_or_404(
            ModelVersion, pk=form.cleaned_data["model_version"], organisation=subject_request.organisation
        )
        services.subject_request_decide(
            actor=request.user,
            request=subject_request,
            model_version=model_version,
            decision=form.cleaned_data["decision"],
            justification=form.cleaned_data["justification"],
        )

    return _act(request, pk, call, "Decision recorded.")


@login_required
@require_POST
def request_execute(request: HttpRequest, pk: Any) -> HttpResponse:
    def call(subject_request: SubjectRequest) -> None:
        corrections = None
        if subject_request.kind == SubjectRequest.Kind.RECTIFICATION:
            form = RectifyForm(request.POST)
            if not form.is_valid():
                raise ValidationFailed(" ".join(form.errors.get("corrections", ["Give corrections."])))
            corrections = form.cleaned_data["corrections"]
        services.subject_request_execute(actor=request.user, request=subject_request, corrections=corrections)

    return _act(request, pk, call, "The request is being carried out.")


@login_required
@require_POST
def request_trace(request: HttpRequest, pk: Any) -> HttpResponse:
    return _act(
        request, pk, lambda r: services.subject_request_trace_again(actor=request.user, request=r), "Tracing again."
    )
