"""Reading the board's state: who may vote on a review and why others may not, where the votes stand, which gates
block approval, and which waivers are in force."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from apps.accounts.models import Organisation, Role, User
from apps.accounts.selectors import organisation_members
from apps.ethics import rules
from apps.ethics.bindings import bound_evaluation, lineage
from apps.ethics.models import Board, Condition, Notice, ReviewRequest, Waiver

DEFAULT_CHECKLIST = [
    {
        "key": "purpose",
        "text": "The purpose is specific, legitimate and matches the lawful basis recorded.",
        "source": "PRODUCT principles; GDPR Art. 5(1)(b)",
    },
    {
        "key": "necessity",
        "text": "Processing is necessary and proportionate: no less intrusive way reaches the aim.",
        "source": "ICO DPIA step 4",
    },
    {
        "key": "consent",
        "text": "Every training row has valid consent (or another basis) for this purpose as of the "
        "snapshot, and withdrawals propagate.",
        "source": "PRODUCT: consent linked to rows",
    },
    {
        "key": "minimisation",
        "text": "Direct identifiers are dropped or pseudonymised; only needed features are used.",
        "source": "GDPR Art. 5(1)(c)",
    },
    {
        "key": "privacy",
        "text": "Training is differentially private within the policy's epsilon cap and delta rule.",
        "source": "Privacy policy",
    },
    {
        "key": "fairness",
        "text": "Fairness gates are met for every sensitive attribute and intersection, or a waiver "
        "is justified and time-boxed.",
        "source": "Fairness policy",
    },
    {
        "key": "oversight",
        "text": "A person reviews decisions the model informs; affected people can contest them.",
        "source": "EU AI Act Art. 14; GDPR Art. 22",
    },
    {
        "key": "transparency",
        "text": "Affected people are told the model is used, and the model card is accurate.",
        "source": "GDPR Arts. 13-14; EU AI Act Art. 13",
    },
    {
        "key": "risks",
        "text": "Residual risks in the DPIA are acceptable and their measures are in place.",
        "source": "ICO DPIA sign-off: residual risks approved by",
    },
    {
        "key": "dpo",
        "text": "The DPO's advice is recorded and, where not followed, the reason is given.",
        "source": "ICO DPIA sign-off: DPO advice",
    },
]


def board_of(organisation: Organisation) -> Board:
    """The organisation's board (created with its defaults the first time it is needed)."""
    board, _ = Board.objects.get_or_create(
        organisation=organisation, defaults={"checklist": [dict(item) for item in DEFAULT_CHECKLIST]}
    )
    return board


def board_members(organisation: Organisation) -> list[User]:
    return list(organisation_members(organisation, Role.BOARD))


def conflicts_of(review: ReviewRequest, known_versions: dict[Any, Any] | None = None) -> dict[Any, str]:
    """Members who may not vote on this review by separation of duties, with the reason (user id -> reason).

    ``known_versions`` (id -> DatasetVersion with its dataset, every version of the organisation) lets a caller
    looking at many reviews load the versions once instead of once per review."""
    usecase = review.usecase
    reasons: dict[Any, str] = {}

    def add(user_id: Any, reason: str) -> None:
        if user_id is not None:
            reasons.setdefault(user_id, reason)

    add(usecase.owner_id, "owns the use case")
    add(review.requested_by_id, "requested this review")
    if review.model_version_id:
        run = review.model_version.training_run
        add(run.created_by_id, "launched the training run")
        if known_versions is None:
            versions = lineage(run.dataset_version)
        else:
            versions, current = [], known_versions.get(run.dataset_version_id)
            while current is not None:
                versions.append(current)
                current = known_versions.get(current.parent_id)
    elif known_versions is not None:
        versions = [v for v in known_versions.values() if v.dataset.usecase_id == usecase.id]
    else:
        from apps.datasets.models import DatasetVersion

        versions = list(DatasetVersion.objects.filter(dataset__usecase=usecase))
    for version in versions:
        add(version.created_by_id, f"stewards its data ({version.dataset.name} {version.label})")
        add(version.roles_confirmed_by_id, f"confirmed the column roles of {version.dataset.name} {version.label}")
        add(version.dataset.created_by_id, f"stewards its data ({version.dataset.name})")
    return reasons


@dataclass
class ReviewState:
    """Everything the review page and the services need to know about where a review stands."""

    rules: rules.Rules
    members: list[User]
    eligible: list[User]
    conflicted: dict[Any, str]
    recused: dict[Any, str]
    voted: dict[Any, str]
    pending: list[User]
    past_due: bool
    tally: rules.Tally
    current_outcome: str | None
    # The outcome the review decides on now under the board's timing (settled early, or everyone/due date), or None.
    deciding_outcome: str | None
    quorum_reachable: bool
    votes_needed: int
    blocking: list[dict[str, Any]] = field(default_factory=list)
    waivers_in_force: list[Waiver] = field(default_factory=list)


