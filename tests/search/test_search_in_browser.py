"""The header's search box in Chromium, with the keyboard only: reach it, search, follow a result."""

import re

import pytest

from apps.thirdparty.services import thirdparty_register
from apps.usecases.services import usecase_create
from tests.conftest import PASSWORD
from tests.fixtures.browser import login
from tests.usecases.factories import usecase_data

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_member_searches_from_the_header_and_opens_a_result_with_the_keyboard(
    page, live_server, org, owner, outsider
):
    usecase = usecase_create(actor=owner, organisation=org, data=usecase_data(title="Letter drafting assistant"))
    thirdparty_register(
        actor=owner,
        usecase=usecase,
        data={"supplier": "Northwind", "name": "Quill letter model", "version": "1", "intended_use": "Letters."},
    )
    theirs = usecase_create(
        actor=outsider,
        organisation=outsider.memberships.first().organisation,
        data=usecase_data(title="Letter sorting elsewhere"),
    )
    login(page, live_server, owner.username, PASSWORD)

    for _ in range(60):  # Tab through the header until the search box has focus
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.id") == "header-search-q":
            break
    else:
        raise AssertionError("the search box cannot be reached with Tab")
    page.keyboard.type("letter")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/search/\?q=letter"))

    assert page.get_by_role("heading", name="Use cases").is_visible()
    assert page.get_by_role("heading", name="Models").is_visible()
    assert page.get_by_role("link", name="Northwind Quill letter model 1").is_visible()
    assert page.get_by_text(theirs.title).count() == 0
    assert page.get_by_role("search", name="Search again").is_visible()

    result = page.get_by_role("link", name=f"{usecase.reference} Letter drafting assistant")
    result.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf".*/usecases/{usecase.id}/"))
    assert "Letter drafting assistant" in page.get_by_role("heading", level=1).inner_text()


def test_the_search_and_third_party_pages_have_no_serious_accessibility_violation(page, live_server, org, owner):
    from axe_playwright_python.sync_playwright import Axe

    from apps.thirdparty.services import thirdparty_record_documentation

    usecase = usecase_create(actor=owner, organisation=org, data=usecase_data(title="Letter drafting assistant"))
    model = thirdparty_register(
        actor=owner,
        usecase=usecase,
        data={"supplier": "Northwind", "name": "Quill letter model", "version": "1", "intended_use": "Letters."},
    )
    thirdparty_record_documentation(actor=owner, model=model, content=b"system card", file_name="card.pdf")
    login(page, live_server, owner.username, PASSWORD)
    axe = Axe()
    failures = {}
    for path in (
        "/search/?q=letter",
        "/search/?q=l",
        "/third-party/",
        f"/third-party/{model.id}/",
        f"/third-party/{model.id}/edit/",
        "/third-party/new/",
        f"/usecases/{usecase.id}/",
    ):
        page.goto(f"{live_server.url}{path}")
        violations = [
            f"{v['id']} ({v['impact']}): {v['help']}"
            for v in axe.run(page).response["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        if violations:
            failures[path] = violations
    assert not failures, failures
