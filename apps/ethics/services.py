"""The ethics board's writes: board rules, opening reviews bound to artifact hashes, votes, recusals, decisions,
conditions, waivers, checklist stances, comments, supersession and notices. Each function writes one audit event.

Separation of duties lives here, not in the templates: whoever owns the use case, stewards its data, launched the
training or requested the review cannot vote on it, whatever the page shows.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from apps.accounts.models import Membership, Organisation, Role, User
from apps.accounts.selectors import roles_in
from apps.audit.services import audit_record
from apps.core.errors import AttestError, InvalidState, NotFound, PermissionDenied, ValidationFailed
from apps.ethics import rules
from apps.ethics.bindings import bindings_for, bound_evaluation, changed_artifacts
from apps.ethics.models import (
    ApprovalRevocation,
    Board,
    ChecklistStance,
    Comment,
    Condition,
    Decision,
    Notice,
    Recusal,
    ReviewRequest,
    Vote,
    Waiver,
    WaiverVote,
)
from apps.ethics.notices import notify
from apps.ethics.permissions import can
from apps.ethics.selectors import board_members, board_of, conflicts_of, review_state, unwaived
from apps.training.models import ModelVersion
from apps.usecases.models import UseCase

SECTIONS = ["summary", "usecase", "datasets", "privacy", "evaluation", "modelcard", "checklist"]
CHECKLIST_ANSWERS = ("yes", "no", "n/a")
MAX_WAIVER_DAYS = 366


# ---------------------------------------------------------------------------------------------------------- notices


def notices_mark_read(*, actor: User, notice_ids: list[Any] | None = None, review: ReviewRequest | None = None) -> int:
    """Mark the actor's notices read (all of them, or those given, or those of one review). Nothing to mark, no event."""
    notices = Notice.objects.filter(user=actor, read_at__isnull=True)
    if notice_ids is not None:
        notices = notices.filter(id__in=notice_ids)
    if review is not None:
        notices = notices.filter(review=review)
    with transaction.atomic():
        # Each organisation's chain records its own notices (a platform event would show in no one's trail).
        per_organisation = dict(
            notices.values("organisation_id").annotate(n=Count("id")).values_list("organisation_id", "n")
        )
        count = notices.update(read_at=timezone.now())
        for organisation_id, read in sorted(per_organisation.items(), key=lambda item: str(item[0])):
            audit_record(
                actor=actor,
                organisation=organisation_id,
                action="notice.read",
                object_type="ethics.notice",
                after={"count": read, "review": str(review.id) if review else None},
            )
    return count


# ------------------------------------------------------------------------------------------------------------ board


def _normalise_checklist(items: Any) -> list[dict[str, str]]:
    if not isinstance(items, list) or not items:
        raise ValidationFailed("The checklist needs at least one item.", {"checklist": ["empty"]})
    result, keys = [], set()
    for position, item in enumerate(items, start=1):
        text = str((item or {}).get("text", "")).strip() if isinstance(item, dict) else ""
        if not text:
            raise ValidationFailed(f"Checklist item {position} has no text.", {"checklist": [f"item {position}"]})
        key = str(item.get("key") or f"item{position}").strip()[:40]
        if key in keys:
            raise ValidationFailed(f"Checklist key {key!r} is used twice.", {"checklist": [key]})
        keys.add(key)
        result.append({"key": key, "text": text[:500], "source": str(item.get("source", "")).strip()[:200]})
    return result


