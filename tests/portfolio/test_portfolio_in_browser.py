"""The inventory and the risk register in Chromium: no serious accessibility violation (axe-core), the inventory
filtered with the keyboard, and a risk recorded through the labelled form shows in the register and its heat map."""

from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe

from apps.portfolio.models import Risk
from tests.conftest import PASSWORD
from tests.fixtures.browser import login
from tests.portfolio.kit import alert, days_from_today, deploy, new_usecase

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def serious(results) -> list[str]:
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def heat_count(page, *, likelihood: int, severity: int) -> int:
    """The count a cell of the heat map's table shows (its band follows for screen readers)."""
    cell = page.locator(f'#heat-table td[data-likelihood="{likelihood}"][data-severity="{severity}"]')
    return int(cell.inner_text().split()[0])


def test_an_admin_filters_the_inventory_and_records_a_risk(page, live_server, org, owner, admin_user):
    claims = new_usecase(org, owner, title="Claim triage")
    alert(deploy(claims, owner, "production"))
    new_usecase(org, owner, title="Visitor chatbot", risk_tier="limited", annex_iii_area="")
    axe = Axe()
    login(page, live_server, admin_user.username, PASSWORD)

    page.goto(f"{live_server.url}/portfolio/")
    assert serious(axe.run(page)) == []
    assert page.locator("#inventory tbody tr").count() == 2
    page.get_by_label("Risk tier").select_option("high")
    page.get_by_role("button", name="Apply filters").focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/portfolio/?*tier=high*")
    rows = page.locator("#inventory tbody tr")
    assert rows.count() == 1
    assert rows.first.get_attribute("data-reference") == claims.reference
    assert "1" in rows.first.locator("td").nth(2).inner_text()  # the open alert
    page.get_by_role("link", name="Risk register").first.click()
    page.wait_for_url("**/portfolio/risks/")
    assert serious(axe.run(page)) == []
    # The DPIAs' risks are there before anything is recorded: each use case's R1 sits at likelihood 3, severity 5.
    assert heat_count(page, likelihood=3, severity=5) == 2

    page.get_by_role("link", name="Record a risk").click()
    assert serious(axe.run(page)) == []
    page.get_by_label("Title").fill("Vendor lock-in for the case system")
    page.get_by_label("Likelihood").select_option("3")
    page.get_by_label("Severity").select_option("5")
    page.get_by_label("Treatment", exact=True).select_option("accept")
    page.get_by_label("Next review on").fill(days_from_today(-1).isoformat())
    page.get_by_role("button", name="Save").click()
    page.wait_for_url("**/portfolio/risks/*/")
    assert serious(axe.run(page)) == []
    risk = Risk.objects.get()
    assert (risk.likelihood, risk.severity, risk.owner) == (3, 5, admin_user)

    page.goto(f"{live_server.url}/portfolio/risks/")
    assert heat_count(page, likelihood=3, severity=5) == 3
    assert page.locator(f'tr[data-reference="{risk.reference}"]').get_attribute("class") == "row-overdue"
    assert page.locator("#overdue-notice").is_visible()
