"""Alerts: one per failing monitor until a person resolves it (no storms), escalation tells people again, recoveries
are noted and never resolve, governance findings are idempotent, and the board members who approved the model are
told and see them on their dashboard."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.core.dashboard import dashboard_context
from apps.core.errors import NotFound, PermissionDenied, ValidationFailed
from apps.deployments.alerts import (
    alert_acknowledge,
    alert_assign,
    alert_comment,
    alert_resolve,
    alerts_check_governance,
    alerts_sync,
    recipients_of,
)
from apps.deployments.models import Alert
from apps.ethics.models import Notice, ReviewRequest, Waiver
from apps.ethics.services import approval_revoke, review_request_deployment, vote_cast, waiver_request, waiver_vote
from apps.training.services import training_run_request
from tests.conftest import make_user
from tests.deployments.loop import deploy, report_trained, result, window
from tests.ethics.factories import set_board_rules
from tests.training.conftest import run_spec

pytestmark = pytest.mark.django_db

DRIFT = "data_drift:psi:age"


def sync(deployment, week, *results, capture=None):
    target = window(deployment, week)
    if capture is None:
        return alerts_sync(deployment=deployment, window=target, results=list(results)), target
    with capture(execute=True):
        return alerts_sync(deployment=deployment, window=target, results=list(results)), target


def notices(kind=None):
    queryset = Notice.objects.filter(kind__startswith="alert_")
    return queryset.filter(kind=kind) if kind else queryset


def test_one_monitor_failing_in_three_windows_is_one_alert_three_occurrences_one_notice_each(
    deployed, owner, admin_user, board_member, django_capture_on_commit_callbacks
):
    for week in (1, 2, 3):
        sync(deployed, week, result(DRIFT, "fail"), capture=django_capture_on_commit_callbacks)

    alert = Alert.objects.get()
    assert alert.monitor == DRIFT and alert.severity == "critical" and alert.status == "open"
    assert alert.occurrences == 3
    people = {owner.id, admin_user.id, board_member.id}
    assert {p.id for p in recipients_of(alert)} == people
    # Told once, when it opened: one notice and one e-mail each, not one per window.
    assert sorted(notices().values_list("user_id", flat=True)) == sorted(people)
    assert sorted(address for message in mail.outbox for address in message.to) == sorted(
        [owner.email, admin_user.email, board_member.email]
    )


def test_syncing_the_same_window_again_counts_it_once(deployed):
    _, first = sync(deployed, 1, result(DRIFT, "fail"))
    alerts_sync(deployment=deployed, window=first, results=[result(DRIFT, "fail")])
    assert Alert.objects.get().occurrences == 1


def test_escalation_from_warning_to_critical_tells_people_again(deployed, owner):
    sync(deployed, 1, result(DRIFT, "warn", 0.15))
    sync(deployed, 2, result(DRIFT, "warn", 0.16))
    alert = Alert.objects.get()
    assert alert.severity == "warning" and alert.escalated_at is None
    assert notices().filter(user=owner).count() == 1

    sync(deployed, 3, result(DRIFT, "fail", 0.4))
    alert.refresh_from_db()
    assert alert.severity == "critical" and alert.escalated_at is not None and alert.occurrences == 3
    assert list(notices().filter(user=owner).order_by("created_at").values_list("kind", flat=True)) == [
        "alert_opened",
        "alert_escalated",
    ]
    # A later warning does not lower it, nor tell anyone.
    sync(deployed, 4, result(DRIFT, "warn", 0.2))
    alert.refresh_from_db()
    assert alert.severity == "critical" and notices().filter(user=owner).count() == 2


def test_an_escalation_tells_the_assignee_too(deployed, owner, steward):
    sync(deployed, 1, result(DRIFT, "warn", 0.15))
    assert not notices().filter(user=steward).exists()  # a steward is told only of what is given to them
    alert_assign(actor=owner, alert=Alert.objects.get(), assignee=steward)
    sync(deployed, 2, result(DRIFT, "fail", 0.4))
    assert notices("alert_escalated").filter(user=steward).count() == 1


def test_pass_and_insufficient_open_nothing_and_a_recovery_is_noted_not_resolved(deployed):
    sync(deployed, 1, result(DRIFT, "pass", 0.02), result("performance:accuracy", "insufficient", None))
    assert not Alert.objects.exists()

    sync(deployed, 2, result(DRIFT, "fail"))
    _, recovered_in = sync(deployed, 3, result(DRIFT, "pass", 0.03))
    alert = Alert.objects.get()
    assert alert.status == "open" and alert.resolved_at is None
    assert alert.detail["recovered"]["window"]["id"] == str(recovered_in.id)
    sync(deployed, 4, result(DRIFT, "insufficient", None))
    alert.refresh_from_db()
    assert alert.status == "open" and alert.occurrences == 1


def test_after_a_person_resolves_it_the_next_failure_opens_a_new_alert(deployed, owner):
    sync(deployed, 1, result(DRIFT, "fail"))
    alert_resolve(actor=owner, alert=Alert.objects.get(), resolution="Upstream form fixed; data back to normal.")
    sync(deployed, 2, result(DRIFT, "fail"))
    assert list(Alert.objects.order_by("created_at").values_list("status", "occurrences")) == [
        ("resolved", 1),
        ("open", 1),
    ]


def test_each_sync_writes_one_event_with_counts_and_monitor_names_only(deployed):
    before = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first()
    sync(deployed, 1, result(DRIFT, "fail", 0.4321), result("fairness:false_positive_rate:sex=Female", "warn", 0.1234))
    events = list(AuditEvent.objects.filter(id__gt=before))
    assert [e.action for e in events] == ["alert.sync"]
    after = events[0].after
    assert (after["opened"], after["updated"], after["escalated"]) == (2, 0, 0)
    assert sorted(after["monitors"]["opened"]) == sorted([DRIFT, "fairness:false_positive_rate:sex=Female"])
    text = json.dumps(after)
    assert "0.4321" not in text and "0.1234" not in text  # values stay on the alert, not in the log


def test_many_alerts_in_one_window_make_one_notice_per_person(deployed, owner):
    sync(deployed, 1, *[result(f"data_drift:psi:feature{i}", "fail") for i in range(5)])
    assert Alert.objects.count() == 5
    assert notices().filter(user=owner).count() == 1
    assert "5 new alerts" in notices().get(user=owner).message


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_syncs_of_one_monitor_make_one_alert(deployed):
    windows = [window(deployed, week) for week in (1, 2, 3, 4)]
    barrier = threading.Barrier(len(windows))
    errors = []

    def run(target):
        try:
            barrier.wait()
            alerts_sync(deployment=deployed, window=target, results=[result(DRIFT, "fail")])
        except Exception as exc:  # noqa: BLE001 - any failure is the test's answer
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(target,)) for target in windows]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    alert = Alert.objects.get()
    assert alert.occurrences == 4
    assert AuditEvent.objects.filter(action="alert.sync").count() == 4


# ------------------------------------------------------------------------------------------------------ governance


def test_a_revoked_approval_raises_one_critical_alert_however_often_the_check_runs(deployed, admin_user, owner):
    approval_revoke(actor=admin_user, review=deployed.review, reason="New evidence of unfair refusals.")
    changed = alerts_check_governance()
    assert [(a.monitor, a.severity) for a in changed] == [("governance:approval", "critical")]
    alert = Alert.objects.get()
    assert any("revoked" in blocker for blocker in alert.detail["blockers"])
    told = notices().filter(user=owner).count()
    events = AuditEvent.objects.filter(action="alert.governance").count()

    for _ in range(3):  # the hourly round, again and again
        assert alerts_check_governance() == []
    assert Alert.objects.count() == 1 and notices().filter(user=owner).count() == told == 1
    assert AuditEvent.objects.filter(action="alert.governance").count() == events == 1


def test_a_deployment_in_good_standing_raises_nothing(deployed):
    assert alerts_check_governance() == []
    assert not Alert.objects.exists() and not AuditEvent.objects.filter(action="alert.governance").exists()


@pytest.fixture
def waived_deployment(org, owner, board_member, prepared_version):
    """A deployment whose approval relies on a waiver of a failing gate, granted until 60 days from now."""
    run = training_run_request(actor=owner, version=prepared_version, spec=run_spec(target_epsilon=1.0))
    model = report_trained(run, threshold=0.0001)  # a gate no real model meets: it fails
    set_board_rules(org, quorum=1, decides="settled")
    review = review_request_deployment(actor=owner, model_version=model)
    waiver = waiver_request(
        actor=owner,
        review=review,
        justification="The gap is within sampling noise; monitored weekly.",
        expires_on=timezone.localdate() + timedelta(days=60),
    )
    waiver_vote(actor=board_member, waiver=waiver, choice="approve", reason="Acceptable while monitored.")
    vote_cast(actor=board_member, review=ReviewRequest.objects.get(pk=review.pk), choice="approve", reason="Waived.")
    return deploy(model, owner=owner), Waiver.objects.get(pk=waiver.pk)


def test_a_waiver_expiring_warns_once_then_escalates_when_it_expires(waived_deployment, owner):
    deployment, waiver = waived_deployment
    assert str(waiver.id) in deployment.waivers
    assert alerts_check_governance() == []  # 60 days left: nothing yet

    soon = timezone.now() + timedelta(days=50)  # 10 days left
    changed = alerts_check_governance(now=soon)
    assert [(a.monitor, a.severity) for a in changed] == [(f"governance:waiver:{waiver.id}", "warning")]
    assert alerts_check_governance(now=soon + timedelta(hours=1)) == []
    assert notices().filter(user=owner).count() == 1

    expired = timezone.now() + timedelta(days=61)
    changed = alerts_check_governance(now=expired)
    alert = Alert.objects.get(monitor=f"governance:waiver:{waiver.id}")
    assert alert.severity == "critical" and alert.escalated_at is not None
    # The approval no longer holds without its waiver: that is its own critical finding.
    assert {a.monitor for a in changed} == {alert.monitor, "governance:approval"}
    assert alerts_check_governance(now=expired + timedelta(hours=1)) == []
    assert Alert.objects.count() == 2


# ------------------------------------------------------------------------------------------- the board who approved


def test_board_members_who_approved_get_the_notice_and_the_card(deployed, board_member, org):
    bystander = make_user("boris_bystander", organisation=org, roles=("board",))
    sync(deployed, 1, result(DRIFT, "fail"))
    assert notices().filter(user=board_member).exists()
    assert not notices().filter(user=bystander).exists()

    def cards_of(user):
        request = SimpleNamespace(user=user, organisation=org, roles={"board"})
        (section,) = dashboard_context(request)["sections"]
        return {card["title"]: card for card in section["cards"]}

    card = cards_of(board_member)["Alerts on models you approved"]
    assert card["count"] == 1 and card["tone"] == "danger"
    assert str(Alert.objects.get().id) in card["url"]
    assert "Alerts on models you approved" not in cards_of(bystander)


# -------------------------------------------------------------------------------------------------------- workflow


def test_owners_admins_and_stewards_work_alerts_and_auditors_only_read(deployed, owner, steward, auditor, outsider):
    sync(deployed, 1, result(DRIFT, "fail"))
    alert = Alert.objects.get()
    with pytest.raises(PermissionDenied):
        alert_acknowledge(actor=auditor, alert=alert)
    with pytest.raises(NotFound):
        alert_acknowledge(actor=outsider, alert=alert)
    alert = alert_acknowledge(actor=steward, alert=alert)
    assert alert.status == "acknowledged" and alert.acknowledged_by == steward
    with pytest.raises(ValidationFailed):
        alert_assign(actor=owner, alert=alert, assignee=auditor)  # cannot work it
    alert_assign(actor=owner, alert=alert, assignee=steward)
    assert Notice.objects.filter(user=steward, kind="alert_assigned").count() == 1
    with pytest.raises(ValidationFailed):
        alert_resolve(actor=owner, alert=alert, resolution="  ")
    alert = alert_resolve(actor=steward, alert=alert, resolution="Rebuilt the upstream extract.")
    assert alert.status == "resolved" and alert.resolved_by == steward


def test_only_board_members_who_approved_the_model_comment(deployed, board_member, org, auditor):
    other_member = make_user("bianca_board", organisation=org, roles=("board",))
    sync(deployed, 1, result(DRIFT, "fail"))
    alert = Alert.objects.get()
    comment = alert_comment(actor=board_member, alert=alert, body="Is the upstream form new?")
    assert comment.author == board_member
    for person in (other_member, auditor):
        with pytest.raises(PermissionDenied):
            alert_comment(actor=person, alert=alert, body="Me too.")
    event = AuditEvent.objects.get(action="alert.comment")
    assert "upstream" not in json.dumps(event.after)
