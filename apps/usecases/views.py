"""HTML pages of the use-case register: thin glue between forms, services and templates."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from apps.accounts.models import Role
from apps.core.errors import AttestError, ValidationFailed
from apps.core.forms import add_service_errors
from apps.usecases import services
from apps.usecases.dpia import SIGN_OFF_FIELDS, STEPS, residual_risk
from apps.usecases.forms import DPIA_CHOICES, PolicyForm, UseCaseForm, dpia_from_post
from apps.usecases.models import UseCase
from apps.usecases.permissions import can, visible_to
from apps.usecases.selectors import usecase_history, usecases_for


def _get_usecase(request: HttpRequest, usecase_id: Any) -> UseCase:
    return get_object_or_404(visible_to(request.user).select_related("owner", "organisation"), id=usecase_id)


@login_required
def usecase_list(request: HttpRequest) -> HttpResponse:
    organisation = request.organisation  # type: ignore[attr-defined]
    if organisation is None:
        raise Http404
    status = request.GET.get("status") or None
    if status not in UseCase.Status.values:
        status = None
    usecases = usecases_for(request.user, organisation, status).order_by("reference")
    can_create = bool(request.roles & {Role.OWNER, Role.ADMIN})  # type: ignore[attr-defined]
    return render(
        request,
        "usecases/list.html",
        {
            "usecases": usecases,
            "status": status,
            "statuses": UseCase.Status.choices,
            "can_create": can_create,
        },
    )


@login_required
def usecase_create(request: HttpRequest) -> HttpResponse:
    organisation = request.organisation  # type: ignore[attr-defined]
    if organisation is None:
        raise Http404
    form = UseCaseForm(request.POST or None, purposes=organisation.processing_purposes or [])
    if request.method == "POST" and form.is_valid():
        try:
            usecase = services.usecase_create(actor=request.user, organisation=organisation, data=form.to_data())
        except AttestError as exc:
            add_service_errors(request, form, exc)
        else:
            messages.success(request, f"{usecase.reference} registered as a draft. Next: answer the DPIA.")
            return redirect("usecases:dpia", usecase_id=usecase.id)
    return render(request, "usecases/form.html", {"form": form, "usecase": None})


@login_required
def usecase_detail(request: HttpRequest, usecase_id: Any) -> HttpResponse:
    usecase = _get_usecase(request, usecase_id)
    actions = [
        {"name": name, "label": name.replace("_", " ").capitalize(), "needs_reason": transition.needs_reason}
        for name, transition in services.TRANSITIONS.items()
        if can(request.user, name, usecase)
    ]
    return render(
        request,
        "usecases/detail.html",
        {
            "usecase": usecase,
            "can_change": can(request.user, "change", usecase),
            "actions": actions,
            "blockers": services.submission_blockers(usecase) if usecase.status == UseCase.Status.DRAFT else [],
            "history": usecase_history(usecase),
            "dpia_steps": _dpia_view(usecase.dpia or {}),
            "sign_off": [
                (label, (usecase.dpia or {}).get("sign_off", {}).get(key, "")) for key, label in SIGN_OFF_FIELDS
            ],
            "residual_risk": residual_risk(usecase.dpia or {}),
        },
    )


def _dpia_view(dpia: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "key": key,
            "title": title,
            "answers": [
                {"key": question, "label": label, "value": (dpia.get(key) or {}).get(question, "")}
                for question, label in questions
            ],
        }
        for key, title, questions in STEPS
    ]


@login_required
def usecase_edit(request: HttpRequest, usecase_id: Any) -> HttpResponse:
    usecase = _get_usecase(request, usecase_id)
    if not can(request.user, "change", usecase):
        messages.error(request, "Only the owner or an org admin can edit a draft use case.")
        return redirect("usecases:detail", usecase_id=usecase.id)
    purposes = usecase.organisation.processing_purposes or []
    form = UseCaseForm(request.POST or None, purposes=purposes, initial=UseCaseForm.initial_from(usecase))
    if request.method == "POST" and form.is_valid():
        try:
            services.usecase_update(actor=request.user, usecase=usecase, data=form.to_data())
        except AttestError as exc:
            add_service_errors(request, form, exc)
        else:
            messages.success(request, "Saved as a new revision.")
            return redirect("usecases:detail", usecase_id=usecase.id)
    return render(request, "usecases/form.html", {"form": form, "usecase": usecase})


@login_required
def usecase_dpia(request: HttpRequest, usecase_id: Any) -> HttpResponse:
    usecase = _get_usecase(request, usecase_id)
    editable = can(request.user, "change", usecase)
    dpia = usecase.dpia or {}
    errors: dict[str, Any] = {}
    if request.method == "POST":
        if not editable:
            raise Http404
        dpia = dpia_from_post(request.POST)
        try:
            services.usecase_update(actor=request.user, usecase=usecase, data={"dpia": dpia}, note="DPIA edited")
        except ValidationFailed as exc:
            errors = exc.details.get("dpia", exc.details)
            messages.error(request, exc.message)
        except AttestError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, "DPIA saved as a new revision.")
            return redirect("usecases:detail", usecase_id=usecase.id)
    risks = list(dpia.get("risks") or []) + [{}] * (2 if editable else 0)
    measures = list(dpia.get("measures") or []) + [{}] * (2 if editable else 0)
    return render(
        request,
        "usecases/dpia.html",
        {
            "usecase": usecase,
            "editable": editable,
            "steps": _dpia_view(dpia),
            "risks": risks,
            "measures": measures,
            "risk_ids": [f"R{index}" for index in range(1, len(risks) + 1)],
            "choices": DPIA_CHOICES,
            "sign_off": [(key, label, (dpia.get("sign_off") or {}).get(key, "")) for key, label in SIGN_OFF_FIELDS],
            "errors": errors,
        },
    )


@login_required
def usecase_policies(request: HttpRequest, usecase_id: Any) -> HttpResponse:
    usecase = _get_usecase(request, usecase_id)
    if not can(request.user, "change", usecase):
        messages.error(request, "Policies can be changed only on a draft, by its owner or an org admin.")
        return redirect("usecases:detail", usecase_id=usecase.id)
    form = PolicyForm(request.POST or None, initial=PolicyForm.initial_from(usecase))
    if request.method == "POST" and form.is_valid():
        try:
            services.usecase_update(actor=request.user, usecase=usecase, data=form.to_data(), note="Policies edited")
        except AttestError as exc:
            add_service_errors(request, form, exc)
        else:
            messages.success(request, "Policies saved as a new revision.")
            return redirect("usecases:detail", usecase_id=usecase.id)
    return render(request, "usecases/policies.html", {"usecase": usecase, "form": form})


@login_required
@require_POST
def usecase_transition(request: HttpRequest, usecase_id: Any) -> HttpResponse:
    usecase = _get_usecase(request, usecase_id)
    action = request.POST.get("action", "")
    try:
        usecase = services.usecase_transition(
            actor=request.user, usecase=usecase, action=action, reason=request.POST.get("reason", "")
        )
    except AttestError as exc:
        blockers = exc.details.get("blockers") if isinstance(exc.details, dict) else None
        messages.error(request, exc.message + (" " + " ".join(blockers[:5]) if blockers else ""))
    else:
        messages.success(request, f"{usecase.reference} is now {usecase.get_status_display().lower()}.")
    return redirect("usecases:detail", usecase_id=usecase.id)