def board_update(*, actor: User, organisation: Organisation, data: dict[str, Any]) -> Board:
    """Change the board's rules (org admins only). Open reviews are judged by the rules in force when votes land."""
    if not roles_in(actor, organisation):
        raise NotFound()
    if Role.ADMIN not in roles_in(actor, organisation):
        raise PermissionDenied("Only org admins change the board's rules.")
    board = board_of(organisation)
    before = {
        "quorum": board.quorum,
        "approval_threshold": board.approval_threshold,
        "chair": str(board.chair_id or ""),
        "vote_days": board.vote_days,
        "decides": board.decides,
        "checklist": board.checklist,
    }
    errors: dict[str, list[str]] = {}
    quorum = data.get("quorum", board.quorum)
    threshold = data.get("approval_threshold", board.approval_threshold)
    vote_days = data.get("vote_days", board.vote_days)
    decides = data.get("decides") or board.decides
    if decides not in Board.Decides.values:
        errors["decides"] = [f"One of: {', '.join(Board.Decides.labels)}."]
    try:
        quorum = int(quorum)
        if quorum < 1:
            errors["quorum"] = ["At least one vote must be cast."]
    except (TypeError, ValueError):
        errors["quorum"] = ["A whole number."]
    try:
        threshold = float(threshold)
        if not 0.5 <= threshold <= 1.0:
            errors["approval_threshold"] = ["Between 0.5 (a majority) and 1 (unanimity)."]
    except (TypeError, ValueError):
        errors["approval_threshold"] = ["A number between 0.5 and 1."]
    try:
        vote_days = int(vote_days)
        if not 1 <= vote_days <= 90:
            errors["vote_days"] = ["Between 1 and 90 days."]
    except (TypeError, ValueError):
        errors["vote_days"] = ["A whole number of days."]
    chair = board.chair
    if "chair" in data:
        chair = None
        if data["chair"]:
            chair = next((m for m in board_members(organisation) if str(m.id) == str(data["chair"])), None)
            if chair is None:
                errors["chair"] = ["The chair must be a member of the board."]
    checklist = board.checklist
    if "checklist" in data:
        try:
            checklist = _normalise_checklist(data["checklist"])
        except ValidationFailed as exc:
            errors.update(exc.details)
    if not errors and quorum > len(board_members(organisation)):
        errors["quorum"] = [f"The board has {len(board_members(organisation))} members; quorum cannot exceed that."]
    if errors:
        raise ValidationFailed("The board's rules were not changed.", errors)
    with transaction.atomic():
        board = Board.objects.select_for_update().get(pk=board.pk)
        board.quorum, board.approval_threshold, board.chair = quorum, threshold, chair
        board.vote_days, board.checklist, board.decides = vote_days, checklist, decides
        board.save()
        audit_record(
            actor=actor,
            organisation=organisation,
            action="board.update",
            target=board,
            before=before,
            after={
                "quorum": quorum,
                "approval_threshold": threshold,
                "chair": str(chair.id) if chair else "",
                "vote_days": vote_days,
                "decides": decides,
                "checklist": checklist,
            },
        )
    return board


# ---------------------------------------------------------------------------------------------------------- reviews


def _next_reference(organisation: Organisation) -> str:
    count = ReviewRequest.objects.filter(organisation=organisation).count()
    return f"RV-{count + 1:04d}"


def _normalise_answers(review_checklist: list[dict[str, Any]], answers: dict[str, Any] | None) -> dict[str, Any]:
    keys = {item["key"] for item in review_checklist}
    result: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for key, value in (answers or {}).items():
        if key not in keys:
            errors[key] = ["not an item of this checklist"]
            continue
        value = value if isinstance(value, dict) else {"answer": value}
        answer = str(value.get("answer", "")).strip().lower()
        if answer not in CHECKLIST_ANSWERS:
            errors[key] = [f"answer one of {', '.join(CHECKLIST_ANSWERS)}"]
            continue
        note = str(value.get("note", "")).strip()[:2000]
        if answer == "no" and not note:
            errors[key] = ["explain a 'no'"]
            continue
        result[key] = {"answer": answer, "note": note}
    if errors:
        raise ValidationFailed("Some checklist answers are not valid.", errors)
    return result


def _create_review(
    *,
    actor: User,
    usecase: UseCase,
    model_version: ModelVersion | None,
    answers: dict[str, Any] | None,
    previous: ReviewRequest | None = None,
) -> ReviewRequest:
    board = board_of(usecase.organisation)
    bindings, digest = bindings_for(usecase, model_version)
    checklist = previous.checklist if previous else [dict(item) for item in board.checklist]
    return ReviewRequest.objects.create(
        organisation=usecase.organisation,
        reference=_next_reference(usecase.organisation),
        kind=ReviewRequest.Kind.DEPLOYMENT if model_version else ReviewRequest.Kind.DEVELOPMENT,
        usecase=usecase,
        model_version=model_version,
        requested_by=actor,
        bindings=bindings,
        bindings_sha256=digest,
        checklist=checklist,
        answers=_normalise_answers(checklist, answers) if answers else (previous.answers if previous else {}),
        due_at=timezone.now() + timedelta(days=board.vote_days),
        previous=previous,
    )


def _announce(review: ReviewRequest, message: str, kind: str) -> None:
    state = review_state(review)
    notify(state.eligible, organisation=review.organisation, review=review, kind=kind, message=message)


def review_open_development(*, actor: User, usecase: UseCase) -> ReviewRequest:
    """Open the development-approval review of a submitted use case. A step of the submission, not a service of its
    own: it writes no audit event, and the submission's one event (``usecase.submit``) names the review and its
    bindings, as a service's event names the job it queues."""
    if usecase.status != UseCase.Status.SUBMITTED:
        raise InvalidState("Only a submitted use case goes to the board.")
    with transaction.atomic():
        review = _create_review(actor=actor, usecase=usecase, model_version=None, answers=None)
        UseCase.objects.filter(pk=usecase.pk).update(status=UseCase.Status.IN_REVIEW, updated_at=timezone.now())
        _announce(
            review,
            f"{review.reference}: development approval of {usecase.reference} {usecase.title} is "
            f"open for your vote until {review.due_at:%d %b %Y}.",
            "review_open",
        )
    return review


