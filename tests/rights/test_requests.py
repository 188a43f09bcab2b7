# ruff: noqa: F811 - pytest fixtures imported from tests.rights.kit are redefined as test arguments
"""Registering and managing data-subject requests: the identifier never stored, deadlines and the one extension,
duplicates linked, who may act, and other organisations' requests not found."""

from __future__ import annotations

import json
from datetime import date

import pytest
from django.core.serializers import serialize
from django.urls import reverse

from apps.accounts.models import Role
from apps.audit.models import AuditEvent
from apps.core.errors import InvalidState, NotFound, PermissionDenied, ValidationFailed
from apps.jobs.models import Job
from apps.rights import services
from apps.rights.models import SubjectRequest
from tests.conftest import PASSWORD, make_user
from tests.rights.kit import officer, pseudonym_of  # noqa: F401

pytestmark = pytest.mark.django_db

IDENTIFIER = "NHS-943-476-5919"


def register(actor, org, **overrides):
    data = {
        "kind": SubjectRequest.Kind.ACCESS,
        "identifier": IDENTIFIER,
        "identity_verification": "Passport checked at the counter",
    }
    data.update(overrides)
    return services.subject_request_register(actor=actor, organisation=org, **data)


def test_registration_stores_only_the_pseudonym(org, officer):  # noqa: F811
    request = register(officer, org)
    assert request.pseudonym == pseudonym_of(org, IDENTIFIER)
    assert request.reference == f"DSR-{date.today().year}-0001"
    row = serialize("json", [SubjectRequest.objects.get(pk=request.pk)])
    assert IDENTIFIER not in row
    events = AuditEvent.objects.filter(organisation=org)
    assert events.filter(action="rights.register").count() == 1
    for event in events:
        assert IDENTIFIER not in json.dumps([event.before, event.after], default=str)
    for job in Job.objects.all():
        assert IDENTIFIER not in json.dumps([job.spec, job.result], default=str)


def test_identifier_whitespace_gives_the_same_pseudonym_as_consent_imports(org, officer):  # noqa: F811
    request = register(officer, org, identifier=f"  {IDENTIFIER} ")
    assert request.pseudonym == pseudonym_of(org, IDENTIFIER)


def test_deadline_is_one_month_and_extends_once_by_two(org, officer):  # noqa: F811
    request = register(officer, org, received_on=date(2026, 1, 31))
    assert request.due_on == date(2026, 2, 28)  # Art. 12(3): one month, the end of a shorter month
    extended = services.subject_request_extend(actor=officer, request=request, reason="Many requests this month")
    # "Extended by two further months": two months after the first deadline of 28 February.
    assert extended.due_on == date(2026, 4, 28)
    assert extended.extension_reason == "Many requests this month"
    with pytest.raises(InvalidState, match="already extended"):
        services.subject_request_extend(actor=officer, request=extended, reason="Again")
    assert SubjectRequest.objects.get(pk=request.pk).due_on == date(2026, 4, 28)


def test_extension_needs_a_reason(org, officer):  # noqa: F811
    request = register(officer, org)
    with pytest.raises(ValidationFailed):
        services.subject_request_extend(actor=officer, request=request, reason="  ")
    assert SubjectRequest.objects.get(pk=request.pk).extended_at is None


def test_future_receipt_and_missing_verification_are_refused(org, officer):  # noqa: F811
    with pytest.raises(ValidationFailed) as caught:
        register(officer, org, received_on=date(2999, 1, 1), identity_verification=" ")
    assert set(caught.value.details) == {"received_on", "identity_verification"}
    assert not SubjectRequest.objects.exists()


def test_requests_of_the_same_person_are_linked_to_the_first(org, officer):  # noqa: F811
    first = register(officer, org)
    second = register(officer, org, kind=SubjectRequest.Kind.ERASURE)
    third = register(officer, org, kind=SubjectRequest.Kind.OBJECTION)
    other = register(officer, org, identifier="someone-else")
    assert first.duplicate_of is None
    assert second.duplicate_of == first
    assert third.duplicate_of == first
    assert other.duplicate_of is None
    assert [second.reference, third.reference] == [f"DSR-{date.today().year}-0002", f"DSR-{date.today().year}-0003"]


def test_stewards_stand_in_only_where_there_is_no_privacy_officer(org, steward, admin_user):
    request = register(steward, org)  # no privacy officer yet: the steward handles requests
    assert request.created_by == steward
    make_user("pia_privacy", organisation=org, roles=(Role.PRIVACY,))
    with pytest.raises(PermissionDenied):
        register(steward, org)
    with pytest.raises(PermissionDenied):
        services.subject_request_assign(actor=admin_user, request=request, assignee=None)


def test_owner_and_board_member_cannot_register(org, owner, board_member):
    for actor in (owner, board_member):
        with pytest.raises(PermissionDenied):
            register(actor, org)


def test_assignee_must_be_an_officer(org, officer, owner):  # noqa: F811
    request = register(officer, org)
    with pytest.raises(ValidationFailed):
        services.subject_request_assign(actor=officer, request=request, assignee=owner)
    services.subject_request_assign(actor=officer, request=request, assignee=officer)
    assert SubjectRequest.objects.get(pk=request.pk).assignee == officer


