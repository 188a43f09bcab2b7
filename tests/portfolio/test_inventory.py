"""The inventory at /portfolio/: its columns against counts made here from the rows we wrote, its filters, sort,
CSV export, query counts that do not grow with rows, and nothing of another organisation."""

from __future__ import annotations

import csv
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from apps.portfolio import selectors
from tests.portfolio.kit import alert, condition, deploy, new_usecase, third_party, waiver

pytestmark = pytest.mark.django_db


@pytest.fixture
def estate(org, owner, other_org, outsider):
    """Two use cases of the organisation with known open items, and one of another organisation."""
    claims = new_usecase(org, owner, title="Claim triage", status="in_production")
    production = deploy(claims, owner, "production")
    pilot = deploy(claims, owner, "pilot")
    deploy(claims, owner, "staging", status="withdrawn")  # not running: not an environment of the system
    alert(production, "open")
    alert(production, "acknowledged")  # acknowledged is still unresolved
    alert(pilot, "open")
    alert(pilot, "resolved")
    condition(claims, owner, "open")
    condition(claims, owner, "met")
    waiver(claims, owner, expires_in_days=10)  # expires within 30 days: counts
    waiver(claims, owner, expires_in_days=-2)  # lapsed while relied on: counts
    waiver(claims, owner, expires_in_days=90)  # far off: does not
    waiver(claims, owner, expires_in_days=5, status="refused")  # never in force: does not
    chatbot = new_usecase(org, owner, title="Visitor chatbot", risk_tier="limited", annex_iii_area="")
    third_party(chatbot, owner, name="Hosted LLM")
    third_party(chatbot, owner, name="Old LLM", status="retired")
    foreign = new_usecase(other_org, outsider, title="Foreign system")
    return {"claims": claims, "chatbot": chatbot, "foreign": foreign}


def _rows(client, **params):
    response = client.get(reverse("portfolio:inventory"), params)
    assert response.status_code == 200
    return {row.usecase.reference: row for row in response.context["rows"]}, response


def test_columns_count_what_is_open(client, owner, estate):
    client.force_login(owner)
    rows, response = _rows(client)
    claims, chatbot = rows[estate["claims"].reference], rows[estate["chatbot"].reference]
    assert claims.environments == ["pilot", "production"]
    assert (claims.open_alerts, claims.open_conditions, claims.expiring_waivers) == (3, 1, 2)
    assert claims.third_party == []
    assert (chatbot.open_alerts, chatbot.open_conditions, chatbot.expiring_waivers) == (0, 0, 0)
    assert chatbot.environments == []
    assert [model.name for model in chatbot.third_party] == ["Hosted LLM"]
    html = response.content.decode()
    assert "Hosted LLM" in html and "Old LLM" not in html
    # Compliance progress is the compliance app's, passed through for each row.
    from apps.compliance.selectors import progress_for

    assert claims.compliance and claims.compliance == progress_for(estate["claims"])
    for item in claims.compliance:
        assert f'aria-label="{item["name"]} requirements met"' in html


def test_it_never_lists_another_organisations_systems(client, owner, outsider, estate):
    client.force_login(owner)
    rows, response = _rows(client)
    assert set(rows) == {estate["claims"].reference, estate["chatbot"].reference}
    assert "Foreign system" not in response.content.decode()
    api = APIClient()
    api.force_authenticate(outsider)
    body = api.get("/api/v1/portfolio/inventory/").json()
    assert [row["title"] for row in body["results"]] == ["Foreign system"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"tier": "high"}, {"claims"}),
        ({"tier": "limited"}, {"chatbot"}),
        ({"stage": "in_production"}, {"claims"}),
        ({"stage": "draft"}, {"chatbot"}),
        ({"kind": "thirdparty"}, {"chatbot"}),
        ({"kind": "usecase"}, {"claims"}),
        ({"alerts": "open"}, {"claims"}),
        ({"alerts": "none"}, {"chatbot"}),
        ({"q": "chatbot"}, {"chatbot"}),
        ({"tier": "nonsense"}, {"claims", "chatbot"}),  # an unknown value is dropped, not an error
    ],
)
def test_filters(client, owner, estate, params, expected):
    client.force_login(owner)
    rows, _response = _rows(client, **params)
    assert set(rows) == {estate[name].reference for name in expected}