def review_request_deployment(
    *, actor: User, model_version: ModelVersion, answers: dict[str, Any] | None = None
) -> ReviewRequest:
    """Ask the board to approve a model version for deployment, bound to the exact artifacts it will read."""
    from apps.modelcards.services import current_card, modelcard_prefill_first

    organisation = model_version.organisation
    roles = roles_in(actor, organisation)
    if not roles:
        raise NotFound()
    usecase = model_version.usecase
    if not (Role.ADMIN in roles or (Role.OWNER in roles and usecase.owner_id == actor.id)):
        raise PermissionDenied("Only the use case's owner or an org admin requests a deployment review.")
    if model_version.non_private:
        raise InvalidState("A non-private baseline is for comparison only and is never deployed.")
    if usecase.status not in (UseCase.Status.APPROVED, UseCase.Status.IN_PRODUCTION):
        raise InvalidState("The use case must be approved for development before its model is reviewed.")
    if bound_evaluation(model_version) is None:
        raise InvalidState("The model has no finished evaluation on its held-out rows yet.")
    if model_version.reviews.filter(status=ReviewRequest.Status.OPEN).exists():
        raise InvalidState("A deployment review of this model is already open.")
    with transaction.atomic():
        if current_card(model_version) is None:
            # The prefilled card becomes revision 1: a step of this request, bound (and so named) by its event.
            modelcard_prefill_first(actor=actor, model_version=model_version)
        review = _create_review(actor=actor, usecase=usecase, model_version=model_version, answers=answers)
        _announce(
            review,
            f"{review.reference}: deployment approval of {model_version} is open for your vote "
            f"until {review.due_at:%d %b %Y}.",
            "review_open",
        )
        audit_record(
            actor=actor,
            organisation=organisation,
            action="review.open",
            target=review,
            after={
                "kind": review.kind,
                "model_version": str(model_version.id),
                "model_sha256": model_version.sha256,
                "bindings": review.bindings,
                "bindings_sha256": review.bindings_sha256,
            },
        )
    return review


def review_answer_checklist(*, actor: User, review: ReviewRequest, answers: dict[str, Any]) -> ReviewRequest:
    """The requester (or the use case's owner or an admin) answers the checklist while the review is open."""
    if not roles_in(actor, review.organisation):
        raise NotFound()
    if not can(actor, "answer", review):
        raise PermissionDenied("The requester answers the checklist; reviewers confirm or dispute the answers.")
    with transaction.atomic():
        locked = ReviewRequest.objects.select_for_update().get(pk=review.pk)
        if locked.status != ReviewRequest.Status.OPEN:
            raise InvalidState("The review is no longer open.")
        merged = dict(locked.answers)
        merged.update(_normalise_answers(locked.checklist, answers))
        before = locked.answers
        locked.answers = merged
        locked.save(update_fields=["answers", "updated_at"])
        audit_record(
            actor=actor,
            organisation=locked.organisation,
            action="review.answer",
            target=locked,
            before=before,
            after=merged,
        )
    return locked


def _member_may_take_part(actor: User, review: ReviewRequest) -> None:
    """Raise unless ``actor`` is a board member without conflict or recusal on this review."""
    roles = roles_in(actor, review.organisation)
    if not roles:
        raise NotFound()
    if Role.BOARD not in roles:
        raise PermissionDenied("Only members of the ethics board vote.")
    reason = conflicts_of(review).get(actor.id)
    if reason:
        raise AttestError(
            "separation_of_duties",
            f"Separation of duties: you cannot take part in this review because you {reason}.",
            {"reason": reason},
        )
    if review.recusals.filter(member=actor).exists():
        raise AttestError("separation_of_duties", "You declared a conflict of interest and are recused.")


def _stale(review: ReviewRequest) -> bool:
    _, digest = bindings_for(review.usecase, review.model_version)
    return digest != review.bindings_sha256


def _refuse_if_stale(review: ReviewRequest, actor: User) -> None:
    if review.status == ReviewRequest.Status.OPEN and _stale(review):
        successors = reviews_supersede_stale(usecase=review.usecase, actor=actor)
        successor = next((s for s in successors if s.previous_id == review.id), None)
        raise InvalidState(
            "What this review was bound to has changed, so it was superseded and votes start again"
            + (f" in {successor.reference}." if successor else "."),
            {"superseded_by": str(successor.id) if successor else None},
        )


