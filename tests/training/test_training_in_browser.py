"""Journey 3 in Chromium: an owner launches a DP run, watches it to the end, and is refused an overspend."""

import re

import pytest

from tests.conftest import PASSWORD
from tests.fixtures.browser import login

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_an_owner_trains_privately_watches_progress_and_cannot_overspend(
    celery_worker, page, live_server, owner, prepared_version
):
    celery_worker()
    login(page, live_server, owner.username, PASSWORD)
    page.get_by_role("link", name="Training", exact=True).click()
    page.get_by_role("button", name="Configure").click()
    page.get_by_label("Target epsilon").fill("3")
    page.get_by_label("Epochs").fill("4")
    page.get_by_role("button", name="Launch run").click()
    page.wait_for_load_state()
    assert "/training/runs/" in page.url, page.locator("main").inner_text()[:1500]
    progress = page.get_by_role("progressbar").first
    assert progress.is_visible()
    # The page polls itself with htmx: no reload here, the live region updates until the run ends.
    page.get_by_text("Epsilon spent", exact=True).wait_for(timeout=120_000)
    result = page.get_by_role("region", name="Result")
    assert re.search(r"2\.9\d|3\.0\d", result.inner_text())  # epsilon spent ~ the target of 3
    assert "PLD accountant" in result.inner_text()
    budget = page.get_by_role("region", name="Privacy budget of this dataset")
    assert "Remaining" in budget.inner_text()
    assert page.get_by_role("img", name=re.compile("Privacy spent")).count() == 1

    page.get_by_role("link", name="Private training").click()
    page.get_by_role("button", name="Configure").click()
    page.get_by_label("Target epsilon").fill("3")
    page.get_by_role("button", name="Launch run").click()
    refusal = page.get_by_role("alert").first.inner_text() + page.locator(".messages").inner_text()
    assert "exceed the dataset's privacy budget" in refusal
    assert "cap 5" in refusal and "requested 3" in refusal
