"""The risk register: DPIA risks read live from each DPIA, direct risks through the services (one audit event each,
no typed text in the log), the heat map's counts, overdue reviews, search, the API and 404 across organisations."""

from __future__ import annotations

import copy
import json
import re

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from apps.audit.models import AuditEvent
from apps.core.errors import InvalidState, NotFound, PermissionDenied, ValidationFailed
from apps.portfolio import selectors
from apps.portfolio.models import Risk
from apps.portfolio.services import risk_close, risk_create, risk_update
from apps.usecases.models import UseCase
from apps.usecases.services import usecase_update
from tests.portfolio.kit import days_from_today, new_usecase
from tests.usecases.factories import complete_dpia

pytestmark = pytest.mark.django_db


def risk_data(**overrides):
    data = {
        "title": "Supplier outage stops claim triage",
        "description": "The hosting provider has no second region.",
        "likelihood": 2,
        "severity": 4,
        "treatment": "mitigate",
        "treatment_plan": "Manual fallback rota agreed with the benefits team.",
        "review_on": days_from_today(30),
    }
    data.update(overrides)
    return data


def _events_since(before: int) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(id__gt=before).order_by("id"))


def _last_event_id() -> int:
    return AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


# ------------------------------------------------------------------------------------------------ from the DPIAs


def test_dpia_risks_enter_the_register_on_the_five_level_scale(org, owner):
    usecase = new_usecase(
        org, owner
    )  # the factory's DPIA: R1 possible/severe with a "reduced" measure; R2 remote/minimal
    entries = {e.reference: e for e in selectors.register_entries(owner, org)}
    first, second = entries[f"{usecase.reference} R1"], entries[f"{usecase.reference} R2"]
    assert (first.source, first.likelihood, first.severity, first.score) == ("dpia", 3, 5, 15)
    assert (first.treatment, first.treatment_plan) == ("mitigate", "Fairness gates and board review")
    assert first.title == "Discrimination against a protected group"
    assert first.owner_name == owner.display_name
    assert (second.likelihood, second.severity, second.treatment) == (1, 1, "")
    assert second.treatment_label == "Not treated yet"


def test_an_edited_dpia_risk_shows_its_change_in_the_register(org, owner):
    usecase = new_usecase(org, owner)
    dpia = copy.deepcopy(complete_dpia())
    dpia["risks"][1] = {
        "description": "Re-identification from model outputs",
        "likelihood": "probable",
        "severity": "significant",
    }
    dpia["risks"].append(
        {"description": "Function creep into fraud scoring", "likelihood": "possible", "severity": "severe"}
    )
    dpia["measures"].append(
        {"risk": "R3", "measure": "Purpose limitation clause", "effect": "eliminated", "residual_risk": "low"}
    )
    usecase_update(actor=owner, usecase=usecase, data={"dpia": dpia})
    entries = {e.reference: e for e in selectors.register_entries(owner, org)}
    edited = entries[f"{usecase.reference} R2"]
    assert (edited.likelihood, edited.severity) == (5, 3)
    added = entries[f"{usecase.reference} R3"]
    assert (added.title, added.treatment) == ("Function creep into fraud scoring", "avoid")
    assert len([e for e in entries.values() if e.usecase == usecase]) == 3


def test_a_retired_use_cases_dpia_risks_are_closed(org, owner):
    usecase = new_usecase(org, owner)
    UseCase.objects.filter(pk=usecase.pk).update(status="retired")
    assert not [e for e in selectors.register_entries(owner, org) if e.source == "dpia"]
    closed = selectors.register_entries(owner, org, selectors.RegisterFilters(status="closed"))
    assert {e.reference for e in closed} == {f"{usecase.reference} R1", f"{usecase.reference} R2"}


# ---------------------------------------------------------------------------------------------------- the services