def _parse_conditions(review: ReviewRequest, conditions: Any) -> list[dict[str, Any]]:
    if not isinstance(conditions, list) or not conditions:
        raise ValidationFailed(
            "Approving with conditions needs at least one condition.",
            {"conditions": ["Give each condition a text, an owner and a due date."]},
        )
    members = {str(m.user_id) for m in Membership.objects.filter(organisation=review.organisation)}
    result, errors = [], {}
    today = timezone.localdate()
    for position, item in enumerate(conditions, start=1):
        item = item if isinstance(item, dict) else {}
        text = str(item.get("text", "")).strip()
        owner = str(item.get("owner", "")).strip()
        try:
            due = date.fromisoformat(str(item.get("due", "")))
        except ValueError:
            due = None
        problems = []
        if not text:
            problems.append("say what must be done")
        if owner not in members:
            problems.append("the owner must be a member of the organisation")
        if due is None or due <= today:
            problems.append("the due date must be a date after today")
        if problems:
            errors[f"conditions[{position}]"] = problems
        else:
            result.append({"text": text[:2000], "owner": owner, "due": due.isoformat()})
    if errors:
        raise ValidationFailed("Some conditions are incomplete.", errors)
    return result


def vote_cast(
    *, actor: User, review: ReviewRequest, choice: str, reason: str, conditions: list[dict[str, Any]] | None = None
) -> Vote:
    """Cast one member's vote. The review row is locked, so two last votes landing together are counted one after
    the other and produce exactly one decision."""
    if choice not in rules.VOTE_CHOICES:
        raise ValidationFailed("Unknown vote.", {"choice": [f"one of {', '.join(rules.VOTE_CHOICES)}"]})
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("Give the reason for your vote.", {"reason": ["A written reason is required."]})
    _refuse_if_stale(review, actor)
    with transaction.atomic():
        locked = (
            ReviewRequest.objects.select_for_update(of=("self",))
            .select_related("usecase", "model_version")
            .get(pk=review.pk)
        )
        if locked.status != ReviewRequest.Status.OPEN:
            raise InvalidState(f"The review is {locked.get_status_display().lower()}; votes are closed.")
        _member_may_take_part(actor, locked)
        if locked.votes.filter(voter=actor).exists():
            raise InvalidState("You have already voted on this review; votes are final.")
        parsed = []
        if choice == rules.APPROVE_WITH_CONDITIONS:
            parsed = _parse_conditions(locked, conditions)
        if choice in (rules.APPROVE, rules.APPROVE_WITH_CONDITIONS):
            # No waiver covers this: the stated guarantee is simply not true for such a model.
            if locked.model_version is not None and locked.model_version.noise_is_seeded:
                raise AttestError(
                    "seeded_noise",
                    f"{locked.model_version} cannot be approved: {locked.model_version.privacy_warning}",
                    {"model_version": str(locked.model_version_id)},
                    status=409,
                )
            blocking = unwaived(locked)
            if blocking:
                raise AttestError(
                    "gate_failed",
                    "This model has policy gates that fail or cannot be evaluated, and no waiver in force covers "
                    "them, so it cannot be approved: "
                    + "; ".join(item["label"] for item in blocking)
                    + ". Request a waiver, or vote otherwise.",
                    {"blocking": blocking},
                    status=409,
                )
        vote = Vote.objects.create(review=locked, voter=actor, choice=choice, reason=reason[:5000], conditions=parsed)
        state = review_state(locked)
        decision = None
        if state.deciding_outcome is not None:
            decision = _decide(locked, state.deciding_outcome, state, closed_by=None)
        audit_record(
            actor=actor,
            organisation=locked.organisation,
            action="review.vote",
            target=locked,
            after={
                "choice": choice,
                "reason": vote.reason,
                "conditions": parsed,
                "tally": state.tally.counts,
                "bindings_sha256": locked.bindings_sha256,
                "decision": _decision_summary(decision) if decision else None,
            },
        )
    return vote


