"""The public contestation page in Chromium: no serious accessibility violation (axe-core), usable with the keyboard
alone, and a submission ends on the thank-you page with a reference."""

from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe

from apps.deployments.models import Feedback
from apps.usecases.models import UseCase

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def serious(results) -> list[str]:
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def test_an_affected_person_contests_a_decision_with_the_keyboard(page, live_server, deployed):
    UseCase.objects.filter(pk=deployed.usecase_id).update(automated_decisions=True)
    axe = Axe()
    page.goto(f"{live_server.url}/public/d/{deployed.public_slug}/")
    assert serious(axe.run(page)) == []
    page.get_by_role("link", name="Read how the system reaches its decisions").click()
    page.wait_for_url("**/how-decisions-are-made/")
    page.wait_for_load_state()
    assert serious(axe.run(page)) == []
    page.go_back()
    page.wait_for_load_state()

    page.get_by_label("Contest a decision: ask for it to be reviewed by a person").focus()
    page.keyboard.press("Tab")  # the other choice is the same radio group: Tab moves on to the next field
    page.keyboard.type("HB-2026-004417")
    page.keyboard.press("Tab")
    page.keyboard.type("My income fell in March; please look at my claim again.")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")  # the contact stays empty: anonymous; the honeypot is skipped by the tab order
    focused = page.evaluate("document.activeElement.textContent")
    assert focused.strip() == "Send"
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/public/d/{deployed.public_slug}/thanks/**")
    page.wait_for_load_state()
    feedback = Feedback.objects.get()
    assert (feedback.decision_reference, feedback.contact) == ("HB-2026-004417", "")
    assert page.get_by_role("heading", name=f"Your reference: F-{feedback.id.hex[:10].upper()}").is_visible()
    assert serious(axe.run(page)) == []