def test_create_update_close_each_write_one_event_without_the_typed_text(org, owner, admin_user):
    before = _last_event_id()
    risk = risk_create(actor=owner, organisation=org, data=risk_data())
    assert (risk.reference, risk.owner, risk.status, risk.score) == ("RK-0001", owner, "open", 8)
    update_from = _last_event_id()
    risk_update(actor=admin_user, risk=risk, data={"likelihood": 4, "owner": admin_user})
    close_from = _last_event_id()
    risk_close(actor=admin_user, risk=risk, note="Second region contracted.")
    events = _events_since(before)
    assert [e.action for e in events] == ["risk.create", "risk.update", "risk.close"]
    assert [len(_events_since(mark)) for mark in (update_from, close_from)] == [2, 1]
    update = events[1]
    assert update.before == {"likelihood": 2, "owner": str(owner.pk)}
    assert update.after == {"likelihood": 4, "owner": str(admin_user.pk), "score": 16}
    logged = json.dumps([e.before for e in events] + [e.after for e in events])
    for text in ("Supplier outage", "second region", "Manual fallback", "Second region contracted"):
        assert text.lower() not in logged.lower()
    risk.refresh_from_db()
    assert (risk.status, risk.closed_by, risk.closing_note) == ("closed", admin_user, "Second region contracted.")


def test_an_update_that_changes_nothing_writes_nothing(org, owner):
    risk = risk_create(actor=owner, organisation=org, data=risk_data())
    before = _last_event_id()
    risk_update(actor=owner, risk=risk, data={"likelihood": 2})
    assert _events_since(before) == []


def test_a_closed_risk_cannot_be_changed_or_closed_again(org, owner):
    risk = risk_create(actor=owner, organisation=org, data=risk_data())
    risk_close(actor=owner, risk=risk, note="Gone.")
    with pytest.raises(InvalidState):
        risk_update(actor=owner, risk=risk, data={"likelihood": 5})
    with pytest.raises(InvalidState):
        risk_close(actor=owner, risk=risk, note="Again.")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"likelihood": 6}, "likelihood"),
        ({"severity": 0}, "severity"),
        ({"title": "  "}, "title"),
        ({"treatment": "ignore"}, "treatment"),
        ({"treatment": "transfer", "treatment_plan": ""}, "treatment_plan"),
        ({"review_on": "next week"}, "review_on"),
    ],
)
def test_invalid_fields_are_refused_and_nothing_is_stored(org, owner, overrides, field):
    with pytest.raises(ValidationFailed) as caught:
        risk_create(actor=owner, organisation=org, data=risk_data(**overrides))
    assert field in caught.value.details
    assert not Risk.objects.exists()


def test_accepting_a_risk_needs_no_plan(org, owner):
    risk = risk_create(actor=owner, organisation=org, data=risk_data(treatment="accept", treatment_plan=""))
    assert risk.treatment == "accept"


def test_owner_and_use_case_must_belong_to_the_organisation(org, owner, other_org, outsider):
    foreign_usecase = new_usecase(other_org, outsider)
    with pytest.raises(ValidationFailed) as caught:
        risk_create(actor=owner, organisation=org, data=risk_data(owner=outsider, usecase=foreign_usecase))
    assert set(caught.value.details) == {"owner", "usecase"}


def test_who_may_record_risks(org, owner, steward, auditor, outsider, admin_user):
    with pytest.raises(PermissionDenied):
        risk_create(actor=steward, organisation=org, data=risk_data())
    with pytest.raises(PermissionDenied):
        risk_create(actor=auditor, organisation=org, data=risk_data())
    with pytest.raises(NotFound):
        risk_create(actor=outsider, organisation=org, data=risk_data())
    risk = risk_create(actor=admin_user, organisation=org, data=risk_data())
    with pytest.raises(NotFound):
        risk_close(actor=outsider, risk=risk, note="Not mine.")


# ------------------------------------------------------------------------------------------ heat map and overdue


