import pytest

from apps.accounts.models import Membership, Role
from apps.audit.models import AuditEvent
from apps.core.errors import AttestError, InvalidState, NotFound, PermissionDenied, ValidationFailed
from apps.ethics.services import vote_cast
from apps.usecases.models import UseCase
from apps.usecases.services import usecase_create, usecase_transition, usecase_update
from tests.ethics.factories import approve_by_board
from tests.usecases.factories import usecase_data

pytestmark = pytest.mark.django_db


def events(action):
    return AuditEvent.objects.filter(action=action)


def test_an_owner_registers_a_draft_with_a_first_revision_and_one_audit_event(org, owner):
    before = AuditEvent.objects.count()
    usecase = usecase_create(actor=owner, organisation=org, data=usecase_data())
    assert usecase.status == UseCase.Status.DRAFT
    assert usecase.reference == "UC-0001"
    assert usecase.revisions.count() == 1
    assert AuditEvent.objects.count() == before + 1
    assert events("usecase.create").get().object_id == str(usecase.id)


def test_references_count_up_per_organisation(org, owner):
    first = usecase_create(actor=owner, organisation=org, data=usecase_data())
    second = usecase_create(actor=owner, organisation=org, data=usecase_data(title="Second"))
    assert (first.reference, second.reference) == ("UC-0001", "UC-0002")


def test_a_steward_cannot_register_and_an_outsider_gets_not_found(org, steward, outsider):
    with pytest.raises(PermissionDenied):
        usecase_create(actor=steward, organisation=org, data=usecase_data())
    with pytest.raises(NotFound):
        usecase_create(actor=outsider, organisation=org, data=usecase_data())
    assert not UseCase.objects.exists()


def test_every_invalid_field_is_named_and_nothing_is_written(org, owner):
    data = usecase_data(
        lawful_basis="because",
        special_category=True,
        art9_condition="",
        risk_tier="high",
        annex_iii_area="",
        purpose="Something else",
    )
    with pytest.raises(ValidationFailed) as caught:
        usecase_create(actor=owner, organisation=org, data=data)
    assert {"lawful_basis", "art9_condition", "annex_iii_area", "purpose"} <= set(caught.value.details)
    assert not UseCase.objects.exists()
    assert not events("usecase.create").exists()


def test_an_edit_makes_a_new_revision_recording_what_changed_and_who(org, owner):
    usecase = usecase_create(actor=owner, organisation=org, data=usecase_data())
    updated = usecase_update(actor=owner, usecase=usecase, data={"retention": "12 months", "title": "Renamed"})
    assert updated.revision == 2
    latest = updated.revisions.get(number=2)
    assert latest.changed_fields == ["retention", "title"]
    assert latest.author == owner
    assert latest.sha256 != updated.revisions.get(number=1).sha256
    event = events("usecase.update").get()
    assert event.before == {"retention": "24 months after the claim closes", "title": "Benefit claim triage"}


def test_an_edit_that_changes_nothing_writes_nothing(org, owner):
    usecase = usecase_create(actor=owner, organisation=org, data=usecase_data())
    usecase_update(actor=owner, usecase=usecase, data={"title": usecase.title})
    assert usecase.revisions.count() == 1
    assert not events("usecase.update").exists()


def test_another_owner_cannot_edit_but_an_admin_can(org, owner, admin_user):
    from tests.conftest import make_user

    other_owner = make_user("olga_owner", organisation=org, roles=(Role.OWNER,))
    usecase = usecase_create(actor=owner, organisation=org, data=usecase_data())
    with pytest.raises(PermissionDenied):
        usecase_update(actor=other_owner, usecase=usecase, data={"title": "Mine now"})
    assert usecase_update(actor=admin_user, usecase=usecase, data={"title": "Fixed"}).title == "Fixed"