def review_recuse(*, actor: User, review: ReviewRequest, reason: str) -> Recusal:
    """A member declares a conflict of interest and leaves this review (and its waivers)."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("Describe the conflict of interest.", {"reason": ["required"]})
    with transaction.atomic():
        locked = ReviewRequest.objects.select_for_update().get(pk=review.pk)
        roles = roles_in(actor, locked.organisation)
        if not roles:
            raise NotFound()
        if Role.BOARD not in roles:
            raise PermissionDenied("Only members of the ethics board recuse themselves.")
        if locked.status != ReviewRequest.Status.OPEN:
            raise InvalidState("The review is no longer open.")
        if locked.votes.filter(voter=actor).exists():
            raise InvalidState("You have voted already; a conflict must be declared before voting.")
        recusal, created = Recusal.objects.get_or_create(review=locked, member=actor, defaults={"reason": reason})
        if not created:
            raise InvalidState("You are already recused from this review.")
        state = review_state(locked)
        decision = None
        if state.deciding_outcome is not None and locked.votes.exists():
            decision = _decide(locked, state.deciding_outcome, state, closed_by=None)
        audit_record(
            actor=actor,
            organisation=locked.organisation,
            action="review.recuse",
            target=locked,
            after={"reason": reason, "decision": _decision_summary(decision) if decision else None},
        )
    return recusal


def review_close(*, actor: User, review: ReviewRequest) -> Decision:
    """The chair closes a review once quorum is met; the votes cast decide."""
    if not roles_in(actor, review.organisation):
        raise NotFound()
    if not can(actor, "close", review):
        raise PermissionDenied("Only the board's chair closes a review.")
    _refuse_if_stale(review, actor)
    with transaction.atomic():
        locked = ReviewRequest.objects.select_for_update().get(pk=review.pk)
        if locked.status != ReviewRequest.Status.OPEN:
            raise InvalidState("The review is no longer open.")
        state = review_state(locked)
        if state.current_outcome is None:
            raise InvalidState(
                f"Quorum is not met: {state.tally.cast} of {state.rules.quorum} votes cast. The chair may close "
                "only once quorum is reached.",
                {"votes_needed": state.votes_needed},
            )
        decision = _decide(locked, state.current_outcome, state, closed_by=actor)
        audit_record(
            actor=actor,
            organisation=locked.organisation,
            action="review.close",
            target=locked,
            after=_decision_summary(decision),
        )
    return decision


def _decision_summary(decision: Decision) -> dict[str, Any]:
    return {
        "id": str(decision.id),
        "outcome": decision.outcome,
        "tally": decision.tally,
        "quorum": decision.quorum,
        "approval_threshold": decision.approval_threshold,
        "bindings_sha256": decision.bindings_sha256,
        "conditions": [
            {"text": c.text, "owner": str(c.owner_id), "due": c.due_on.isoformat()} for c in decision.conditions.all()
        ],
        "waivers": decision.waivers,
    }


def _decide(review: ReviewRequest, outcome: str, state: Any, *, closed_by: User | None) -> Decision:
    """Record the decision (inside the caller's locked transaction) and apply it to the use case."""
    from apps.usecases.services import usecase_apply_decision

    if outcome in (rules.APPROVED, rules.APPROVED_WITH_CONDITIONS) and state.blocking:
        raise AttestError(
            "gate_failed",
            "Gates that fail or cannot be evaluated block approval until a waiver is in force.",
            {"blocking": state.blocking},
            status=409,
        )
    decision = Decision.objects.create(
        review=review,
        outcome=outcome,
        tally={
            "counts": state.tally.counts,
            "cast": state.tally.cast,
            "eligible": len(state.eligible),
            "recused": len(state.recused),
            "approval_share": state.tally.share,
        },
        quorum=state.rules.quorum,
        approval_threshold=state.rules.threshold,
        bindings_sha256=review.bindings_sha256,
        closed_by=closed_by,
        waivers=[
            {
                "id": str(w.id),
                "waived": w.waived,
                "expires_on": w.expires_on.isoformat(),
                "justification": w.justification,
            }
            for w in state.waivers_in_force
        ],
    )
    if outcome == rules.APPROVED_WITH_CONDITIONS:
        for vote in review.votes.filter(choice=rules.APPROVE_WITH_CONDITIONS):
            for item in vote.conditions:
                Condition.objects.create(
                    decision=decision,
                    organisation=review.organisation,
                    text=item["text"],
                    owner_id=item["owner"],
                    due_on=date.fromisoformat(item["due"]),
                    proposed_by=vote.voter,
                )
    review.status = ReviewRequest.Status.DECIDED
    review.save(update_fields=["status", "updated_at"])
    Waiver.objects.filter(review=review, status=Waiver.Status.OPEN).update(
        status=Waiver.Status.WITHDRAWN, decided_at=timezone.now()
    )
    if review.kind == ReviewRequest.Kind.DEVELOPMENT:
        usecase_apply_decision(usecase=review.usecase, outcome=outcome)
    people = state.members + [review.requested_by, review.usecase.owner]
    notify(
        people,
        organisation=review.organisation,
        review=review,
        kind="decided",
        message=f"{review.reference} decided: {decision.get_outcome_display().lower()} "
        f"({review.get_kind_display().lower()} of {review.model_version or review.usecase}).",
    )
    return decision


def reviews_supersede_stale(*, usecase: UseCase, actor: User | None) -> list[ReviewRequest]:
    """Supersede every open review of the use case whose bound artifacts changed; each successor starts its votes
    afresh with the same checklist answers, and the board is told what changed."""
    successors = []
    for review in ReviewRequest.objects.filter(usecase=usecase, status=ReviewRequest.Status.OPEN):
        with transaction.atomic():
            locked = (
                ReviewRequest.objects.select_for_update(of=("self",))
                .select_related("usecase", "model_version")
                .get(pk=review.pk)
            )
            if locked.status != ReviewRequest.Status.OPEN:
                continue
            bindings, digest = bindings_for(locked.usecase, locked.model_version)
            if digest == locked.bindings_sha256:
                continue
            changed = changed_artifacts(locked.bindings, bindings)
            locked.status = ReviewRequest.Status.SUPERSEDED
            locked.superseded_reason = "Changed since the review opened: " + ", ".join(changed)
            locked.save(update_fields=["status", "superseded_reason", "updated_at"])
            # Waivers are voted for the artifacts of one review: a changed model needs its waivers voted again.
            locked.waivers.filter(status=Waiver.Status.OPEN).update(
                status=Waiver.Status.WITHDRAWN, decided_at=timezone.now()
            )
            successor = _create_review(
                actor=locked.requested_by,
                usecase=locked.usecase,
                model_version=locked.model_version,
                answers=None,
                previous=locked,
            )
            _announce(
                successor,
                f"{locked.reference} was superseded by {successor.reference} because "
                f"{', '.join(changed)} changed; votes start again.",
                "superseded",
            )
            audit_record(
                actor=actor,
                organisation=locked.organisation,
                action="review.supersede",
                target=locked,
                before={"bindings": locked.bindings, "bindings_sha256": locked.bindings_sha256},
                after={
                    "successor": str(successor.id),
                    "changed": changed,
                    "bindings": bindings,
                    "bindings_sha256": digest,
                },
            )
            successors.append(successor)
    return successors


def approval_revoke(*, actor: User, review: ReviewRequest, reason: str) -> ApprovalRevocation:
    """The chair or an org admin withdraws the board's approval of a model for deployment. The Decision stays as it
    was taken (it is immutable); the revocation is its own row, and from now on the model may not be deployed
    (``apps.deployments.selectors.approval_blockers``). Deployments already running are not stopped here: their
    owners are told, and the governance check raises an alert on each."""
    roles = roles_in(actor, review.organisation)
    if not roles:
        raise NotFound()
    if Role.ADMIN not in roles and board_of(review.organisation).chair_id != actor.id:
        raise PermissionDenied("Only the board's chair or an org admin revokes an approval.")
    reason = (reason or "").strip()
    if len(reason) < 10:
        raise ValidationFailed("Say why the approval is revoked.", {"reason": ["A reason of a sentence or more."]})
    with transaction.atomic():
        locked = (
            ReviewRequest.objects.select_for_update(of=("self",))
            .select_related("usecase", "model_version")
            .get(pk=review.pk)
        )
        decision = Decision.objects.filter(review=locked).first()
        if locked.kind != ReviewRequest.Kind.DEPLOYMENT or decision is None or not decision.approved:
            raise InvalidState("Only a deployment review the board approved can have its approval revoked.")
        if ApprovalRevocation.objects.filter(decision=decision).exists():
            raise InvalidState("This approval is already revoked.")
        revocation = ApprovalRevocation.objects.create(
            decision=decision, organisation=locked.organisation, revoked_by=actor, reason=reason[:5000]
        )
        notify(
            board_members(locked.organisation) + [locked.requested_by, locked.usecase.owner],
            organisation=locked.organisation,
            review=locked,
            kind="approval_revoked",
            message=f"{locked.reference}: the approval of {locked.model_version} for deployment was revoked.",
        )
        audit_record(
            actor=actor,
            organisation=locked.organisation,
            action="review.approval_revoke",
            target=locked,
            after={"decision": str(decision.id), "revocation": str(revocation.id), "reason": revocation.reason},
        )
    return revocation


# ---------------------------------------------------------------------------------------------------------- waivers


def waiver_request(*, actor: User, review: ReviewRequest, justification: str, expires_on: date) -> Waiver:
    """Ask the board to waive the failing gates of a deployment review until a date; it is voted on like a review."""
    if not roles_in(actor, review.organisation):
        raise NotFound()
    if not can(actor, "request_waiver", review):
        raise PermissionDenied("The use case's owner, an admin or a board member requests waivers.")
    justification = (justification or "").strip()
    errors: dict[str, list[str]] = {}
    if len(justification) < 20:
        errors["justification"] = ["Justify the waiver in a sentence or more."]
    today = timezone.localdate()
    if not isinstance(expires_on, date) or expires_on <= today:
        errors["expires_on"] = ["A waiver expires on a date after today."]
    elif expires_on > today + timedelta(days=MAX_WAIVER_DAYS):
        errors["expires_on"] = [f"A waiver lasts at most {MAX_WAIVER_DAYS} days."]
    if errors:
        raise ValidationFailed("The waiver request is incomplete.", errors)
    _refuse_if_stale(review, actor)
    with transaction.atomic():
        locked = ReviewRequest.objects.select_for_update().get(pk=review.pk)
        if locked.status != ReviewRequest.Status.OPEN or locked.kind != ReviewRequest.Kind.DEPLOYMENT:
            raise InvalidState("Waivers are requested on an open deployment review.")
        items = unwaived(locked)
        if not items:
            raise InvalidState("Nothing fails that a waiver would cover.")
        if locked.waivers.filter(status=Waiver.Status.OPEN).exists():
            raise InvalidState("A waiver request is already open on this review.")
        waiver = Waiver.objects.create(
            review=locked, waived=items, justification=justification[:5000], expires_on=expires_on, requested_by=actor
        )
        _announce(
            locked,
            f"{locked.reference}: a waiver of {len(items)} failing item(s) until "
            f"{expires_on:%d %b %Y} awaits your vote.",
            "waiver_open",
        )
        audit_record(
            actor=actor,
            organisation=locked.organisation,
            action="waiver.request",
            target=waiver,
            after={
                "review": str(locked.id),
                "waived": items,
                "expires_on": expires_on.isoformat(),
                "justification": waiver.justification,
            },
        )
    return waiver


def waiver_vote(*, actor: User, waiver: Waiver, choice: str, reason: str) -> WaiverVote:
    """A vote on a waiver, under the review's quorum and threshold and its separation-of-duties rules."""
    if choice not in rules.WAIVER_CHOICES:
        raise ValidationFailed("Unknown vote.", {"choice": [f"one of {', '.join(rules.WAIVER_CHOICES)}"]})
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("Give the reason for your vote.", {"reason": ["A written reason is required."]})
    with transaction.atomic():
        review = ReviewRequest.objects.select_for_update().get(pk=waiver.review_id)
        locked = Waiver.objects.select_for_update().get(pk=waiver.pk)
        if locked.status != Waiver.Status.OPEN or review.status != ReviewRequest.Status.OPEN:
            raise InvalidState("Votes on this waiver are closed.")
        _member_may_take_part(actor, review)
        if locked.votes.filter(voter=actor).exists():
            raise InvalidState("You have already voted on this waiver.")
        vote = WaiverVote.objects.create(waiver=locked, voter=actor, choice=choice, reason=reason[:5000])
        _waiver_settle_if_decided(locked, review, review_state(review))
        audit_record(
            actor=actor,
            organisation=review.organisation,
            action="waiver.vote",
            target=locked,
            after={"choice": choice, "reason": vote.reason, "status": locked.status},
        )
    return vote


def _waiver_settle_if_decided(waiver: Waiver, review: ReviewRequest, state: Any) -> bool:
    """Decide a waiver whose outcome the board's rules now settle (a vote, or its due date); True when decided."""
    choices = list(waiver.votes.values_list("choice", flat=True))
    voted = set(waiver.votes.values_list("voter_id", flat=True))
    remaining = len([m for m in state.eligible if m.id not in voted])
    result = rules.decided(
        choices,
        remaining,
        state.rules,
        past_due=state.past_due,
        options=rules.WAIVER_CHOICES,
        decide=rules.waiver_outcome,
    )
    if result is None:
        return False
    _waiver_decide(waiver, review, result, choices, state)
    return True


def _waiver_decide(waiver: Waiver, review: ReviewRequest, result: str, choices: list[str], state: Any) -> None:
    """Record a waiver's outcome (inside the caller's locked transaction) and tell the people concerned."""
    waiver.status = Waiver.Status.GRANTED if result == rules.GRANTED else Waiver.Status.REFUSED
    waiver.decided_at = timezone.now()
    waiver.tally = {
        "counts": rules.tally(choices).counts,
        "cast": len(choices),
        "quorum": state.rules.quorum,
        "approval_threshold": state.rules.threshold,
    }
    waiver.save(update_fields=["status", "decided_at", "tally", "updated_at"])
    notify(
        state.members + [waiver.requested_by, review.usecase.owner],
        organisation=review.organisation,
        review=review,
        kind="waiver_decided",
        message=f"{review.reference}: waiver {waiver.get_status_display().lower()} "
        f"(until {waiver.expires_on:%d %b %Y}).",
    )


# ------------------------------------------------------------------------------------ conditions, checklist, comments


def condition_mark_met(*, actor: User, condition: Condition, note: str) -> Condition:
    roles = roles_in(actor, condition.organisation)
    if not roles:
        raise NotFound()
    if condition.owner_id != actor.id and Role.ADMIN not in roles:
        raise PermissionDenied("The condition's owner or an org admin records that it is met.")
    note = (note or "").strip()
    if not note:
        raise ValidationFailed("Say how the condition was met.", {"note": ["Evidence or a reference is required."]})
    with transaction.atomic():
        locked = Condition.objects.select_for_update().get(pk=condition.pk)
        if locked.status == Condition.Status.MET:
            raise InvalidState("The condition is already met.")
        locked.status, locked.met_at, locked.met_by, locked.met_note = (
            Condition.Status.MET,
            timezone.now(),
            actor,
            note[:5000],
        )
        locked.save()
        audit_record(
            actor=actor,
            organisation=locked.organisation,
            action="condition.met",
            target=locked,
            after={
                "note": locked.met_note,
                "due_on": locked.due_on.isoformat(),
                "late": locked.due_on < timezone.localdate(),
            },
        )
    return locked


def checklist_take_stance(
    *, actor: User, review: ReviewRequest, item_key: str, stance: str, note: str = ""
) -> ChecklistStance:
    if stance not in ("confirm", "dispute"):
        raise ValidationFailed("Confirm or dispute.", {"stance": ["confirm or dispute"]})
    if item_key not in {item["key"] for item in review.checklist}:
        raise ValidationFailed("No such checklist item.", {"item_key": ["unknown"]})
    note = (note or "").strip()
    if stance == "dispute" and not note:
        raise ValidationFailed("Say why you dispute the answer.", {"note": ["required when disputing"]})
    with transaction.atomic():
        locked = ReviewRequest.objects.select_for_update().get(pk=review.pk)
        if locked.status != ReviewRequest.Status.OPEN:
            raise InvalidState("The review is no longer open.")
        _member_may_take_part(actor, locked)
        item, _ = ChecklistStance.objects.update_or_create(
            review=locked, item_key=item_key, member=actor, defaults={"stance": stance, "note": note[:2000]}
        )
        audit_record(
            actor=actor,
            organisation=locked.organisation,
            action="review.checklist_stance",
            target=locked,
            after={"item": item_key, "stance": stance, "note": item.note},
        )
    return item


def comment_add(*, actor: User, review: ReviewRequest, section: str, body: str) -> Comment:
    if not roles_in(actor, review.organisation):
        raise NotFound()
    if not can(actor, "comment", review):
        raise PermissionDenied("Auditors read reviews; they do not take part in the discussion.")
    if section not in SECTIONS:
        raise ValidationFailed("Unknown section.", {"section": [f"one of {', '.join(SECTIONS)}"]})
    body = (body or "").strip()
    if not body:
        raise ValidationFailed("Write a comment.", {"body": ["empty"]})
    with transaction.atomic():
        comment = Comment.objects.create(review=review, section=section, author=actor, body=body[:5000])
        audit_record(
            actor=actor,
            organisation=review.organisation,
            action="review.comment",
            target=comment,
            after={"review": str(review.id), "section": section, "body": comment.body},
        )
    return comment


def reviews_decide_due(*, now: Any = None) -> list[Decision]:
    """Decide the reviews of waiting boards whose due date has passed with quorum met: first their open waivers, then
    the review on the votes cast. A review without quorum stays open (and overdue); a stale one waits for its
    supersession; an approval that a lapsed waiver no longer covers is left to the board."""
    now = now or timezone.now()
    decisions = []
    for review in ReviewRequest.objects.filter(status=ReviewRequest.Status.OPEN, due_at__lte=now):
        if _stale(review):
            continue
        with transaction.atomic():
            locked = (
                ReviewRequest.objects.select_for_update(of=("self",))
                .select_related("usecase", "model_version")
                .get(pk=review.pk)
            )
            if locked.status != ReviewRequest.Status.OPEN:
                continue
            state = review_state(locked, now=now)
            for waiver in Waiver.objects.select_for_update().filter(review=locked, status=Waiver.Status.OPEN):
                if _waiver_settle_if_decided(waiver, locked, state):
                    audit_record(
                        actor=None,
                        organisation=locked.organisation,
                        action="waiver.decide_due",
                        target=waiver,
                        after={"status": waiver.status, "tally": waiver.tally},
                    )
            state = review_state(locked, now=now)
            outcome = state.deciding_outcome
            if outcome is None or (outcome in (rules.APPROVED, rules.APPROVED_WITH_CONDITIONS) and state.blocking):
                continue
            decision = _decide(locked, outcome, state, closed_by=None)
            audit_record(
                actor=None,
                organisation=locked.organisation,
                action="review.decide_due",
                target=locked,
                after=_decision_summary(decision),
            )
            decisions.append(decision)
    return decisions


def reviews_remind_due(*, now: Any = None) -> int:
    """The board's hourly round: decide what the due date decides (``reviews_decide_due``), then remind eligible
    members who have not voted when a review is due within two days (at most once a day each)."""
    now = now or timezone.now()
    reviews_decide_due(now=now)
    sent = 0
    for review in ReviewRequest.objects.filter(status=ReviewRequest.Status.OPEN, due_at__lte=now + timedelta(days=2)):
        recent = set(
            Notice.objects.filter(
                review=review, kind="vote_due", created_at__gte=now - timedelta(hours=20)
            ).values_list("user_id", flat=True)
        )
        pending = [m for m in review_state(review).pending if m.id not in recent]
        if not pending:
            continue
        with transaction.atomic():
            overdue = review.due_at < now
            notify(
                pending,
                organisation=review.organisation,
                review=review,
                kind="vote_due",
                message=f"{review.reference}: your vote is {'overdue since' if overdue else 'due by'} "
                f"{review.due_at:%d %b %Y}.",
            )
            audit_record(
                actor=None,
                organisation=review.organisation,
                action="review.remind",
                target=review,
                after={"members": [str(m.id) for m in pending], "overdue": overdue},
            )
        sent += len(pending)
    return sent