def test_heat_map_counts_open_risks_of_both_sources(client, org, owner):
    new_usecase(org, owner)  # DPIA: (L3, S5) and (L1, S1)
    risk_create(actor=owner, organisation=org, data=risk_data(likelihood=3, severity=5))
    risk_create(actor=owner, organisation=org, data=risk_data(likelihood=4, severity=2))
    closed = risk_create(actor=owner, organisation=org, data=risk_data(likelihood=4, severity=2))
    risk_close(actor=owner, risk=closed, note="Done.")
    heat = selectors.heat_map(selectors.register_entries(owner, org))
    assert heat.cells == {(3, 5): 2, (1, 1): 1, (4, 2): 1}
    client.force_login(owner)
    html = client.get(reverse("portfolio:risks")).content.decode()
    table = html[html.index('id="heat-table"') :]
    assert re.search(r'data-likelihood="3" data-severity="5">2<', table)
    assert re.search(r'data-likelihood="4" data-severity="2">1<', table)
    assert re.search(r'data-likelihood="5" data-severity="5">0<', table)
    svg = html[html.index('id="heat-map"') : html.index("</svg>")]
    assert "<title" in svg and "<desc" in svg
    assert "5 Critical severity and 3 Possible likelihood: 2" in svg
    assert "3 Possible: 2 (very high band)" not in svg and "Likelihood 3 Possible: 2 (high band)" in svg
    assert re.search(r'data-likelihood="5" data-severity="5">0<span class="visually-hidden"> \(very high band\)', table)


def test_overdue_reviews_are_highlighted_and_counted_on_the_dashboard(client, org, owner):
    late = risk_create(
        actor=owner, organisation=org, data=risk_data(title="Late review", review_on=days_from_today(30))
    )
    Risk.objects.filter(pk=late.pk).update(review_on=days_from_today(-1))
    risk_create(actor=owner, organisation=org, data=risk_data(title="On time", review_on=days_from_today(1)))
    client.force_login(owner)
    html = client.get(reverse("portfolio:risks")).content.decode()
    assert re.search(r'<tr data-reference="RK-0001" class="row-overdue">', html)
    assert '<tr data-reference="RK-0002">' in html
    assert "1 open risk past its review date" in html
    only_overdue = client.get(reverse("portfolio:risks"), {"overdue": "1"}).context["entries"]
    assert [e.reference for e in only_overdue] == ["RK-0001"]
    dashboard = client.get(reverse("dashboard")).content.decode()
    assert "Overdue risk reviews" in dashboard
    assert selectors.overdue_reviews(org).count() == 1


# ----------------------------------------------------------------------------------------- pages, search and API


def test_pages_answer_404_for_another_organisations_risk(client, org, owner, outsider):
    risk = risk_create(actor=owner, organisation=org, data=risk_data())
    client.force_login(outsider)
    assert client.get(reverse("portfolio:risk_detail", args=[risk.id])).status_code == 404
    assert client.get(reverse("portfolio:risk_edit", args=[risk.id])).status_code == 404
    assert client.post(reverse("portfolio:risk_close", args=[risk.id]), {"note": "x"}).status_code == 404
    assert "RK-0001" not in client.get(reverse("portfolio:risks")).content.decode()
    risk.refresh_from_db()
    assert risk.status == "open"


def test_recording_editing_and_closing_through_the_pages(client, org, owner):
    client.force_login(owner)
    response = client.post(
        reverse("portfolio:risk_create"),
        {**risk_data(review_on=days_from_today(10).isoformat()), "owner": owner.pk, "usecase": ""},
    )
    risk = Risk.objects.get()
    assert response.status_code == 302 and response.url == reverse("portfolio:risk_detail", args=[risk.id])
    client.post(
        reverse("portfolio:risk_edit", args=[risk.id]),
        {**risk_data(severity=5, review_on=days_from_today(10).isoformat()), "owner": owner.pk, "usecase": ""},
    )
    risk.refresh_from_db()
    assert risk.severity == 5
    client.post(reverse("portfolio:risk_close", args=[risk.id]), {"note": "Accepted by the board."})
    risk.refresh_from_db()
    assert risk.status == "closed"


def test_a_steward_sees_the_register_but_gets_no_form(client, org, owner, steward):
    risk_create(actor=owner, organisation=org, data=risk_data())
    client.force_login(steward)
    html = client.get(reverse("portfolio:risks")).content.decode()
    assert "RK-0001" in html and "Record a risk" not in html
    assert client.get(reverse("portfolio:risk_create")).status_code == 404


