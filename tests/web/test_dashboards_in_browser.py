"""Each role signs in with a real browser and sees its own dashboard; every form control has a label."""

import pytest

from tests.conftest import PASSWORD
from tests.fixtures.browser import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

UNLABELLED_CONTROLS_JS = """
() => Array.from(document.querySelectorAll('input:not([type=hidden]), select, textarea'))
  .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby'))
  .map(el => el.outerHTML.slice(0, 120))
"""


@pytest.mark.parametrize(
    ("persona", "heading", "card"),
    [
        ("admin_user", "Org admin dashboard", "Members and roles"),
        ("owner", "Use-case owner dashboard", "My use cases"),
        ("steward", "Data steward dashboard", "Consent records"),
        ("board_member", "Ethics board dashboard", "Reviews awaiting your vote"),
        ("auditor", "Auditor dashboard", "Audit trail"),
        ("external_auditor", "Auditor dashboard", "Use-case register"),
    ],
)
def test_each_role_signs_in_and_sees_its_dashboard(request, page, live_server, persona, heading, card):
    user = request.getfixturevalue(persona)
    login(page, live_server, user.username, PASSWORD)
    assert page.get_by_role("heading", name=heading, level=1).is_visible()
    assert page.get_by_role("heading", name=card).first.is_visible()
    others = {
        "Org admin dashboard",
        "Use-case owner dashboard",
        "Data steward dashboard",
        "Ethics board dashboard",
        "Auditor dashboard",
    } - {heading}
    for other in others:
        assert page.get_by_role("heading", name=other).count() == 0
    assert page.evaluate(UNLABELLED_CONTROLS_JS) == []


def test_an_outsider_sees_only_their_own_organisation(page, live_server, org, outsider):
    login(page, live_server, outsider.username, PASSWORD)
    assert page.get_by_text("Other Agency").first.is_visible()
    assert page.get_by_text(org.name).count() == 0
    page.goto(f"{live_server.url}/usecases/")
    assert page.get_by_text("No use cases").is_visible()


@pytest.mark.parametrize(
    "path",
    ["/accounts/login/", "/accounts/members/", "/accounts/tokens/", "/accounts/sessions/", "/audit/", "/usecases/new/"],
)
def test_forms_have_labels_for_every_control(page, live_server, admin_user, owner, path):
    if path != "/accounts/login/":
        login(page, live_server, (owner if path == "/usecases/new/" else admin_user).username, PASSWORD)
    page.goto(f"{live_server.url}{path}")
    assert page.evaluate(UNLABELLED_CONTROLS_JS) == []
