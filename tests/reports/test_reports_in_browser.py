"""Journey 6 in Chromium on the demo organisation: the auditor finds the demo model's reports, downloads each, and
checks them on the verify page; a copy changed by one byte is refused."""

import io

import pytest
from django.core.management import call_command

from apps.reports.models import Report
from apps.training.models import ModelVersion
from tests.fixtures.browser import login
from tests.web.test_dashboards_in_browser import UNLABELLED_CONTROLS_JS

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_the_auditor_downloads_and_verifies_the_demo_models_reports(page, live_server, settings, tmp_path):
    settings.STORAGE_ROOT = tmp_path / "storage"
    call_command("seed_demo", stdout=io.StringIO())
    model = ModelVersion.objects.get(organisation__slug="mods", non_private=False, parent__isnull=True)
    expected = set(Report.objects.filter(model_version=model, status="ready").values_list("reference", flat=True))
    assert len(expected) >= 2  # the model card and the Annex IV documentation

    login(page, live_server, "auditor", "attest-demo-auditor-2026")
    page.get_by_role("link", name="Reports").first.click()
    assert page.evaluate(UNLABELLED_CONTROLS_JS) == []
    page.get_by_label("Model", exact=True).select_option(str(model.id))
    page.get_by_role("button", name="Filter").click()
    links = page.get_by_role("link", name=".pdf")
    names = {links.nth(i).inner_text().removesuffix(".pdf") for i in range(links.count())}
    assert names == expected
    downloaded = []
    for i in range(links.count()):
        with page.expect_download() as info:
            links.nth(i).click()
        path = tmp_path / info.value.suggested_filename
        info.value.save_as(path)
        assert path.read_bytes()[:5] == b"%PDF-"
        downloaded.append(path)
    assert page.get_by_role("button", name="Issue").count() == 0  # auditors read; they do not issue

    page.get_by_role("link", name="Verify a report").click()
    page.get_by_label("Report (PDF)").set_input_files(str(downloaded[0]))
    page.get_by_role("button", name="Check").click()
    assert page.get_by_role("heading", name="Authentic").is_visible()
    assert page.get_by_text("issued by this portal, unchanged, and validly signed").is_visible()

    changed = bytearray(downloaded[0].read_bytes())
    changed[len(changed) // 2] ^= 0x20
    tampered = tmp_path / "tampered.pdf"
    tampered.write_bytes(bytes(changed))
    page.get_by_label("Report (PDF)").set_input_files(str(tampered))
    page.get_by_role("button", name="Check").click()
    assert page.get_by_role("heading", name="Not confirmed").is_visible()
    assert page.get_by_text("differs from the file this portal issued").is_visible()
