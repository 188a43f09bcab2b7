"""Feedback and contestation: the public page (no login, a privacy notice, throttled, nothing stored beyond what was
typed, no address, 404 once the deployment has ended), audit events without the typed text, internal feedback,
triage linked to an alert, closing, and erasure at the end of retention."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import AttemptCounter
from apps.audit.models import AuditEvent
from apps.core.errors import InvalidState, NotFound, PermissionDenied, ValidationFailed
from apps.deployments.alerts import alerts_sync
from apps.deployments.feedback import (
    ERASED,
    feedback_close,
    feedback_erase_expired,
    feedback_reference,
    feedback_submit,
    feedback_submit_public,
    feedback_triage,
)
from apps.deployments.models import Alert, Deployment, Feedback
from apps.ethics.models import Notice
from tests.deployments.loop import result, window

pytestmark = pytest.mark.django_db

ADDRESS = "203.0.113.77"
MESSAGE = "My housing benefit was refused although my income fell in March; please look again."
REFERENCE = "HB-2026-004417"
CONTACT = "jane.doe@example.net"


def page(deployment):
    return reverse("public:feedback", kwargs={"slug": deployment.public_slug})


def post(client, deployment, address=ADDRESS, **fields):
    data = {"kind": "contestation", "decision_reference": REFERENCE, "body": MESSAGE, "contact": CONTACT}
    data.update(fields)
    return client.post(page(deployment), data, REMOTE_ADDR=address)


def test_the_page_needs_no_login_and_tells_the_person_what_happens_to_their_words(client, deployed):
    response = client.get(page(deployed))
    assert response.status_code == 200
    html = response.content.decode()
    organisation = deployed.organisation
    assert f"{organisation.name} is the controller" in html
    assert "We do not store your IP address" in html
    assert "reviewed by a person" in html  # the contestation route the board's condition asks for
    for label in ("What would you like to do?", "Decision reference", "Your message", "How can we reach you?"):
        assert label in html
    for field in ("decision_reference", "body", "contact"):
        assert f'for="id_{field}"' in html  # each field has its label
    assert 'name="csrfmiddlewaretoken"' in html
    assert "sessionid" not in response.cookies  # no session is opened for a visitor


def test_a_submission_stores_only_what_was_typed_and_no_address(deployed, owner):
    client = Client()
    response = post(client, deployed)
    feedback = Feedback.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse(
        "public:thanks", kwargs={"slug": deployed.public_slug, "feedback_id": feedback.id}
    )
    assert (feedback.source, feedback.kind, feedback.body, feedback.decision_reference, feedback.contact) == (
        "public",
        "contestation",
        MESSAGE,
        REFERENCE,
        CONTACT,
    )
    assert feedback.author is None
    thanks = client.get(response["Location"]).content.decode()
    assert feedback_reference(feedback) in thanks

    # Nothing anywhere in the database holds the address, and the audit event holds none of the typed words.
    with connection.cursor() as cursor:
        cursor.execute("SELECT key FROM accounts_attemptcounter")
        keys = [row[0] for row in cursor.fetchall()]
    assert keys and all(ADDRESS not in key for key in keys)
    event = AuditEvent.objects.get(action="feedback.submit_public")
    text = json.dumps([event.after, event.before, event.object_id])
    for typed in (MESSAGE, REFERENCE, CONTACT, ADDRESS, "housing", "jane"):
        assert typed not in text
    assert event.after["characters"] == len(MESSAGE) and event.after["has_contact"] is True
    # The owners are told something waits, not what it says.
    notice = Notice.objects.get(user=owner, kind="feedback_new")
    assert MESSAGE not in notice.message and CONTACT not in notice.message


def test_the_address_is_in_no_table(deployed):
    post(Client(), deployed)
    with connection.cursor() as cursor:
        for table in ("deployments_feedback", "audit_auditevent", "accounts_attemptcounter", "ethics_notice"):
            cursor.execute(f"SELECT * FROM {table}")  # noqa: S608 - fixed table names
            assert ADDRESS not in repr(cursor.fetchall()), table


def test_the_honeypot_thanks_robots_and_stores_nothing(deployed):
    response = post(Client(), deployed, website="http://spam.example")
    assert response.status_code == 200 and b"received" in response.content
    assert not Feedback.objects.exists()


@pytest.mark.parametrize(("field", "size"), [("body", 4001), ("decision_reference", 101), ("contact", 201)])
def test_length_limits_refuse_and_store_nothing(deployed, field, size):
    response = post(Client(), deployed, **{field: "x" * size})
    assert response.status_code == 400
    assert not Feedback.objects.exists()


def test_an_empty_message_is_refused_with_its_error_beside_the_field(deployed):
    response = post(Client(), deployed, body="   ")
    assert response.status_code == 400
    assert 'id="id_body_error"' in response.content.decode()


def test_csrf_is_enforced(deployed):
    response = post(Client(enforce_csrf_checks=True), deployed)
    assert response.status_code == 403 and not Feedback.objects.exists()


def test_submissions_are_throttled_per_address(deployed, settings):
    settings.PUBLIC_FEEDBACK_ADDRESS_LIMIT = 2
    client = Client()
    assert [post(client, deployed).status_code for _ in range(3)] == [302, 302, 429]
    assert Feedback.objects.count() == 2
    assert post(client, deployed, address="198.51.100.4").status_code == 302  # someone else still gets through


def test_submissions_are_throttled_per_deployment(deployed, settings):
    settings.PUBLIC_FEEDBACK_DEPLOYMENT_LIMIT = 3
    client = Client()
    statuses = [post(client, deployed, address=f"198.51.100.{i}").status_code for i in range(1, 5)]
    assert statuses == [302, 302, 302, 429]
    assert "try again" in post(client, deployed, address="198.51.100.9").content.decode()
    assert AttemptCounter.objects.count() == 6  # five addresses and the deployment, each under a keyed digest


@pytest.mark.parametrize("status", ["withdrawn", "replaced", "rolled_back"])
def test_the_page_of_an_ended_deployment_answers_404(client, deployed, status):
    Deployment.objects.filter(pk=deployed.pk).update(status=status)
    assert client.get(page(deployed)).status_code == 404
    assert post(client, deployed).status_code == 404
    deployed.status = status
    with pytest.raises(NotFound):
        feedback_submit_public(deployment=deployed, kind="feedback", body="Hello")
    assert not Feedback.objects.exists()


def test_an_unknown_slug_answers_404(client):
    assert client.get("/public/d/no-such-page/").status_code == 404


def test_a_signed_in_visitor_of_several_organisations_is_not_sent_to_the_chooser(client, deployed, outsider, org):
    from apps.accounts.models import Membership

    Membership.objects.create(user=outsider, organisation=org, role="steward")
    client.force_login(outsider)
    assert client.get(page(deployed)).status_code == 200


# ------------------------------------------------------------------------------------------------ internal, triage


def test_members_leave_feedback_and_auditors_and_outsiders_do_not(deployed, board_member, auditor, outsider):
    item = feedback_submit(actor=board_member, deployment=deployed, kind="feedback", body="Letters are unclear.")
    assert item.source == "internal" and item.author == board_member
    with pytest.raises(PermissionDenied):
        feedback_submit(actor=auditor, deployment=deployed, kind="feedback", body="x")
    with pytest.raises(NotFound):
        feedback_submit(actor=outsider, deployment=deployed, kind="feedback", body="x")
    with pytest.raises(ValidationFailed):
        feedback_submit(actor=board_member, deployment=deployed, kind="praise", body="x")


def test_triage_links_the_feedback_to_an_alert_of_its_deployment(deployed, steward, auditor):
    alerts_sync(deployment=deployed, window=window(deployed, 1), results=[result("fairness:fpr:sex=Female", "fail")])
    alert = Alert.objects.get()
    item = feedback_submit_public(deployment=deployed, kind="contestation", body=MESSAGE, contact=CONTACT)
    with pytest.raises(PermissionDenied):
        feedback_triage(actor=auditor, feedback=item, category="unfair", severity="critical", alert=alert)
    triaged = feedback_triage(
        actor=steward, feedback=item, category="unfair", severity="critical", alert=alert, response="Reviewing."
    )
    assert (triaged.status, triaged.category, triaged.severity, triaged.alert) == (
        "triaged",
        "unfair",
        "critical",
        alert,
    )
    assert list(alert.feedback.all()) == [triaged]
    event = AuditEvent.objects.get(action="feedback.triage")
    assert event.after["alert"] == str(alert.id) and "Reviewing" not in json.dumps(event.after)

    closed = feedback_close(actor=steward, feedback=triaged, response="Decision reviewed and changed.")
    assert closed.status == "closed"
    with pytest.raises(InvalidState):
        feedback_triage(actor=steward, feedback=closed, category="other", severity="info")


def test_triage_refuses_an_alert_of_another_deployment(deployed, steward, owner):
    from tests.deployments.loop import deploy

    pilot = deploy(deployed.model_version, owner=owner, environment="pilot")
    alerts_sync(deployment=pilot, window=window(pilot, 1), results=[result("data_drift:psi:age", "fail")])
    item = feedback_submit_public(deployment=deployed, kind="feedback", body="Hello")
    with pytest.raises(ValidationFailed):
        feedback_triage(actor=steward, feedback=item, category="other", severity="info", alert=Alert.objects.get())


def test_the_contact_is_shown_through_the_api_only_to_those_who_triage(deployed, steward, board_member, auditor):
    from rest_framework.test import APIClient

    item = feedback_submit_public(deployment=deployed, kind="contestation", body=MESSAGE, contact=CONTACT)
    seen = {}
    for person in (steward, board_member, auditor):
        client = APIClient()
        client.force_authenticate(person)
        seen[person.username] = client.get(f"/api/v1/feedback/{item.id}/").json()["contact"]
    assert seen == {steward.username: CONTACT, board_member.username: None, auditor.username: None}


def test_the_feedback_list_shows_contacts_to_those_who_triage_in_queries_that_do_not_grow(deployed, steward, auditor):
    from django.test.utils import CaptureQueriesContext
    from rest_framework.test import APIClient

    def listed(person):
        client = APIClient()
        client.force_authenticate(person)
        with CaptureQueriesContext(connection) as queries:
            items = client.get("/api/v1/feedback/").json()["results"]
        return items, len(queries)

    feedback_submit_public(deployment=deployed, kind="contestation", body=MESSAGE, contact=CONTACT)
    _, with_one = listed(steward)
    for _ in range(4):
        feedback_submit_public(deployment=deployed, kind="feedback", body=MESSAGE, contact=CONTACT)
    items, with_five = listed(steward)
    assert [item["contact"] for item in items] == [CONTACT] * 5
    assert with_five == with_one
    items, _ = listed(auditor)
    assert [item["contact"] for item in items] == [None] * 5


def test_what_was_typed_is_erased_at_the_end_of_retention(deployed, steward, settings):
    settings.FEEDBACK_RETENTION_DAYS = 30
    old = feedback_submit_public(deployment=deployed, kind="contestation", body=MESSAGE, contact=CONTACT)
    recent = feedback_submit_public(deployment=deployed, kind="feedback", body="Thanks", contact=CONTACT)
    still_open = feedback_submit_public(deployment=deployed, kind="feedback", body="Open one")
    for item in (old, recent):
        feedback_close(actor=steward, feedback=item, response="Answered.")
    Feedback.objects.filter(pk__in=[old.pk, still_open.pk]).update(updated_at=timezone.now() - timedelta(days=31))

    assert feedback_erase_expired() == 1
    old.refresh_from_db()
    assert (old.body, old.contact, old.decision_reference, old.response) == (ERASED, "", "", "")
    assert old.kind == "contestation" and old.status == "closed"
    assert Feedback.objects.get(pk=recent.pk).contact == CONTACT
    assert Feedback.objects.get(pk=still_open.pk).body == "Open one"  # kept while it is being handled
    assert feedback_erase_expired() == 0
    (event,) = AuditEvent.objects.filter(action="feedback.erase")
    assert event.after["count"] == 1 and event.after["feedback"] == [str(old.id)]


def test_where_decisions_are_automated_the_page_links_to_how_they_are_made(client, deployed):
    from apps.usecases.models import UseCase

    assert "how-decisions-are-made" not in client.get(page(deployed)).content.decode()
    UseCase.objects.filter(pk=deployed.usecase_id).update(automated_decisions=True)
    html = client.get(page(deployed)).content.decode()
    link = reverse("public:explanation", kwargs={"slug": deployed.public_slug})
    assert f'href="{link}"' in html
    explanation = client.get(link).content.decode()
    for feature in deployed.model_version.training_run.spec["features"]:
        assert feature.replace("-", " ").capitalize() in explanation  # what it reads about a person, in words
    assert "reviewed by a person" in explanation
    Deployment.objects.filter(pk=deployed.pk).update(status="withdrawn")
    assert client.get(link).status_code == 404
