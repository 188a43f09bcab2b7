"""Journey 5 in Chromium, on the demo organisation: three board members review the demo model; one recuses; a failing
gate blocks approval until a waiver passes; quorum is reached and the owner sees the decision."""

import io

import pytest
from django.core.management import call_command

from apps.accounts.models import User
from apps.ethics.models import Decision, ReviewRequest
from apps.ethics.services import review_request_deployment
from apps.training.models import ModelVersion
from apps.usecases.services import usecase_tighten_gate
from tests.ethics.conftest import reevaluate
from tests.fixtures.browser import login
from tests.web.test_dashboards_in_browser import UNLABELLED_CONTROLS_JS

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def signed_in(browser, live_server, username):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15000)
    page = context.new_page()
    login(page, live_server, username, f"attest-demo-{username}-2026")
    return page


def test_the_board_reviews_the_demo_model(browser, live_server, settings, tmp_path):
    settings.STORAGE_ROOT = tmp_path
    call_command("seed_demo", stdout=io.StringIO())
    model = ModelVersion.objects.get(organisation__slug="mods", non_private=False, parent__isnull=True)
    owner = User.objects.get(username="owner")
    # The demo's board approved this model and it runs in production (journey 7); the owner asks for a new review.
    review_request_deployment(actor=owner, model_version=model)
    # The owner tightens a gate beyond what the model meets; its next evaluation fails the gate, and the open
    # review (bound to the old evaluation) is superseded by a new one.
    usecase_tighten_gate(actor=owner, usecase=model.usecase, metric="demographic_parity_difference", threshold=0.0001)
    assert reevaluate(model, actor=owner).verdict == "fail"
    review = ReviewRequest.objects.get(model_version=model, status="open")
    assert review.previous is not None and review.previous.status == "superseded"
    url = f"{live_server.url}/reviews/{review.id}/"

    board3 = signed_in(browser, live_server, "board3")
    assert board3.get_by_role("heading", name="Reviews awaiting your vote").is_visible()
    board3.goto(url)
    for heading in ["Use case and DPIA", "Datasets", "Privacy", "Evaluation", "Model card", "Checklist", "Votes"]:
        assert board3.get_by_role("heading", name=heading, exact=True).is_visible()
    assert board3.get_by_text("Approval blocked").is_visible()
    assert board3.evaluate(UNLABELLED_CONTROLS_JS) == []
    board3.get_by_label("Conflict of interest").fill("I advised the vendor of the case system last year.")
    board3.get_by_role("button", name="Declare and recuse").click()
    assert board3.get_by_text("you take no part in this review").is_visible()
    assert board3.get_by_role("button", name="Cast vote").count() == 0

    board1 = signed_in(browser, live_server, "board1")
    board1.goto(url)
    board1.get_by_label("Approve", exact=True).check()
    board1.get_by_role("textbox", name="Reason", exact=True).fill("The gap is small.")
    board1.get_by_role("button", name="Cast vote").click()
    assert board1.get_by_text("cannot be approved").is_visible()
    assert not Decision.objects.filter(review=review).exists()

    owner_page = signed_in(browser, live_server, "owner")
    owner_page.goto(url)
    assert owner_page.get_by_role("button", name="Cast vote").count() == 0  # separation of duties
    owner_page.get_by_label("Justification").fill(
        "The gap is within sampling noise on 4,900 rows; caseworkers review every flag; monitored monthly."
    )
    owner_page.get_by_role("button", name="Request waiver").click()
    assert owner_page.get_by_text("open for the board's votes").is_visible()

    board2 = signed_in(browser, live_server, "board2")
    for member in (board1, board2):
        member.goto(url)
        member.get_by_label("Your vote on the waiver").select_option("approve")
        member.get_by_label("Reason for the waiver vote").fill("Acceptable under monthly monitoring.")
        member.get_by_role("button", name="Vote on waiver").click()
        assert member.get_by_text("Your vote on the waiver is recorded").is_visible()
    assert board2.get_by_text("in force until").is_visible()
    assert board2.get_by_text("Approval blocked").count() == 0

    board1.goto(url)
    assert board1.get_by_text("2 more vote(s) needed for quorum").first.is_visible()
    for member in (board1, board2):
        member.goto(url)
        member.get_by_label("Approve", exact=True).check()
        member.get_by_role("textbox", name="Reason", exact=True).fill(
            "Approved under the waiver; the model card states the limits."
        )
        member.get_by_role("button", name="Cast vote").click()
        assert member.get_by_text("Your vote is recorded").is_visible()

    owner_page.goto(url)
    assert owner_page.get_by_role("heading", name="Decision: Approved").is_visible()
    owner_page.goto(f"{live_server.url}/training/runs/{model.training_run_id}/")
    assert owner_page.get_by_text("Approved for deployment").is_visible()
    assert owner_page.get_by_text("Waiver until").is_visible()
    owner_page.goto(f"{live_server.url}/reviews/notices/")
    assert owner_page.get_by_text(f"{review.reference} decided: approved").is_visible()
    decision = Decision.objects.get(review=review)
    assert decision.outcome == "approved" and decision.tally["recused"] == 1 and decision.waivers
