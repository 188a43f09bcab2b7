"""Journey 4 in Chromium: the evaluation page with gates, group tables, charts and the audit; a stricter gate turns
red on the next evaluation, run by a real worker."""

import re

import pytest

from apps.evaluation.models import Evaluation
from apps.training.services import training_run_request
from tests.conftest import PASSWORD, run_inline
from tests.fixtures.browser import login
from tests.training.conftest import run_spec

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_an_owner_reads_the_evaluation_and_a_stricter_gate_fails_the_next_one(
    celery_worker, page, live_server, owner, prepared_version
):
    run = training_run_request(actor=owner, version=prepared_version, spec=run_spec(target_epsilon=2.0))
    run_inline(run.job_id)
    first = Evaluation.objects.get()
    run_inline(first.job_id)
    first.refresh_from_db()
    value = first.results["gates"][0]["value"]
    celery_worker()

    login(page, live_server, owner.username, PASSWORD)
    page.goto(f"{live_server.url}/evaluation/{first.id}/")
    assert page.get_by_text("All gates pass").first.is_visible()
    gates = page.get_by_role("region", name="Fairness gates")
    assert gates.get_by_role("cell", name="Pass").is_visible()
    for heading in ["By sex", "By race", "By sex x race", "Privacy audit (membership inference)"]:
        assert page.get_by_role("heading", name=heading, exact=True).is_visible()
    assert page.get_by_role("img").count() >= 5  # gate chart, three group charts, audit chart
    audit = page.get_by_role("region", name="Privacy audit (membership inference)")
    assert "Proven epsilon" in audit.inner_text() and "Empirical epsilon lower bound" in audit.inner_text()

    page.get_by_label("Gate", exact=True).select_option("demographic_parity_difference")
    page.get_by_label("Stricter threshold").fill(f"{value / 2:.6f}")
    page.get_by_role("button", name="Tighten gate").click()
    assert page.get_by_text("Gate tightened").is_visible()
    page.get_by_role("button", name="Evaluate again with the current policy").click()
    for _ in range(120):
        if page.get_by_text("Some gates fail").count():
            break
        page.wait_for_timeout(500)
        page.reload()
    assert page.get_by_role("region", name="Fairness gates").get_by_role("cell", name="Fail").is_visible()
    assert re.search(r"at most 0\.\d+", page.get_by_role("region", name="Fairness gates").inner_text())
