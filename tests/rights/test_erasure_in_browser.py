# ruff: noqa: F811 - pytest fixtures imported from tests.rights.kit are redefined as test arguments
"""Issue 15's journey in Chromium with a real worker: the privacy officer registers an erasure for an applicant,
sees the trace (versions and the model with its split membership), records the DP decision, completes it, downloads
the signed certificate and verifies it; a new preparation no longer holds the person; the model page shows the flag."""

from __future__ import annotations

import re

import pytest

from apps.consent.services import pseudonym_secret
from apps.datasets.models import DatasetVersion
from apps.datasets.services import dataset_version_prepare_start
from apps.datasets.tables import read_version_table
from apps.rights.models import SubjectRequest
from tests.conftest import PASSWORD
from tests.fixtures.browser import login
from tests.rights.kit import (  # noqa: F401 - shared fixtures
    approved_usecase,
    officer,
    positions_in,
    prepared_version,
    private_storage,
    trained,
)
from tests.web.test_dashboards_in_browser import UNLABELLED_CONTROLS_JS
from tests.web.test_journeys_in_browser import wait_for_text
from workers.engine.consent import pseudonymise


def serious_violations(page) -> list[str]:  # type: ignore[no-untyped-def]
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [v["id"] for v in results.response["violations"] if v["impact"] in ("serious", "critical")]


pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_the_privacy_officer_erases_an_applicant_end_to_end(
    page,
    live_server,
    org,
    officer,
    steward,
    trained,
    prepared_version,
    celery_worker,
    tmp_path,  # noqa: F811
):
    raw = prepared_version.parent
    # An applicant whose row is in the model's training rows, so the model page must flag them once erased.
    secret = pseudonym_secret(org)
    by_pseudonym = {pseudonymise(f"A-{i:05d}", secret): f"A-{i:05d}" for i in range(1, 2001)}
    column = read_version_table(prepared_version).column(prepared_version.subject_key_column).to_pylist()
    person = by_pseudonym[column[sorted(trained.training_run.split["train"])[0]]]
    celery_worker()
    login(page, live_server, officer.username, PASSWORD)
    page.get_by_role("link", name="Rights requests").click()
    page.get_by_role("link", name="Register a request").click()
    assert page.evaluate(UNLABELLED_CONTROLS_JS) == []
    assert serious_violations(page) == []
    page.get_by_label("Kind of request").select_option("erasure")
    page.get_by_label("The person's identifier").fill(person)
    page.get_by_label("How the identity was verified").fill("Signed letter matched to the application file.")
    page.get_by_role("button", name="Register").click()

    wait_for_text(page, "Dataset versions holding the person's rows", timeout_s=60)
    assert person not in page.content()  # the page knows only the pseudonym
    assert page.evaluate(UNLABELLED_CONTROLS_JS) == []
    assert serious_violations(page) == []
    versions = page.locator("#trace-versions").inner_text()
    assert versions.count(prepared_version.dataset.name) == 2  # the raw upload and the prepared version
    models = page.locator("#trace-models").inner_text()
    assert f"Model version {trained.number}" in models and "ε = " in models
    split = trained.training_run.split
    request = SubjectRequest.objects.get()
    [position] = positions_in(prepared_version, prepared_version.subject_key_column, request.pseudonym)
    part = next(p for p in ("train", "validation", "test") if position in split[p])
    row = page.locator("#trace-models tbody tr").first
    cells = row.locator("td").all_inner_texts()
    assert cells[3:6] == [str(int(p == part)) for p in ("train", "validation", "test")]

    page.get_by_label("Decision").select_option("keep_dp")
    page.get_by_role("button", name="Record decision").click()
    assert page.get_by_text("Decision recorded.").is_visible()
    page.get_by_role("button", name="Execute the erasure").click()
    wait_for_text(page, "Download the signed certificate", timeout_s=90)
    outcome = page.locator("#outcome").inner_text()
    assert serious_violations(page) == []
    assert "Rows removed" in outcome and "differential privacy" in outcome

    with page.expect_download() as info:
        page.get_by_role("link", name="Download the signed certificate").click()
    certificate = tmp_path / info.value.suggested_filename
    info.value.save_as(certificate)
    assert certificate.read_bytes()[:5] == b"%PDF-"
    page.goto(f"{live_server.url}/reports/verify/")
    page.get_by_label("Report (PDF)").set_input_files(str(certificate))
    page.get_by_role("button", name="Check").click()
    assert page.get_by_role("heading", name="Authentic").is_visible()

    # A new preparation of the replacement raw version no longer contains the person.
    raw.refresh_from_db()
    assert raw.status == DatasetVersion.Status.REPLACED and not raw.wrapped_key
    new_raw = DatasetVersion.objects.get(pk=raw.replaced_by_id)
    for _ in range(120):  # the worker profiles the new version
        new_raw.refresh_from_db()
        if new_raw.status == DatasetVersion.Status.READY:
            break
        page.wait_for_timeout(500)
    job = dataset_version_prepare_start(actor=steward, version=new_raw)
    for _ in range(180):  # the worker prepares it
        job.refresh_from_db()
        if job.status in ("succeeded", "failed", "cancelled"):
            break
        page.wait_for_timeout(500)
    assert job.status == "succeeded", job.error
    ended = job
    fresh = DatasetVersion.objects.get(pk=ended.result["version_id"])
    pseudonym = pseudonymise(person, secret)
    assert positions_in(fresh, fresh.subject_key_column, pseudonym) == []
    assert fresh.row_count == prepared_version.row_count - 1

    page.goto(f"{live_server.url}/evaluation/models/{trained.pk}/")
    assert page.get_by_text(re.compile(r"Trained on data since withdrawn: 1 person\b")).is_visible()
