"""The review page as people met it: the decision box wraps its waiver text, the page fits a 390 px phone, a decided
review lists nobody as "still to vote", a recused member is not offered a waiver request, and a refused vote says so
beside the vote form."""

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from apps.accounts.models import User
from apps.ethics.models import ReviewRequest
from apps.ethics.services import review_recuse, review_request_deployment, vote_cast, waiver_request, waiver_vote
from apps.training.models import ModelVersion
from apps.usecases.services import usecase_tighten_gate
from tests.ethics.conftest import reevaluate
from tests.fixtures.browser import login

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# Elements wider than the viewport, for a readable failure message.
OVERFLOWING_JS = """() => [...document.querySelectorAll('main *')]
  .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
  .slice(0, 8).map(e => e.tagName + '.' + e.className + ': ' + (e.textContent || '').trim().slice(0, 60))"""


def signed_in(browser, live_server, username, width=1280):
    context = browser.new_context(viewport={"width": width, "height": 900})
    context.set_default_timeout(15000)
    page = context.new_page()
    login(page, live_server, username, f"attest-demo-{username}-2026")
    return page


def user(name):
    return User.objects.get(username=name)


def test_the_review_page_fits_every_screen_and_shows_people_what_concerns_them(
    browser, live_server, settings, tmp_path
):
    settings.STORAGE_ROOT = tmp_path
    call_command("seed_demo", stdout=io.StringIO())
    model = ModelVersion.objects.get(organisation__slug="mods", non_private=False, parent__isnull=True)
    # The demo's board approved this model and it runs in production (journey 7); the owner asks for a new review.
    review_request_deployment(actor=user("owner"), model_version=model)
    usecase_tighten_gate(
        actor=user("owner"), usecase=model.usecase, metric="demographic_parity_difference", threshold=0.0001
    )
    reevaluate(model, actor=user("owner"))
    review = ReviewRequest.objects.get(model_version=model, status="open")
    url = f"{live_server.url}/reviews/{review.id}/"

    # A board member who recused is not offered a waiver request (nor a vote).
    review_recuse(actor=user("board3"), review=review, reason="I advised the vendor last year.")
    board3 = signed_in(browser, live_server, "board3")
    board3.goto(url)
    assert board3.get_by_text("You declared a conflict of interest").is_visible()
    assert board3.get_by_role("button", name="Request waiver").count() == 0

    # A refused vote is explained beside the vote form, not at the top of a long page.
    board1 = signed_in(browser, live_server, "board1")
    board1.goto(url)
    board1.get_by_label("Approve", exact=True).check()
    board1.get_by_role("textbox", name="Reason", exact=True).fill("The gap is small.")
    board1.get_by_role("button", name="Cast vote").click()
    alert = board1.locator("#section-votes [role=alert]")
    assert "cannot be approved" in alert.inner_text()
    assert board1.locator("main > div[role=status]").get_by_text("cannot be approved").count() == 0
    assert board1.url.endswith("#section-votes")

    # A long waiver, granted, then an approval: the decided review.
    owner = user("owner")
    waiver = waiver_request(
        actor=owner,
        review=review,
        expires_on=timezone.localdate() + timedelta(days=60),
        justification="The gap is within sampling noise on 4,900 rows; caseworkers review every flag. " * 3,
    )
    for name in ("board1", "board2"):
        waiver_vote(actor=user(name), waiver=waiver, choice="approve", reason="Acceptable under monitoring.")
    for name in ("board1", "board2"):
        vote_cast(actor=user(name), review=review, choice="approve", reason="Approved under the waiver.")
    review.refresh_from_db()
    assert review.status == "decided"

    for width in (1366, 390):
        page = signed_in(browser, live_server, "owner", width=width)
        page.goto(url)
        assert page.get_by_role("heading", name="Decision: Approved").is_visible()
        note = page.locator(".waiver-note").first
        # The waiver's text is laid out in full inside the decision box: nothing is clipped or runs past it.
        assert note.evaluate("e => e.scrollWidth <= e.clientWidth + 1")
        box = page.locator("#decision-heading").locator("xpath=..").bounding_box()
        note_box = note.bounding_box()
        assert note_box["x"] + note_box["width"] <= box["x"] + box["width"] + 1
        assert page.evaluate("document.documentElement.scrollWidth") <= width, page.evaluate(OVERFLOWING_JS)
        votes = page.locator("#section-votes").inner_text()
        assert "Still to vote" not in votes
        page.context.close()
