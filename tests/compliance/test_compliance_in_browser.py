"""The compliance officer's journey in Chromium: inventory, filter high-risk systems, open one, follow a requirement
to its signed evidence, issue the compliance statement."""

import pytest

from apps.accounts.models import Role
from apps.compliance.services import requirement_confirm
from apps.reports.models import Report
from apps.reports.services import report_request
from apps.usecases.services import usecase_create
from tests.conftest import PASSWORD, make_user, run_inline
from tests.fixtures.browser import login
from tests.usecases.factories import usecase_data
from tests.web.test_dashboards_in_browser import UNLABELLED_CONTROLS_JS


def assert_no_serious_violation(page):
    from axe_playwright_python.sync_playwright import Axe

    from tests.web.test_accessibility_in_browser import serious

    assert serious(Axe().run(page)) == []


pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_the_compliance_officer_follows_a_requirement_to_signed_evidence(page, live_server, settings, tmp_path, org):
    settings.STORAGE_ROOT = tmp_path
    officer = make_user("carla_compliance", organisation=org, roles=(Role.ADMIN,))
    owner = make_user("oscar_owner", organisation=org, roles=(Role.OWNER,))
    high = usecase_create(actor=owner, organisation=org, data=usecase_data(title="Benefit claim triage"))
    usecase_create(
        actor=owner,
        organisation=org,
        data=usecase_data(title="Leaflet wording helper", risk_tier="minimal", annex_iii_area=""),
    )
    dpia_report = report_request(actor=owner, kind="dpia", subject=high)
    run_inline(dpia_report.job_id)
    dpia_report.refresh_from_db()
    requirement_confirm(actor=officer, usecase=high, framework_key="gdpr", requirement_code="GDPR-35")

    login(page, live_server, "carla_compliance", PASSWORD)
    page.goto(f"{live_server.url}/portfolio/")
    page.get_by_label("Risk tier").select_option("high")
    page.get_by_role("button", name="Apply filters").click()
    inventory = page.locator("#inventory")
    assert inventory.get_by_text("Benefit claim triage").count() >= 1
    assert inventory.get_by_text("Leaflet wording helper").count() == 0
    inventory.get_by_role("link", name=f"{high.reference} Benefit claim triage").click()

    page.get_by_role("link", name="GDPR", exact=True).click()
    assert page.evaluate(UNLABELLED_CONTROLS_JS) == []
    assert_no_serious_violation(page)
    row = page.locator("#req-GDPR-35")
    assert row.get_by_text("Met", exact=True).is_visible()
    row.get_by_role("link", name=dpia_report.reference).click()
    assert page.get_by_role("heading", name=dpia_report.reference).is_visible()
    assert page.get_by_text(dpia_report.sha256).is_visible()

    page.go_back()
    page.goto(f"{live_server.url}/compliance/frameworks/")
    assert_no_serious_violation(page)  # the admin's upload form too
    page.go_back()
    page.get_by_role("button", name="Issue the compliance statement").click()
    statement = Report.objects.get(kind="compliance")
    run_inline(statement.job_id)
    statement.refresh_from_db()
    page.reload()
    assert page.get_by_role("heading", name=statement.reference).is_visible()
    assert page.get_by_text(statement.sha256).is_visible()
    assert statement.evidence["framework"]["key"] == "gdpr"
    rows = {r["id"]: r for r in statement.evidence["requirements"]}
    assert dpia_report.sha256 in {e["sha256"] for e in rows["GDPR-35"]["evidence"]}
