"""Journey 7 in Chromium: the owner deploys an approved model from its page; production batches with a drifted
feature arrive (through the services) and their window is evaluated; the drift alert appears on the deployment page
and is acknowledged in the browser; a retraining request is opened from it; the board member who approved the model
sees the alert on their dashboard and reads the retraining request. axe finds no serious violation on the
deployment page, the inventory or the alert page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from apps.deployments.models import Alert, Deployment, MonitoringWindow, ProductionBatch, RetrainingRequest
from apps.deployments.services import monitoring_windows_close_due, production_batch_upload
from tests.conftest import PASSWORD, run_inline
from tests.deployments.kit import build_reference_now, csv_bytes, production
from tests.fixtures.browser import login
from tests.web.test_accessibility_in_browser import serious
from tests.web.test_dashboards_in_browser import UNLABELLED_CONTROLS_JS

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def signed_in(browser, live_server, user):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15000)
    page = context.new_page()
    login(page, live_server, user.username, PASSWORD)
    return page


def replay_last_week(deployment, owner, *, rows: int, drift_hours: int) -> MonitoringWindow:
    """Production rows of last week (Adult rows the model never trained on, hours per week shifted), uploaded through
    the portal's service and dated in last week before their job folds them in; then the hourly round evaluates the
    ended window."""
    frame = production(5000, rows, labelled=True)
    frame["hours-per-week"] = (frame["hours-per-week"] + drift_hours).clip(upper=99)
    upload = SimpleUploadedFile("week.csv", csv_bytes(frame), content_type="text/csv")
    batch = production_batch_upload(actor=owner, deployment=deployment, uploaded_file=upload)
    last_week = timezone.now() - timedelta(days=7)
    ProductionBatch.objects.filter(pk=batch.pk).update(received_at=last_week)
    run_inline(batch.job)
    (window,) = [w for w in monitoring_windows_close_due() if w.deployment_id == deployment.id]
    run_inline(window.job)
    window.refresh_from_db()
    return window


def test_the_owner_deploys_acknowledges_a_drift_alert_and_opens_a_retraining_request_the_board_sees_it(
    browser, live_server, owner, board_member, approved_model
):
    axe = Axe()
    owner_page = signed_in(browser, live_server, owner)
    owner_page.goto(f"{live_server.url}/training/runs/{approved_model.training_run_id}/")
    assert owner_page.get_by_role("heading", name="Where it runs").is_visible()
    owner_page.get_by_label("Environment").fill("production")
    owner_page.get_by_label("System it runs in").fill("Benefits case management")
    owner_page.get_by_role("button", name="Deploy this model").click()
    owner_page.wait_for_url("**/deployments/*/")
    deployment = Deployment.objects.get()
    assert deployment.environment == "production" and deployment.owner == owner
    assert owner_page.get_by_text("is deployed to production").is_visible()
    assert owner_page.get_by_text("No window has been evaluated yet").is_visible()

    # Production data arrives through the services: a week in which hours per week drifted.
    build_reference_now(approved_model)
    window = replay_last_week(deployment, owner, rows=700, drift_hours=15)
    drift = Alert.objects.get(deployment=deployment, monitor="data_drift:psi:hours-per-week")
    assert drift.status == "open" and drift.window == window

    owner_page.reload()
    alerts = owner_page.get_by_role("region", name="Open alerts")
    alerts.get_by_role("link", name=drift.title).click()
    owner_page.wait_for_url(f"**/deployments/alerts/{drift.id}/")
    assert owner_page.get_by_role("heading", name="What the monitor found").is_visible()
    assert owner_page.evaluate(UNLABELLED_CONTROLS_JS) == []
    owner_page.get_by_role("button", name="Acknowledge").click()
    assert owner_page.get_by_text("Alert acknowledged").is_visible()
    drift.refresh_from_db()
    assert drift.status == "acknowledged" and drift.acknowledged_by == owner
    assert not serious(axe.run(owner_page)), "alert page"

    owner_page.get_by_label("Why retrain").fill("Hours per week drifted last week; retrain on the newest version.")
    owner_page.get_by_role("button", name="Open a retraining request").click()
    request = RetrainingRequest.objects.get()
    owner_page.wait_for_url(f"**/deployments/retraining/{request.id}/")
    assert request.alert == drift and request.opened_by == owner
    assert owner_page.get_by_role("heading", name="The training run it pre-fills").is_visible()
    assert owner_page.get_by_role("button", name="Launch the training run").is_visible()

    # The charts show the drifted week, with an alert marker and a data table a screen reader can read.
    owner_page.goto(f"{live_server.url}/deployments/{deployment.id}/")
    chart = owner_page.locator("#figure-drift-hours-per-week")
    assert chart.get_by_role("img").count() == 1
    assert "alert opened" in chart.locator("desc").first.text_content()
    chart.get_by_text("Data table:").click()
    assert chart.get_by_role("table").is_visible()
    for path in (f"/deployments/{deployment.id}/", "/deployments/"):
        owner_page.goto(f"{live_server.url}{path}")
        assert not serious(axe.run(owner_page)), path
    owner_page.goto(f"{live_server.url}/deployments/")
    assert owner_page.get_by_role("cell", name="production", exact=True).is_visible()

    # The board member who approved the model sees the alert on their dashboard and reads the retraining request.
    board = signed_in(browser, live_server, board_member)
    card = board.locator(".card", has=board.get_by_role("heading", name="Alerts on models you approved"))
    unresolved = Alert.objects.filter(deployment=deployment).exclude(status="resolved").count()
    assert card.get_by_label(f"Alerts on models you approved: {unresolved}").is_visible()
    card.get_by_role("link").click()
    board.get_by_role("link", name=drift.title).click()
    board.wait_for_url(f"**/deployments/alerts/{drift.id}/")
    assert "Acknowledged" in board.get_by_role("heading", level=1).inner_text()
    assert board.get_by_role("button", name="Acknowledge").count() == 0  # board members do not work alerts
    board.get_by_role("link", name="Retraining request opened").click()
    assert board.get_by_role("heading", name="Retraining request").is_visible()
    assert board.get_by_role("button", name="Launch the training run").count() == 0
    assert not serious(axe.run(board)), "retraining page"
