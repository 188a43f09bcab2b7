"""HTML pages of third-party models: thin glue between forms, services and templates."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from apps.accounts.middleware import organisation_or_404
from apps.core.errors import AttestError
from apps.core.forms import add_service_errors
from apps.thirdparty import services
from apps.thirdparty.forms import DocumentationForm, StatusForm, ThirdPartyModelForm
from apps.thirdparty.models import ThirdPartyModel
from apps.thirdparty.permissions import can, may_record_for, visible_to
from apps.thirdparty.selectors import needing_attention, review_overdue, third_party_models_for
from apps.usecases.models import UseCase
from apps.usecases.permissions import visible_to as usecases_visible_to


def _recordable_usecases(request: HttpRequest) -> list[UseCase]:
    usecases = (
        usecases_visible_to(request.user)
        .filter(organisation=organisation_or_404(request))
        .exclude(status=UseCase.Status.RETIRED)
        .select_related("organisation")
        .order_by("reference")
    )
    return [usecase for usecase in usecases if may_record_for(request.user, usecase)]


@login_required
def model_list(request: HttpRequest) -> HttpResponse:
    organisation = organisation_or_404(request)
    status = request.GET.get("status") or None
    if status not in ThirdPartyModel.Status.values:
        status = None
    attention = request.GET.get("attention") == "1"
    queryset = third_party_models_for(request.user, organisation, status)
    models = list(needing_attention(queryset) if attention else queryset)
    return render(
        request,
        "thirdparty/list.html",
        {
            "rows": [{"model": model, "overdue": review_overdue(model)} for model in models],
            "status": status,
            "attention": attention,
            "statuses": ThirdPartyModel.Status.choices,
            "can_create": bool(_recordable_usecases(request)),
        },
    )


@login_required
def model_create(request: HttpRequest) -> HttpResponse:
    usecases = _recordable_usecases(request)
    if not usecases:
        messages.error(request, "Only a use case's owner or an org admin records its third-party models.")
        return redirect("thirdparty:list")
    choices = [(str(u.id), f"{u.reference} {u.title}") for u in usecases]
    initial = {"usecase": request.GET.get("usecase", ""), "kind": ThirdPartyModel.Kind.VENDOR}
    form = ThirdPartyModelForm(request.POST or None, usecases=choices, initial=initial)
    if request.method == "POST" and form.is_valid():
        usecase = next(u for u in usecases if str(u.id) == form.cleaned_data["usecase"])
        try:
            model = services.thirdparty_register(actor=request.user, usecase=usecase, data=form.to_data())
        except AttestError as exc:
            add_service_errors(request, form, exc)
        else:
            messages.success(request, f"{model} recorded. Next: record the documentation the supplier gave you.")
            return redirect("thirdparty:detail", model_id=model.id)
    return render(request, "thirdparty/form.html", {"form": form, "model": None})


def _get_model(request: HttpRequest, model_id: Any) -> ThirdPartyModel:
    return get_object_or_404(visible_to(request.user).select_related("created_by", "usecase__owner"), id=model_id)


@login_required
def model_detail(request: HttpRequest, model_id: Any) -> HttpResponse:
    model = _get_model(request, model_id)
    may_change = can(request.user, "change", model) and model.status != ThirdPartyModel.Status.RETIRED
    return render(
        request,
        "thirdparty/detail.html",
        {
            "model": model,
            "overdue": review_overdue(model),
            "may_change": may_change,
            "documentation_form": DocumentationForm(),
            "status_form": StatusForm(initial={"status": model.status}),
            "status_choices": [c for c in ThirdPartyModel.Status.choices if c[0] != model.status],
        },
    )


@login_required
def model_edit(request: HttpRequest, model_id: Any) -> HttpResponse:
    model = _get_model(request, model_id)
    if not can(request.user, "change", model):
        messages.error(request, "Only the use case's owner or an org admin changes its third-party models.")
        return redirect("thirdparty:detail", model_id=model.id)
    form = ThirdPartyModelForm(request.POST or None, initial=ThirdPartyModelForm.initial_from(model))
    if request.method == "POST" and form.is_valid():
        try:
            services.thirdparty_update(actor=request.user, model=model, data=form.to_data())
        except AttestError as exc:
            add_service_errors(request, form, exc)
        else:
            messages.success(
                request, "Saved. Open reviews of the use case restart if they were bound to the old details."
            )
            return redirect("thirdparty:detail", model_id=model.id)
    return render(request, "thirdparty/form.html", {"form": form, "model": model})


@login_required
@require_POST
def model_documentation(request: HttpRequest, model_id: Any) -> HttpResponse:
    model = _get_model(request, model_id)
    form = DocumentationForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(
            request, "Check the documentation form: " + "; ".join(e for errs in form.errors.values() for e in errs)
        )
        return redirect("thirdparty:detail", model_id=model.id)
    upload = form.cleaned_data.get("file")
    try:
        services.thirdparty_record_documentation(
            actor=request.user,
            model=model,
            content=upload.read() if upload else None,
            file_name=upload.name if upload else "",
            url=form.cleaned_data.get("url") or "",
            sha256=form.cleaned_data.get("sha256") or "",
            received_on=form.cleaned_data.get("received_on"),
        )
    except AttestError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Documentation recorded with its sha256.")
    return redirect("thirdparty:detail", model_id=model.id)


@login_required
@require_POST
def model_status(request: HttpRequest, model_id: Any) -> HttpResponse:
    model = _get_model(request, model_id)
    form = StatusForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a status and say why.")
        return redirect("thirdparty:detail", model_id=model.id)
    try:
        services.thirdparty_set_status(
            actor=request.user, model=model, status=form.cleaned_data["status"], reason=form.cleaned_data["reason"]
        )
    except AttestError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Status changed.")
    return redirect("thirdparty:detail", model_id=model.id)
