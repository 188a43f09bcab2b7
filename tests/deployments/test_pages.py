"""The deployment pages (engineer C): the inventory, a deployment with its monitoring charts and tables, alerts,
feedback triage and retraining requests; who sees which forms; other organisations answer 404; and query counts that
do not grow with the number of windows, alerts or deployments."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apps.deployments.models import Alert, Deployment, Feedback, RetrainingRequest
from apps.deployments.services import deployment_withdraw
from tests.conftest import PASSWORD
from tests.deployments.pagekit import make_alert, make_deployment, make_windows

pytestmark = pytest.mark.django_db


def signed_in(client, user):
    client.login(username=user.username, password=PASSWORD)
    return client


@pytest.fixture
def deployment(approved_model, owner):
    return make_deployment(approved_model, owner=owner)


# ------------------------------------------------------------------------------------------------------ inventory


def test_the_inventory_lists_each_active_deployment_with_its_alerts_last_window_and_expiring_waivers(
    client, owner, deployment, approved_model
):
    from apps.ethics.models import Waiver

    windows = make_windows(deployment, 8)
    make_alert(deployment, windows[5], "data_drift:psi:hours-per-week", severity="critical")
    make_alert(deployment, windows[6], "fairness:false_positive_rate:sex=Female", severity="warning")
    make_alert(deployment, windows[2], "data_drift:psi:age", severity="warning", status="resolved")
    waiver = Waiver.objects.create(
        review=deployment.review,
        waived=[{"key": "gate:demographic_parity_difference", "label": "Demographic parity difference"}],
        justification="Small groups.",
        expires_on=timezone.localdate() + timedelta(days=12),
        requested_by=owner,
        status="granted",
    )
    deployment.waivers = [str(waiver.id)]
    deployment.save()
    pilot = make_deployment(approved_model, owner=owner, environment="pilot", system="Pilot office")
    ended = make_deployment(approved_model, owner=owner, environment="test")
    deployment_withdraw(actor=owner, deployment=ended, reason="The test office closed in May.")

    page = signed_in(client, owner).get(reverse("deployments:inventory"))
    html = page.content.decode()
    assert page.status_code == 200
    rows = re.findall(r"<tr>\s*<th scope=\"row\">.*?</tr>", html, re.S)
    assert len(rows) == 2  # the withdrawn one is not in production
    production = next(r for r in rows if ">production<" in r)
    assert "1 critical" in production and "1 warning" in production  # the resolved alert is not counted
    last = windows[-1]
    assert f"{last.starts_at:%-d %b}" in production and "Alert" in production  # last window, its worst result
    assert "until " + f"{waiver.expires_on:%-d %b %Y}" in production and "Demographic parity difference" in production
    pilot_row = next(r for r in rows if ">pilot<" in r)
    assert "none evaluated yet" in pilot_row and str(pilot.id) in pilot_row


def test_the_inventory_filters_by_environment_and_alert_state_and_sorts_by_column(
    client, owner, deployment, approved_model
):
    windows = make_windows(deployment, 2)
    make_alert(deployment, windows[1], "data_drift:psi:age", severity="critical")
    make_deployment(approved_model, owner=owner, environment="pilot")
    signed_in(client, owner)

    def environments(**params):
        html = client.get(reverse("deployments:inventory"), params).content.decode()
        return re.findall(r"<td>(pilot|production)</td>", html)

    assert environments(environment="pilot") == ["pilot"]
    assert environments(alerts="critical") == ["production"]
    assert environments(alerts="none") == ["pilot"]
    assert environments(sort="environment") == ["pilot", "production"]
    assert environments(sort="-environment") == ["production", "pilot"]
    assert environments(sort="-alerts") == ["production", "pilot"]
    html = client.get(reverse("deployments:inventory"), {"sort": "-environment"}).content.decode()
    assert 'aria-sort="descending"' in html


def feedback_on(deployment, *, author=None, alert=None) -> Feedback:
    return Feedback.objects.create(
        organisation=deployment.organisation,
        deployment=deployment,
        source="internal" if author else "public",
        kind="feedback",
        body="Flagged twice this month.",
        author=author,
        alert=alert,
        triaged_by=author,
    )


def test_the_pages_take_as_many_queries_for_forty_windows_and_many_alerts_as_for_two(
    client, owner, deployment, approved_model
):
    signed_in(client, owner)
    windows = make_windows(deployment, 2)
    alert = make_alert(deployment, windows[1], "data_drift:psi:hours-per-week")
    feedback_on(deployment, author=owner, alert=alert)
    urls = [
        reverse("deployments:inventory"),
        reverse("deployments:detail", args=[deployment.id]),
        reverse("deployments:alerts") + "?status=all",
        reverse("deployments:feedback") + "?status=all",
    ]
    baseline = {}
    for url in urls:
        client.get(url)  # warm caches (content types, session)
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        baseline[url] = len(queries)

    Deployment.objects.filter(pk=deployment.pk).update(deployed_on=timezone.localdate() - timedelta(days=400))
    more = make_deployment(approved_model, owner=owner, environment="pilot")
    for target in (deployment, more):
        target.windows.all().delete()
        windows = make_windows(target, 40)
        for index, window in enumerate(windows[5:25]):
            alert = make_alert(target, window, f"data_drift:psi:feature-{index}", severity="warning")
            feedback_on(target, author=owner if index % 2 else None, alert=alert)
    for url in urls:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        assert len(queries) <= baseline[url], f"{url}: {len(queries)} queries, {baseline[url]} before"


# ------------------------------------------------------------------------------------------------ deployment page


def test_the_deployment_page_draws_every_monitor_over_the_windows_with_gaps_markers_and_data_tables(
    client, owner, deployment
):
    windows = make_windows(deployment, 8, insufficient=(3,))
    make_alert(deployment, windows[5], "data_drift:psi:hours-per-week")
    make_alert(deployment, windows[5], "fairness:false_positive_rate:sex=Female")
    html = signed_in(client, owner).get(reverse("deployments:detail", args=[deployment.id])).content.decode()

    figures = re.findall(r'<figure class="chart" id="figure-([^"]+)">(.*?)</figure>', html, re.S)
    keys = [key for key, _body in figures]
    assert keys == [
        "drift-age",
        "drift-hours-per-week",
        "prediction-drift",
        "performance-accuracy",
        "fairness-false_positive_rate-sex",
    ]
    bodies = dict(figures)
    for key, body in bodies.items():
        assert 'role="img"' in body and "<desc" in body, key  # a text alternative
        assert "<table" in body and body.count("<tr>") == 1 + 8, key  # a header row and one row per window
    drift = bodies["drift-hours-per-week"]
    # The plan's warn and alert thresholds are drawn as lines and named in the legend.
    assert drift.count('class="threshold"') == 2 and "warn 0.10" in drift and "alert 0.25" in drift
    # Week 3 had too few rows: a shaded gap, said in words, and no point drawn there.
    assert drift.count(f"{windows[2].starts_at:%d %b}: insufficient data") == 1
    assert "insufficient data (no value drawn)" in drift
    assert len(re.findall(r"<circle ", drift)) == 7
    assert re.search(r"<th scope=\"row\">[^<]*</th><td class=\"num\">12</td><td class=\"num\">insufficient data", drift)
    # The alert opened in week 6 is marked on its own chart only.
    assert f"{windows[5].starts_at:%d %b}: alert opened" in drift
    assert "alert opened" not in bodies["drift-age"].split("<desc")[1].split("</svg>")[0].replace("alert opened:", "")
    fairness = bodies["fairness-false_positive_rate-sex"]
    assert "sex=Female" in fairness and "sex=Male" in fairness and "<polygon" in fairness  # interval bands
    assert "0.310 [0.270, 0.360] (alert, limit 0.130)" in fairness  # value, interval, status and its limit


def test_an_auditor_reads_every_deployment_page_and_gets_no_action_form(
    client, auditor, owner, deployment, board_member
):
    windows = make_windows(deployment, 3)
    alert = make_alert(deployment, windows[2], "data_drift:psi:hours-per-week")
    feedback = Feedback.objects.create(
        organisation=deployment.organisation,
        deployment=deployment,
        source="public",
        kind="contestation",
        body="I was refused.",
        contact="me@example.org",
    )
    retraining = RetrainingRequest.objects.create(
        organisation=deployment.organisation,
        deployment=deployment,
        usecase=deployment.usecase,
        reason="Drift on hours per week.",
        alert=alert,
        opened_by=owner,
    )
    signed_in(client, auditor)
    pages = {
        "inventory": reverse("deployments:inventory"),
        "deployment": reverse("deployments:detail", args=[deployment.id]),
        "alerts": reverse("deployments:alerts"),
        "alert": reverse("deployments:alert", args=[alert.id]),
        "feedback": reverse("deployments:feedback") + "?status=all",
        "retraining": reverse("deployments:retraining", args=[retraining.id]),
    }
    for name, url in pages.items():
        response = client.get(url)
        assert response.status_code == 200, name
        html = response.content.decode()
        forms = [f for f in re.findall(r'<form method="post"[^>]*>', html) if "logout" not in f]
        assert forms == [], f"{name} offers {forms}"
    assert "I was refused." in client.get(pages["feedback"]).content.decode()  # read, but...
    assert "me@example.org" not in client.get(pages["feedback"]).content.decode()  # ...no contact details

    # The same pages offer their forms to the owner.
    signed_in(client, owner)
    html = client.get(pages["deployment"]).content.decode()
    for action in ("token_create", "withdraw", "report"):
        assert reverse(f"deployments:{action}", args=[deployment.id]) in html, action
    html = client.get(pages["alert"]).content.decode()
    for action in ("alert_acknowledge", "alert_assign", "alert_resolve", "alert_comment"):
        assert reverse(f"deployments:{action}", args=[alert.id]) in html, action
    assert reverse("deployments:feedback_triage", args=[feedback.id]) in client.get(pages["feedback"]).content.decode()


def test_another_organisations_deployment_and_everything_on_it_answer_404(client, outsider, owner, deployment):
    windows = make_windows(deployment, 2)
    alert = make_alert(deployment, windows[1], "data_drift:psi:age")
    feedback = Feedback.objects.create(
        organisation=deployment.organisation, deployment=deployment, source="public", kind="feedback", body="Hi"
    )
    retraining = RetrainingRequest.objects.create(
        organisation=deployment.organisation,
        deployment=deployment,
        usecase=deployment.usecase,
        reason="Drift.",
        opened_by=owner,
    )
    signed_in(client, outsider)
    for url in (
        reverse("deployments:detail", args=[deployment.id]),
        reverse("deployments:alert", args=[alert.id]),
        reverse("deployments:retraining", args=[retraining.id]),
        reverse("deployments:alerts") + f"?deployment={deployment.id}",
        reverse("deployments:feedback") + f"?deployment={deployment.id}",
    ):
        assert client.get(url).status_code == 404, url
    for url in (
        reverse("deployments:withdraw", args=[deployment.id]),
        reverse("deployments:token_create", args=[deployment.id]),
        reverse("deployments:report", args=[deployment.id]),
        reverse("deployments:alert_acknowledge", args=[alert.id]),
        reverse("deployments:alert_retrain", args=[alert.id]),
        reverse("deployments:feedback_triage", args=[feedback.id]),
    ):
        assert client.post(url, {"reason": "Because I can, really.", "name": "x"}).status_code == 404, url
    inventory = client.get(reverse("deployments:inventory")).content.decode()
    assert str(deployment.id) not in inventory
    alert.refresh_from_db()
    assert alert.status == Alert.Status.OPEN
