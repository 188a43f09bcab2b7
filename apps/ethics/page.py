"""Everything the one-page review shows, in reading order, gathered from the apps that own each piece (reads only).

The numbers come from the same records the other pages and the reports read: the use case's revision, the datasets'
versions and datasheets, the run's privacy record and budget, and the evaluation the review is bound to.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from apps.accounts.models import Membership, Role, User
from apps.accounts.selectors import roles_in
from apps.core.forms import chart_html
from apps.ethics.bindings import bound_evaluation, lineage
from apps.ethics.models import ReviewRequest, Vote, Waiver, WaiverVote
from apps.ethics.permissions import can
from apps.ethics.selectors import conflicts_of, review_state
from apps.ethics.services import SECTIONS

SECTION_TITLES = {
    "summary": "Summary and status",
    "usecase": "Use case and DPIA",
    "datasets": "Datasets",
    "privacy": "Privacy",
    "evaluation": "Evaluation",
    "modelcard": "Model card",
    "checklist": "Checklist",
}


def _datasets(review: ReviewRequest) -> list[dict[str, Any]]:
    from apps.datasets.models import DatasetVersion
    from apps.datasets.selectors import version_coverage

    if review.model_version_id:
        versions = lineage(review.model_version.training_run.dataset_version)
    else:
        versions = list(DatasetVersion.objects.filter(dataset__usecase=review.usecase).order_by("dataset", "number"))
    result = []
    for version in versions:
        sheet = version.datasheets.order_by("-number").first()
        result.append(
            {
                "version": version,
                "datasheet": sheet,
                "coverage": version_coverage(version) if version.kind != "raw" else None,
            }
        )
    return result


def _privacy(review: ReviewRequest) -> dict[str, Any] | None:
    if not review.model_version_id:
        return None
    from apps.training.selectors import budget_summary

    run = review.model_version.training_run
    budget = getattr(run.dataset_version.dataset, "privacy_budget", None)
    evaluation = bound_evaluation(review.model_version)
    return {
        "run": run,
        "privacy": run.privacy or {},
        "privacy_warning": review.model_version.privacy_warning,
        "budget": budget_summary(budget),
        "audit": (evaluation.audit or {}) if evaluation else {},
    }


def _evaluation(review: ReviewRequest) -> dict[str, Any] | None:
    if not review.model_version_id:
        return None
    from apps.evaluation.insights import insights
    from apps.evaluation.views import gate_chart, selection_chart

    evaluation = bound_evaluation(review.model_version)
    if evaluation is None:
        return None
    results = evaluation.results or {}
    groupings = results.get("groupings", [])
    return {
        "item": evaluation,
        "results": results,
        "gates": [(gate, chart_html(gate_chart(gate, groupings))) for gate in results.get("gates", [])],
        "groupings": [(g, chart_html(selection_chart(g))) for g in groupings],
        "insights": insights(evaluation),
    }


def _model_card(review: ReviewRequest) -> dict[str, Any] | None:
    if not review.model_version_id:
        return None
    from apps.modelcards.services import NARRATIVE_SECTIONS, current_card

    card = current_card(review.model_version)
    return {
        "revision": card,
        "sections": [
            (label, (card.narrative if card else {}).get(key, "")) for key, label in NARRATIVE_SECTIONS.items()
        ],
    }


def _checklist(review: ReviewRequest, user: User) -> list[dict[str, Any]]:
    stances: dict[str, list[Any]] = {}
    for stance in review.stances.select_related("member"):
        stances.setdefault(stance.item_key, []).append(stance)
    rows = []
    for item in review.checklist:
        answer = review.answers.get(item["key"], {})
        mine = next((s for s in stances.get(item["key"], []) if s.member_id == user.id), None)
        rows.append({"item": item, "answer": answer, "stances": stances.get(item["key"], []), "mine": mine})
    return rows


def review_page_context(review: ReviewRequest, user: User) -> dict[str, Any]:
    state = review_state(review)
    roles = roles_in(user, review.organisation)
    conflicts = conflicts_of(review)
    is_open = review.status == ReviewRequest.Status.OPEN
    my_vote = review.votes.filter(voter=user).first()
    recused = user.id in state.recused
    may_vote = is_open and Role.BOARD in roles and user.id not in conflicts and not recused and my_vote is None
    comments: dict[str, list[Any]] = {section: [] for section in SECTIONS}
    for comment in review.comments.select_related("author"):
        comments.setdefault(comment.section, []).append(comment)
    waivers = []
    for waiver in review.waivers.prefetch_related("votes__voter"):
        voted = {v.voter_id for v in waiver.votes.all()}
        waivers.append(
            {
                "item": waiver,
                "may_vote": (
                    waiver.status == Waiver.Status.OPEN
                    and is_open
                    and Role.BOARD in roles
                    and user.id not in conflicts
                    and not recused
                    and user.id not in voted
                ),
                "in_force": waiver in state.waivers_in_force,
            }
        )
    members = list(
        Membership.objects.filter(organisation=review.organisation).select_related("user").order_by("user__username")
    )
    condition_owners = {m.user_id: m.user for m in members}.values()
    decision = getattr(review, "decision", None) if review.status == ReviewRequest.Status.DECIDED else None
    chain = []
    previous = review.previous
    while previous is not None and len(chain) < 20:
        chain.append(previous)
        previous = previous.previous
    successor = getattr(review, "superseded_by", None) if review.status == ReviewRequest.Status.SUPERSEDED else None
    return {
        "review": review,
        "usecase": review.usecase,
        "state": state,
        "decision": decision,
        "conditions": list(decision.conditions.select_related("owner")) if decision else [],
        "votes": list(review.votes.select_related("voter")),
        "my_vote": my_vote,
        "may_vote": may_vote,
        "my_conflict": conflicts.get(user.id) if Role.BOARD in roles else None,
        "recused_me": recused,
        "may_recuse": is_open and Role.BOARD in roles and my_vote is None and not recused and user.id not in conflicts,
        "may_comment": can(user, "comment", review),
        "may_answer": is_open and can(user, "answer", review),
        "may_close": is_open and can(user, "close", review) and state.current_outcome is not None,
        "is_chair": can(user, "close", review),
        "may_request_waiver": is_open
        and review.kind == "deployment"
        and bool(state.blocking)
        and can(user, "request_waiver", review)
        and not review.waivers.filter(status="open").exists(),
        "near_tags": ("votes", "waivers"),
        "read_only": not (roles - {Role.AUDITOR}),
        "waivers": waivers,
        "datasets": _datasets(review),
        "privacy": _privacy(review),
        "evaluation": _evaluation(review),
        "modelcard": _model_card(review),
        "checklist": _checklist(review, user),
        "comments": comments,
        "section_titles": SECTION_TITLES,
        "vote_choices": Vote.Choice.choices,
        "waiver_choices": WaiverVote.Choice.choices,
        "condition_owners": condition_owners,
        "default_due": (timezone.localdate() + timedelta(days=30)).isoformat(),
        "default_waiver_expiry": (timezone.localdate() + timedelta(days=90)).isoformat(),
        "history": chain,
        "successor": successor,
        "quorum_text": _quorum_text(state),
        "conflict_names": {m.id: m.display_name for m in state.members if m.id in state.conflicted},
    }


def _quorum_text(state: Any) -> str:
    from apps.ethics import rules

    timing = (
        " The review decides as soon as its outcome is settled."
        if state.rules.decides == rules.SETTLED
        else " The review decides once every eligible member has voted, or at its due date if quorum is met then."
    )
    return _quorum_count_text(state) + timing


def _quorum_count_text(state: Any) -> str:
    if not state.quorum_reachable:
        return (
            f"Quorum cannot be reached: {state.tally.cast} vote(s) cast and {len(state.pending)} eligible "
            f"member(s) left, against a quorum of {state.rules.quorum}. An admin must add members or lower it."
        )
    if state.votes_needed:
        return f"{state.votes_needed} more vote(s) needed for quorum ({state.rules.quorum})."
    return f"Quorum of {state.rules.quorum} is met."