def failing_items(review: ReviewRequest) -> list[dict[str, Any]]:
    """The failing fairness gates, the gates that cannot be evaluated, and the privacy-audit faults of the evaluation a
    deployment review is bound to: each blocks approval until a waiver covers it."""
    if review.kind != ReviewRequest.Kind.DEPLOYMENT or review.model_version_id is None:
        return []
    evaluation = bound_evaluation(review.model_version)
    if evaluation is None:
        return [{"key": "evaluation", "label": "No finished evaluation of the model on its held-out rows"}]
    items = []
    for gate in (evaluation.results or {}).get("gates", []):
        if not gate.get("passed"):  # False (fails) or None (cannot be evaluated): neither is a pass
            value = gate.get("value")
            shown = "n/a" if value is None else f"{value:.3f}"
            bound = "at most" if gate.get("direction") == "max" else "at least"
            label = (
                f"{gate['metric'].replace('_', ' ')} {gate.get('reason') or 'cannot be evaluated'}"
                if gate.get("passed") is None
                else f"{gate['metric'].replace('_', ' ')} = {shown} ({gate.get('grouping') or 'no grouping'})"
            )
            items.append({"key": f"gate:{gate['metric']}", "label": f"{label}; policy: {bound} {gate['threshold']}"})
    for gate in (evaluation.results or {}).get("robustness_gates", []):
        if gate.get("status") != "pass":  # "fail" or "unknown": neither is a pass
            where = f"{gate['metric'].replace('_', ' ')} under {gate['kind'].replace('_', ' ')} at {gate['level']:g}"
            found = (
                f"{gate.get('reason') or 'cannot be evaluated'}"
                if gate.get("value") is None
                else f"worsens by {gate['value']:.3f}"
            )
            items.append(
                {
                    "key": f"robustness:{gate['kind']}:{gate['level']:g}:{gate['metric']}",
                    "label": f"Robustness: {where} {found}; policy: at most {gate['max']:g}",
                }
            )
    if (evaluation.audit or {}).get("accounting_fault"):
        items.append({"key": "privacy_audit", "label": "Privacy audit: empirical epsilon exceeds the proven epsilon"})
    return items


def waivers_in_force(review: ReviewRequest, today: date | None = None) -> list[Waiver]:
    today = today or timezone.localdate()
    return list(review.waivers.filter(status=Waiver.Status.GRANTED, expires_on__gte=today))


def unwaived(review: ReviewRequest, today: date | None = None) -> list[dict[str, Any]]:
    covered = {key for waiver in waivers_in_force(review, today) for key in (i["key"] for i in waiver.waived)}
    return [item for item in failing_items(review) if item["key"] not in covered]


def review_state(review: ReviewRequest, now: Any = None) -> ReviewState:
    board = board_of(review.organisation)
    past_due = review.due_at <= (now or timezone.now())
    members = board_members(review.organisation)
    conflicted = conflicts_of(review)
    recused = {r.member_id: r.reason for r in review.recusals.all()}
    votes = list(review.votes.all())
    voted = {v.voter_id: v.choice for v in votes}
    eligible = [m for m in members if m.id not in conflicted and m.id not in recused]
    member_ids = {m.id for m in members}
    # Votes of members who later lost their board role or became conflicted still count: they were valid when cast.
    pending = [m for m in eligible if m.id not in voted]
    choices = [v.choice for v in votes]
    return ReviewState(
        rules=board.rules,
        members=members,
        eligible=eligible,
        conflicted={k: v for k, v in conflicted.items() if k in member_ids},
        recused=recused,
        voted=voted,
        pending=pending,
        past_due=past_due,
        tally=rules.tally(choices),
        current_outcome=rules.outcome(choices, board.rules),
        deciding_outcome=rules.decided(choices, len(pending), board.rules, past_due=past_due),
        quorum_reachable=rules.quorum_reachable(len(choices), len(pending), board.rules),
        votes_needed=rules.votes_needed(len(choices), board.rules),
        blocking=unwaived(review),
        waivers_in_force=waivers_in_force(review),
    )


def reviews_awaiting(user: User, organisation: Organisation) -> list[ReviewRequest]:
    """Open reviews where ``user`` is an eligible member who has not voted yet: ``review_state(review).pending``
    for one member, in a fixed number of queries however many reviews are open."""
    if not user.is_authenticated or not organisation_members(organisation, Role.BOARD).filter(id=user.id).exists():
        return []
    from apps.datasets.models import DatasetVersion

    reviews = list(
        ReviewRequest.objects.filter(organisation=organisation, status=ReviewRequest.Status.OPEN)
        .exclude(votes__voter=user)
        .exclude(recusals__member=user)
        .select_related("usecase", "model_version__usecase", "model_version__training_run")
    )
    if not reviews:
        return []
    known_versions = {
        version.id: version
        for version in DatasetVersion.objects.filter(dataset__organisation=organisation).select_related("dataset")
    }
    return [review for review in reviews if user.id not in conflicts_of(review, known_versions)]


def overdue_conditions(organisation: Organisation, today: date | None = None) -> QuerySet[Condition]:
    today = today or timezone.localdate()
    return Condition.objects.filter(organisation=organisation, status=Condition.Status.OPEN, due_on__lt=today)


def deployment_status(model_version: Any) -> dict[str, Any]:
    """The model's deployment status as shown wherever the model appears: the newest review, its decision, and the
    waivers in force (printed beside the status, as the board requires)."""
    review = (
        model_version.reviews.filter(kind=ReviewRequest.Kind.DEPLOYMENT)
        .exclude(status=ReviewRequest.Status.SUPERSEDED)
        .select_related("decision")
        .order_by("-created_at")
        .first()
    )
    if model_version.non_private:
        return {"label": "Baseline only (never deployable)", "tone": "muted", "review": None, "waivers": []}
    if review is None:
        return {"label": "Not reviewed for deployment", "tone": "muted", "review": None, "waivers": []}
    waivers = waivers_in_force(review)
    decision = getattr(review, "decision", None)
    if review.status == ReviewRequest.Status.OPEN:
        label, tone = f"In board review ({review.reference})", "warn"
    elif decision is not None:
        label = f"{decision.get_outcome_display()} for deployment ({review.reference})"
        tone = "ok" if decision.approved else "bad"
    else:
        label, tone = review.get_status_display(), "muted"
    return {"label": label, "tone": tone, "review": review, "waivers": waivers}


def unread_notices(user: User) -> QuerySet[Notice]:
    return Notice.objects.filter(user=user, read_at__isnull=True)