def test_sorting_by_open_alerts_both_ways(client, owner, org, estate):
    quiet = new_usecase(org, owner, title="Quiet")
    deploy(quiet, owner, "production")
    one = new_usecase(org, owner, title="One alert")
    alert(deploy(one, owner, "production"))
    client.force_login(owner)
    response = client.get(reverse("portfolio:inventory"), {"sort": "-alerts"})
    order = [row.usecase.title for row in response.context["rows"]]
    assert order.index("Claim triage") < order.index("One alert") < order.index("Quiet")
    response = client.get(reverse("portfolio:inventory"), {"sort": "alerts"})
    order = [row.usecase.title for row in response.context["rows"]]
    assert order.index("One alert") < order.index("Claim triage")
    assert 'aria-sort="ascending"' in response.content.decode()


def test_csv_export_lists_systems_and_neutralises_formulas(client, owner, org, estate):
    new_usecase(org, owner, title='=HYPERLINK("http://evil.example","x")', risk_tier="minimal", annex_iii_area="")
    client.force_login(owner)
    response = client.get(reverse("portfolio:export"))
    assert response["Content-Type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    header, body = lines[0], lines[1:]
    assert header == selectors.INVENTORY_CSV_HEADER
    titles = [line[header.index("title")] for line in body]
    assert '\'=HYPERLINK("http://evil.example","x")' in titles
    assert not any(title.startswith("=") for title in titles)
    assert "Foreign system" not in titles
    claims = next(line for line in body if line[header.index("title")] == "Claim triage")
    assert claims[header.index("open_alerts")] == "3"
    assert claims[header.index("environments")] == "pilot production"
    llm = next(line for line in body if line[header.index("kind")] == "third-party model")
    assert (llm[header.index("reference")], llm[header.index("title")]) == (estate["chatbot"].reference, "Hosted LLM")
    assert len(body) == 4  # three use cases and the one third-party model in use


def test_csv_export_honours_the_filters(client, owner, estate):
    client.force_login(owner)
    response = client.get(reverse("portfolio:export"), {"tier": "limited"})
    lines = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert {line[1] for line in lines[1:]} == {estate["chatbot"].reference}


def _populate(org, owner, count: int) -> None:
    for index in range(count):
        usecase = new_usecase(org, owner, title=f"System {index}")
        deployment = deploy(usecase, owner, "production")
        alert(deployment)
        condition(usecase, owner)
        waiver(usecase, owner, expires_in_days=3)
        third_party(usecase, owner, name=f"Model {index}")


def _count(client, url: str) -> int:
    client.get(url)  # warm per-process caches so both measurements count the same work
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
        if hasattr(response, "streaming_content"):
            b"".join(response.streaming_content)
    assert response.status_code == 200
    return len(captured.captured_queries)


@pytest.mark.parametrize("url_name", ["portfolio:inventory", "portfolio:export"])
def test_query_count_does_not_grow_with_rows(client, org, owner, url_name, django_assert_max_num_queries):
    client.force_login(owner)
    url = reverse(url_name)
    _populate(org, owner, 5)
    with_five = _count(client, url)
    _populate(org, owner, 45)
    client.get(url)
    with django_assert_max_num_queries(with_five):
        response = client.get(url)
        if hasattr(response, "streaming_content"):
            content = b"".join(response.streaming_content).decode()
            assert content.count("\n") == 1 + 50 + 50  # header, 50 use cases, 50 third-party models
        else:
            assert response.context["page"].paginator.count == 50


def test_api_inventory_rows_carry_the_counts(owner, org, estate):
    api = APIClient()
    api.force_authenticate(owner)
    response = api.get("/api/v1/portfolio/inventory/", {"organisation": str(org.id), "sort": "-alerts"})
    assert response.status_code == 200
    first = response.json()["results"][0]
    assert first["reference"] == estate["claims"].reference
    assert (first["open_alerts"], first["open_conditions"], first["expiring_waivers"]) == (3, 1, 2)
    assert first["environments"] == ["pilot", "production"]


def test_api_inventory_of_another_organisation_answers_404(owner, other_org, estate):
    api = APIClient()
    api.force_authenticate(owner)
    response = api.get("/api/v1/portfolio/inventory/", {"organisation": str(other_org.id)})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