def test_the_lifecycle_runs_from_draft_to_retired_with_one_event_per_step(org, owner, board_member, admin_user):
    usecase = usecase_create(actor=owner, organisation=org, data=usecase_data())
    usecase = usecase_transition(actor=owner, usecase=usecase, action="submit")
    # Submitting opens the board's development review straight away.
    assert usecase.status == "in_review"
    with pytest.raises(InvalidState):
        usecase_update(actor=owner, usecase=usecase, data={"title": "Too late"})
    usecase = approve_by_board(usecase, board_member)
    assert usecase.status == "approved"
    with pytest.raises(InvalidState, match="approved for deployment"):
        usecase_transition(actor=admin_user, usecase=usecase, action="put_in_production")
    usecase = usecase_transition(actor=owner, usecase=usecase, action="retire", reason="Replaced.")
    assert usecase.status == "retired"
    actions = list(
        AuditEvent.objects.filter(object_id=str(usecase.id)).order_by("sequence").values_list("action", flat=True)
    )
    assert actions == ["usecase.create", "usecase.submit", "usecase.retire"]
    # Opening the development review is part of the submission: its event names the review (no second event).
    review = usecase.reviews.get()
    submit = AuditEvent.objects.get(action="usecase.submit")
    assert submit.after["review"] == str(review.id) and submit.after["status"] == "in_review"
    review_actions = list(
        AuditEvent.objects.filter(object_type="ethics.reviewrequest")
        .order_by("sequence")
        .values_list("action", flat=True)
    )
    assert review_actions == ["review.vote"]


def test_an_incomplete_draft_cannot_be_submitted_and_says_why(org, owner):
    usecase = usecase_create(actor=owner, organisation=org, data=usecase_data(dpia={}, fairness_policy={}))
    with pytest.raises(ValidationFailed) as caught:
        usecase_transition(actor=owner, usecase=usecase, action="submit")
    blockers = caught.value.details["blockers"]
    assert any("sensitive attribute" in item for item in blockers)
    assert any(item.startswith("DPIA - Step 1") for item in blockers)
    usecase.refresh_from_db()
    assert usecase.status == "draft"


def test_a_prohibited_practice_cannot_be_submitted(org, owner):
    usecase = usecase_create(actor=owner, organisation=org, data=usecase_data(risk_tier="prohibited"))
    with pytest.raises(ValidationFailed) as caught:
        usecase_transition(actor=owner, usecase=usecase, action="submit")
    assert "Art. 5" in caught.value.details["blockers"][0]


def test_the_owner_cannot_approve_their_own_use_case_even_as_a_board_member(org, owner, board_member):
    Membership.objects.create(user=owner, organisation=org, role=Role.BOARD)
    usecase = usecase_create(actor=owner, organisation=org, data=usecase_data())
    usecase = usecase_transition(actor=owner, usecase=usecase, action="submit")
    review = usecase.reviews.get()
    with pytest.raises(AttestError) as caught:
        vote_cast(actor=owner, review=review, choice="approve", reason="Looks fine to me")
    assert caught.value.code == "separation_of_duties"
    usecase.refresh_from_db()
    assert usecase.status == "in_review"


def test_approval_is_the_boards_decision_not_a_transition(org, owner, board_member):
    usecase = usecase_create(actor=owner, organisation=org, data=usecase_data())
    usecase = usecase_transition(actor=owner, usecase=usecase, action="submit")
    for action in ("approve", "reject", "start_review"):
        with pytest.raises(ValidationFailed):
            usecase_transition(actor=board_member, usecase=usecase, action=action, reason="x")


def test_a_steward_cannot_move_a_use_case_and_an_outsider_cannot_see_it(org, owner, steward, outsider):
    usecase = usecase_create(actor=owner, organisation=org, data=usecase_data())
    with pytest.raises(PermissionDenied):
        usecase_transition(actor=steward, usecase=usecase, action="submit")
    with pytest.raises(NotFound):
        usecase_transition(actor=outsider, usecase=usecase, action="submit")