def test_search_finds_direct_and_dpia_risks_of_visible_organisations_only(org, owner, other_org, outsider):
    new_usecase(org, owner)
    risk_create(actor=owner, organisation=org, data=risk_data(title="Discrimination in appeals"))
    new_usecase(other_org, outsider)  # the same DPIA text, in another organisation
    found = selectors.search_risks(owner, "discrimination")
    assert sorted((hit["source"], hit["title"]) for hit in found) == [
        ("direct", "Discrimination in appeals"),
        ("dpia", "Discrimination against a protected group"),
    ]
    assert len(selectors.search_risks(outsider, "discrimination")) == 1
    assert selectors.search_risks(owner, "  ") == []


def test_api_create_patch_close_and_404_across_organisations(org, owner, outsider):
    api = APIClient()
    api.force_authenticate(owner)
    created = api.post(
        "/api/v1/risks/",
        {**risk_data(review_on=days_from_today(5).isoformat()), "organisation": str(org.id)},
        format="json",
    )
    assert created.status_code == 201, created.json()
    risk_id = created.json()["id"]
    assert created.json()["owner"] == owner.username
    patched = api.patch(f"/api/v1/risks/{risk_id}/", {"severity": 5}, format="json")
    assert patched.json()["score"] == 10
    bad = api.patch(f"/api/v1/risks/{risk_id}/", {"owner": "nobody"}, format="json")
    assert bad.status_code == 400 and bad.json()["error"]["details"] == {"owner": ["no active user with that username"]}
    stranger = APIClient()
    stranger.force_authenticate(outsider)
    assert stranger.get(f"/api/v1/risks/{risk_id}/").status_code == 404
    assert stranger.post(f"/api/v1/risks/{risk_id}/close/", {"note": "x"}, format="json").status_code == 404
    closed = api.post(f"/api/v1/risks/{risk_id}/close/", {"note": "Handled."}, format="json")
    assert closed.json()["status"] == "closed"
    register = api.get("/api/v1/risk-register/", {"status": "all"}).json()
    assert [entry["reference"] for entry in register["entries"]] == ["RK-0001"]
    assert register["heat_map"] == []  # the only risk is closed


def test_the_demo_seeds_two_direct_risks_one_overdue(org):
    from apps.accounts.models import Role
    from apps.core.demo import _seed_risks
    from tests.conftest import make_user

    make_user("admin", organisation=org, roles=(Role.ADMIN,))
    owner = make_user("owner", organisation=org, roles=(Role.OWNER,))
    usecase = new_usecase(org, owner)
    _seed_risks(org)
    entries = selectors.register_entries(owner, org)
    direct = [e for e in entries if e.source == "direct"]
    assert len(direct) == 2 and len(entries) == 4  # and the DPIA's two
    assert [e.usecase for e in direct if e.overdue] == [usecase]


def test_search_narrows_to_one_organisation_when_asked(org, owner, other_org, outsider, external_auditor):
    from apps.accounts.services import auditor_grant_create

    ours = new_usecase(org, owner)
    new_usecase(other_org, outsider)
    auditor_grant_create(actor=None, organisation=other_org, user=external_auditor, reason="two clients")
    assert len(selectors.search_risks(external_auditor, "discrimination")) == 2
    only_ours = selectors.search_risks(external_auditor, "discrimination", organisation=org)
    assert [hit["url"] for hit in only_ours] == [reverse("usecases:dpia", args=[ours.id])]


def test_register_queries_do_not_grow_with_risks(client, org, owner, django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def add(count: int) -> None:
        for index in range(count):
            new_usecase(org, owner, title=f"System {index}")
            risk_create(actor=owner, organisation=org, data=risk_data(title=f"Risk {index}"))

    client.force_login(owner)
    url = reverse("portfolio:risks") + "?source=&status=open"
    add(5)
    client.get(url)
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    add(45)
    with django_assert_max_num_queries(len(captured.captured_queries)):
        response = client.get(url)
    assert len(response.context["entries"]) == 50 * 3  # each use case's two DPIA risks and one direct risk
