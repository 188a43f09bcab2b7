"""The board's pages: the review list, the one-page review with votes, recusal, checklist, discussion and waivers,
the board's rules, conditions and notices. Views are thin: every write is a service call."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.accounts.models import Role
from apps.accounts.selectors import roles_in
from apps.core.errors import AttestError
from apps.ethics import rules, services
from apps.ethics.models import Board, Condition, Notice, ReviewRequest, Waiver
from apps.ethics.page import review_page_context
from apps.ethics.permissions import visible_to
from apps.ethics.selectors import board_members, board_of, overdue_conditions, reviews_awaiting
from apps.training.permissions import models_visible_to


def _flash_error(request: HttpRequest, error: AttestError, near: str = "") -> None:
    details = error.details if isinstance(error.details, dict) else {}
    extra = [
        f"{k}: {'; '.join(v) if isinstance(v, list) else v}"
        for k, v in details.items()
        if k not in ("blocking", "reason", "superseded_by", "votes_needed")
    ]
    messages.error(request, error.message + (f" ({' / '.join(extra)})" if extra else ""), extra_tags=near)


def _org(request: HttpRequest) -> Any:
    return getattr(request, "organisation", None)


@login_required
def review_list(request: HttpRequest) -> HttpResponse:
    organisation = _org(request)
    reviews = (
        visible_to(request.user).filter(organisation=organisation).select_related("decision", "model_version__usecase")
    )
    status = request.GET.get("status", "")
    if status in ReviewRequest.Status.values:
        reviews = reviews.filter(status=status)
    conditions = Condition.objects.filter(organisation=organisation).select_related("owner", "decision__review")
    return render(
        request,
        "ethics/list.html",
        {
            "reviews": reviews.order_by("-created_at")[:200],
            "awaiting": reviews_awaiting(request.user, organisation) if organisation else [],
            "statuses": ReviewRequest.Status.choices,
            "status": status,
            "conditions": conditions.order_by("status", "due_on"),
            "overdue_ids": set(overdue_conditions(organisation).values_list("id", flat=True))
            if organisation
            else set(),
            "board": board_of(organisation) if organisation else None,
        },
    )


@login_required
def review_detail(request: HttpRequest, review_id: Any) -> HttpResponse:
    review = get_object_or_404(visible_to(request.user), id=review_id)
    services.notices_mark_read(actor=request.user, review=review)
    return render(request, "ethics/review.html", review_page_context(review, request.user))


def _post_action(request: HttpRequest, review: ReviewRequest, call: Any, success: str, near: str = "") -> HttpResponse:
    """Call the service and go back to the review. ``near`` names the page section whose form was sent: its error
    is shown beside that form (and the page opens there), not at the top of a long page."""
    try:
        call()
    except AttestError as exc:
        _flash_error(request, exc, near)
        successor = (exc.details or {}).get("superseded_by") if isinstance(exc.details, dict) else None
        if successor:
            return redirect("ethics:review", review_id=successor)
        if near:
            return redirect(reverse("ethics:review", args=[review.id]) + f"#section-{near}")
    else:
        messages.success(request, success)
    review.refresh_from_db()
    return redirect("ethics:review", review_id=review.id)


@login_required
@require_POST
def review_vote(request: HttpRequest, review_id: Any) -> HttpResponse:
    review = get_object_or_404(visible_to(request.user), id=review_id)
    choice = request.POST.get("choice", "")
    conditions = []
    if choice == rules.APPROVE_WITH_CONDITIONS:
        texts = request.POST.getlist("condition_text")
        owners = request.POST.getlist("condition_owner")
        dues = request.POST.getlist("condition_due")
        conditions = [
            {"text": t, "owner": o, "due": d}
            for t, o, d in zip(texts, owners, dues, strict=False)
            if t.strip() or d.strip()
        ]
    return _post_action(
        request,
        review,
        lambda: services.vote_cast(
            actor=request.user,
            review=review,
            choice=choice,
            reason=request.POST.get("reason", ""),
            conditions=conditions,
        ),
        "Your vote is recorded.",
        near="votes",
    )


@login_required
@require_POST
def review_recuse(request: HttpRequest, review_id: Any) -> HttpResponse:
    review = get_object_or_404(visible_to(request.user), id=review_id)
    return _post_action(
        request,
        review,
        lambda: services.review_recuse(actor=request.user, review=review, reason=request.POST.get("reason", "")),
        "Your conflict of interest is recorded; you take no part in this review.",
        near="votes",
    )


@login_required
@require_POST
def review_close(request: HttpRequest, review_id: Any) -> HttpResponse:
    review = get_object_or_404(visible_to(request.user), id=review_id)
    return _post_action(
        request,
        review,
        lambda: services.review_close(actor=request.user, review=review),
        "The review is closed and the decision recorded.",
        near="votes",
    )


@login_required
@require_POST
def review_comment(request: HttpRequest, review_id: Any) -> HttpResponse:
    review = get_object_or_404(visible_to(request.user), id=review_id)
    section = request.POST.get("section", "")
    response = _post_action(
        request,
        review,
        lambda: services.comment_add(
            actor=request.user, review=review, section=section, body=request.POST.get("body", "")
        ),
        "Comment added.",
    )
    response["Location"] += f"#section-{section}"
    return response


@login_required
@require_POST
def review_answers(request: HttpRequest, review_id: Any) -> HttpResponse:
    review = get_object_or_404(visible_to(request.user), id=review_id)
    answers = {
        item["key"]: {
            "answer": request.POST.get(f"answer_{item['key']}", ""),
            "note": request.POST.get(f"note_{item['key']}", ""),
        }
        for item in review.checklist
        if request.POST.get(f"answer_{item['key']}")
    }
    return _post_action(
        request,
        review,
        lambda: services.review_answer_checklist(actor=request.user, review=review, answers=answers),
        "Checklist answers saved.",
    )


@login_required
@require_POST
def review_stance(request: HttpRequest, review_id: Any) -> HttpResponse:
    review = get_object_or_404(visible_to(request.user), id=review_id)
    return _post_action(
        request,
        review,
        lambda: services.checklist_take_stance(
            actor=request.user,
            review=review,
            item_key=request.POST.get("item_key", ""),
            stance=request.POST.get("stance", ""),
            note=request.POST.get("note", ""),
        ),
        "Your view of the answer is recorded.",
    )


@login_required
@require_POST
def waiver_request(request: HttpRequest, review_id: Any) -> HttpResponse:
    review = get_object_or_404(visible_to(request.user), id=review_id)

    def call() -> None:
        try:
            expires = date.fromisoformat(request.POST.get("expires_on", ""))
        except ValueError:
            raise AttestError("invalid", "Give the waiver's expiry date.", {"expires_on": ["a date"]}) from None
        services.waiver_request(
            actor=request.user, review=review, justification=request.POST.get("justification", ""), expires_on=expires
        )

    return _post_action(request, review, call, "The waiver request is open for the board's votes.", near="waivers")


@login_required
@require_POST
def waiver_vote(request: HttpRequest, waiver_id: Any) -> HttpResponse:
    waiver = get_object_or_404(Waiver.objects.filter(review__in=visible_to(request.user)), id=waiver_id)
    return _post_action(
        request,
        waiver.review,
        lambda: services.waiver_vote(
            actor=request.user,
            waiver=waiver,
            choice=request.POST.get("choice", ""),
            reason=request.POST.get("reason", ""),
        ),
        "Your vote on the waiver is recorded.",
        near="waivers",
    )


@login_required
@require_POST
def condition_met(request: HttpRequest, condition_id: Any) -> HttpResponse:
    condition = get_object_or_404(
        Condition.objects.filter(decision__review__in=visible_to(request.user)), id=condition_id
    )
    try:
        services.condition_mark_met(actor=request.user, condition=condition, note=request.POST.get("note", ""))
    except AttestError as exc:
        _flash_error(request, exc)
    else:
        messages.success(request, "The condition is recorded as met.")
    return redirect("ethics:list")


@login_required
@require_POST
def request_deployment(request: HttpRequest, model_id: Any) -> HttpResponse:
    model = get_object_or_404(models_visible_to(request.user), id=model_id)
    try:
        review = services.review_request_deployment(actor=request.user, model_version=model)
    except AttestError as exc:
        _flash_error(request, exc)
        return redirect("training:run", run_id=model.training_run_id)
    messages.success(request, f"{review.reference} is open: the board has been told.")
    return redirect("ethics:review", review_id=review.id)


@login_required
def board_settings(request: HttpRequest) -> HttpResponse:
    organisation = _org(request)
    if organisation is None:
        return redirect("dashboard")
    board = board_of(organisation)
    is_admin = Role.ADMIN in roles_in(request.user, organisation)
    errors: dict[str, Any] = {}
    if request.method == "POST":
        texts = request.POST.getlist("item_text")
        keys = request.POST.getlist("item_key")
        sources = request.POST.getlist("item_source")
        checklist = [
            {"key": k, "text": t, "source": s} for k, t, s in zip(keys, texts, sources, strict=False) if t.strip()
        ]
        data = {
            "quorum": request.POST.get("quorum"),
            "approval_threshold": request.POST.get("approval_threshold"),
            "chair": request.POST.get("chair", ""),
            "vote_days": request.POST.get("vote_days"),
            "decides": request.POST.get("decides", ""),
            "checklist": checklist,
        }
        try:
            services.board_update(actor=request.user, organisation=organisation, data=data)
        except AttestError as exc:
            _flash_error(request, exc)
            errors = exc.details if isinstance(exc.details, dict) else {}
        else:
            messages.success(request, "The board's rules are saved.")
            return redirect("ethics:board")
    return render(
        request,
        "ethics/board.html",
        {
            "board": board,
            "members": board_members(organisation),
            "is_admin": is_admin,
            "errors": errors,
            "decides_choices": Board.Decides.choices,
        },
    )


@login_required
def notices(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        try:
            services.notices_mark_read(actor=request.user)
        except AttestError as exc:
            _flash_error(request, exc)
        return redirect("ethics:notices")
    items = Notice.objects.filter(user=request.user).select_related("organisation")[:200]
    return render(request, "ethics/notices.html", {"notices": items})
