"""The mitigation journey in Chromium, with a real worker: the owner opens the explanation of a held-out row, runs a
threshold mitigation and sends the candidate to review; a board member sees it against the original on the review
page, and reaches the model page from there."""

import pytest

from apps.ethics.models import ReviewRequest
from apps.evaluation.models import Evaluation
from apps.training.models import ModelVersion
from apps.training.services import training_run_request
from tests.conftest import PASSWORD, run_inline
from tests.fixtures.browser import login
from tests.training.conftest import run_spec
from tests.web.test_dashboards_in_browser import UNLABELLED_CONTROLS_JS

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def wait_for(page, check, *, tries: int = 240) -> None:
    """Reload until ``check()`` holds (the worker finishes in the background)."""
    for _ in range(tries):
        if check():
            return
        page.wait_for_timeout(500)
        page.reload()
    raise AssertionError("the page never showed what the worker should have produced")


def test_the_owner_explains_a_row_mitigates_and_the_board_sees_the_comparison(
    celery_worker, browser, page, live_server, owner, board_member, prepared_version
):
    run = training_run_request(actor=owner, version=prepared_version, spec=run_spec(target_epsilon=2.0))
    run_inline(run.job_id)
    run.refresh_from_db()
    original = run.model_version
    run_inline(Evaluation.objects.get(model_version=original).job_id)
    celery_worker()

    login(page, live_server, owner.username, PASSWORD)
    page.goto(f"{live_server.url}/training/runs/{run.id}/")
    page.get_by_role("link", name="Explanations and mitigation").click()
    assert page.get_by_role("heading", name="Explain a held-out row").is_visible()
    assert page.evaluate(UNLABELLED_CONTROLS_JS) == []

    # The explanation of held-out row 5, computed by the worker while the section polls.
    page.get_by_label("Position (1 to").fill("5")
    page.get_by_role("button", name="Explain this row").click()
    section = page.get_by_role("region", name="Explanation for the person concerned")
    section.wait_for(timeout=120_000)
    assert page.get_by_role("heading", name="Explanation of held-out row 5").is_visible()
    assert "the score the most" in section.inner_text()
    assert page.get_by_role("img", name="Contributions to the log-odds").is_visible()

    # A threshold mitigation: it spends no budget, and the page says the thresholds use the validation rows.
    assert page.get_by_text("Thresholds are fitted on the run's validation rows").is_visible()
    page.get_by_label("Method").select_option("thresholds")
    page.get_by_label("Constraint").select_option("demographic_parity")
    page.get_by_label("Sensitive attribute").select_option("sex")
    page.get_by_role("button", name="Run the mitigation").click()
    assert page.get_by_role("heading", name="Mitigation run (group thresholds)").is_visible()
    page.get_by_role("button", name="Request deployment review").wait_for(timeout=120_000)
    candidate = ModelVersion.objects.get(parent=original)
    # Its evaluation runs on the worker; the review binds it once it has finished.
    wait_for(page, lambda: Evaluation.objects.filter(model_version=candidate, status="succeeded").exists())
    page.get_by_role("button", name="Request deployment review").click()
    review = ReviewRequest.objects.get(model_version=candidate)
    assert review.bindings["mitigation"]["parent"]["sha256"] == original.sha256

    board = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    board.set_default_timeout(15000)
    login(board, live_server, board_member.username, PASSWORD)
    board.goto(f"{live_server.url}/reviews/{review.id}/")
    comparison = board.get_by_role("region", name="Candidates compared")
    assert comparison.is_visible()
    rows = comparison.get_by_role("row")
    assert rows.count() == 3  # the header, the original and the candidate
    assert str(original) in comparison.inner_text() and "group thresholds" in comparison.inner_text()
    assert board.get_by_role("img", name="Accuracy against demographic parity difference").is_visible()
    board.get_by_role("link", name="Open the model page").click()
    assert board.get_by_role("heading", name="What was mitigated").is_visible()
    assert board.get_by_role("button", name="Run the mitigation").count() == 0  # the board reads, it does not act
