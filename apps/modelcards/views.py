"""Editing a model card's narrative; the facts beside it come from the model, its run and its evaluation."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from apps.accounts.models import Role
from apps.accounts.selectors import roles_in
from apps.core.errors import AttestError
from apps.ethics.bindings import bound_evaluation
from apps.ethics.selectors import deployment_status
from apps.modelcards.services import NARRATIVE_SECTIONS, card_prefill, current_card, modelcard_save
from apps.training.permissions import models_visible_to


@login_required
def card_edit(request: HttpRequest, model_id: Any) -> HttpResponse:
    model = get_object_or_404(models_visible_to(request.user).select_related("training_run", "usecase"), id=model_id)
    card = current_card(model)
    values = dict(card.narrative) if card else card_prefill(model)
    errors: dict[str, Any] = {}
    if request.method == "POST":
        values = {key: request.POST.get(key, "") for key in NARRATIVE_SECTIONS}
        try:
            modelcard_save(actor=request.user, model_version=model, narrative=values)
        except AttestError as exc:
            messages.error(request, exc.message)
            errors = exc.details if isinstance(exc.details, dict) else {}
        else:
            messages.success(request, "Model card saved.")
            return redirect("modelcards:edit", model_id=model.id)
    roles = roles_in(request.user, model.organisation)
    return render(
        request,
        "modelcards/edit.html",
        {
            "model": model,
            "card": card,
            "sections": [
                (key, label, values.get(key, ""), errors.get(key)) for key, label in NARRATIVE_SECTIONS.items()
            ],
            "may_edit": bool(roles & {Role.OWNER, Role.ADMIN}),
            "evaluation": bound_evaluation(model),
            "status": deployment_status(model),
            "revisions": model.card_revisions.select_related("author"),
        },
    )