def test_other_organisations_requests_are_not_found(org, officer, outsider, client):  # noqa: F811
    request = register(officer, org)
    with pytest.raises(NotFound):
        services.subject_request_extend(actor=outsider, request=request, reason="x")
    with pytest.raises(NotFound):
        register(outsider, org)
    client.login(username=outsider.username, password=PASSWORD)
    assert client.get(reverse("rights:detail", args=[request.pk])).status_code == 404
    assert client.get(reverse("api:rights-request-detail", args=[request.pk])).status_code == 404
    listed = client.get(reverse("api:rights-request-list")).json()
    assert listed["results" if isinstance(listed, dict) else 0] == [] if isinstance(listed, dict) else listed == []


def test_auditor_reads_but_cannot_act(org, officer, auditor, client):  # noqa: F811
    request = register(officer, org)
    client.login(username=auditor.username, password=PASSWORD)
    page = client.get(reverse("rights:detail", args=[request.pk]))
    assert page.status_code == 200
    assert request.reference in page.content.decode()
    assert 'action="/rights/' not in page.content.decode()  # no forms
    answer = client.post(
        reverse("api:rights-request-extend", args=[request.pk]), {"reason": "x"}, content_type="application/json"
    )
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "permission_denied"


def test_list_filters_overdue_and_due_soon(org, officer, client):  # noqa: F811
    late = register(officer, org, identifier="p1", received_on=date(2020, 1, 1))
    current = register(officer, org, identifier="p2")
    client.login(username=officer.username, password=PASSWORD)
    overdue = client.get(reverse("rights:list") + "?show=overdue").content.decode()
    assert late.reference in overdue and current.reference not in overdue
    api = client.get(reverse("api:rights-request-list") + "?show=overdue").json()
    rows = api["results"] if isinstance(api, dict) else api
    assert [r["reference"] for r in rows] == [late.reference]
    assert rows[0]["overdue"] is True


def test_register_page_form_creates_a_request(org, officer, client):  # noqa: F811
    client.login(username=officer.username, password=PASSWORD)
    form = client.get(reverse("rights:register")).content.decode()
    assert '<label for="id_identifier">' in form
    answer = client.post(
        reverse("rights:register"),
        {
            "kind": "erasure",
            "identifier": IDENTIFIER,
            "identity_verification": "Letter",
            "received_on": "",
            "purposes": "",
            "assignee": str(officer.pk),
        },
    )
    request = SubjectRequest.objects.get()
    assert answer.status_code == 302 and answer["Location"] == reverse("rights:detail", args=[request.pk])
    assert request.assignee == officer and request.kind == "erasure"


def test_api_create_never_returns_the_identifier(org, officer, client):  # noqa: F811
    client.login(username=officer.username, password=PASSWORD)
    answer = client.post(
        reverse("api:rights-request-list"),
        {
            "kind": "objection",
            "identifier": IDENTIFIER,
            "identity_verification": "Call-back",
            "purposes": ["Service improvement"],
            "organisation": str(org.pk),
        },
        content_type="application/json",
    )
    assert answer.status_code == 201, answer.content
    assert IDENTIFIER not in answer.content.decode()
    assert answer.json()["purposes"] == ["Service improvement"]
    assert answer.json()["pseudonym"] == pseudonym_of(org, IDENTIFIER)


def test_dashboard_shows_the_officer_due_and_overdue_requests(org, officer, client):  # noqa: F811
    register(officer, org, identifier="p1", received_on=date(2020, 1, 1))
    register(officer, org, identifier="p2")
    client.login(username=officer.username, password=PASSWORD)
    page = client.get(reverse("dashboard")).content.decode()
    assert "Privacy officer dashboard" in page and "Data-subject requests" in page
    assert "2 open; 0 due within 7 days; 1 overdue." in page
    assert reverse("rights:list") + "?show=overdue" in page


def test_stewards_see_the_card_only_when_they_stand_in(org, officer, steward, client):  # noqa: F811
    register(officer, org)
    client.login(username=steward.username, password=PASSWORD)
    assert "Data-subject requests" not in client.get(reverse("dashboard")).content.decode()


def test_the_list_page_runs_the_same_queries_for_one_request_or_five(org, officer, client):  # noqa: F811
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    register(officer, org, identifier="p0", assignee=officer)
    client.login(username=officer.username, password=PASSWORD)
    url = reverse("rights:list") + "?show=all"
    client.get(url)
    with CaptureQueriesContext(connection) as one:
        client.get(url)
    for n in range(1, 5):  # four more, duplicates and assigned ones among them
        register(officer, org, identifier="p0" if n % 2 else f"p{n}", assignee=officer)
    with CaptureQueriesContext(connection) as five:
        page = client.get(url).content.decode()
    assert page.count("/rights/") >= 5
    assert len(five) == len(one)


def test_the_beat_sends_waiting_requests_on_every_five_minutes(org, officer):  # noqa: F811
    from portal.celery import app
    from workers import task_names, tasks

    entries = [e for e in app.conf.beat_schedule.values() if e["task"] == task_names.RIGHTS_RESUME]
    assert entries and entries[0]["schedule"] <= 300 and entries[0]["options"]["expires"] < entries[0]["schedule"]
    request = register(officer, org, kind=SubjectRequest.Kind.OBJECTION)
    SubjectRequest.objects.filter(pk=request.pk).update(status=SubjectRequest.Status.WAITING)
    assert tasks.rights_resume() == 1  # no training run holds it any more: sent on, with a new execution job
    request.refresh_from_db()
    assert request.status == SubjectRequest.Status.IN_PROGRESS and request.execute_job.kind == "rights_execute"
