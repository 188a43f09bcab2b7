import csv
import io
import json

import pytest
from rest_framework.test import APIClient

from apps.audit.models import AuditChainHead, AuditEvent
from apps.audit.services import audit_record

pytestmark = pytest.mark.django_db


def client_for(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_admins_see_their_trail_filtered_and_others_see_none_of_it(org, other_org, admin_user, owner, outsider):
    audit_record(actor=admin_user, organisation=org, action="usecase.create", object_id="a")
    audit_record(actor=admin_user, organisation=org, action="dataset.upload", object_id="b")
    audit_record(actor=outsider, organisation=other_org, action="usecase.create", object_id="c")
    results = client_for(admin_user).get("/api/v1/audit/events/", {"action": "usecase"}).json()["results"]
    assert [r["object_id"] for r in results] == ["a"]
    assert client_for(owner).get("/api/v1/audit/events/").json()["results"] == []
    other_event = AuditEvent.objects.get(object_id="c")
    assert client_for(admin_user).get(f"/api/v1/audit/events/{other_event.hash}/").status_code == 404
    mine = AuditEvent.objects.get(object_id="a")
    assert client_for(admin_user).get(f"/api/v1/audit/events/{mine.hash}/").json()["object_id"] == "a"


def test_bad_filters_are_refused_in_the_one_shape(admin_user, org):
    response = client_for(admin_user).get("/api/v1/audit/events/", {"since": "last tuesday"})
    assert response.status_code == 400
    assert "since" in response.json()["error"]["details"]


def test_the_csv_export_neutralises_formula_cells(org, admin_user):
    for hostile in ['=HYPERLINK("http://x")', "+1", "-2", "@SUM(A1)", "\tTAB", "\rCR", "plain"]:
        audit_record(actor=admin_user, organisation=org, action="test.csv", object_id=hostile[:60])
    response = client_for(admin_user).get("/api/v1/audit/events/export/", {"format": "csv", "action": "test.csv"})
    assert response["Content-Disposition"].startswith("attachment")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    values = [row["object_id"] for row in rows]
    assert values == ['\'=HYPERLINK("http://x")', "'+1", "'-2", "'@SUM(A1)", "'\tTAB", "'\rCR", "plain"]


def test_the_json_export_matches_the_database(org, admin_user):
    audit_record(actor=admin_user, organisation=org, action="test.json", after={"x": [1, 2]})
    response = client_for(admin_user).get("/api/v1/audit/events/export/", {"format": "json"})
    exported = json.loads(b"".join(response.streaming_content))
    stored = AuditEvent.objects.get(action="test.json")
    row = next(item for item in exported if item["sequence"] == stored.sequence)
    assert row["hash"] == stored.hash and row["after"] == {"x": [1, 2]} and row["prev_hash"] == stored.prev_hash


def test_the_head_endpoint_publishes_the_organisations_chain_head(org, admin_user, owner):
    audit_record(actor=admin_user, organisation=org, action="test.head")
    head = AuditChainHead.objects.get(organisation=org)
    assert client_for(owner).get("/api/v1/audit/head/").json() == {
        "organisation": str(org.id),
        "sequence": head.sequence,
        "hash": head.hash,
    }


@pytest.mark.django_db(transaction=True)
def test_verification_through_the_api_reports_a_broken_row(org, admin_user):
    from tests.audit.test_chain import tamper, write_events

    events = write_events(org, admin_user, 3)
    assert client_for(admin_user).post("/api/v1/audit/verify/").json()["ok"] is True
    tamper("UPDATE audit_auditevent SET actor_label = %s WHERE sequence = %s", ["mallory", events[1].sequence])
    body = client_for(admin_user).post("/api/v1/audit/verify/").json()
    assert body["ok"] is False and body["broken_sequence"] == events[1].sequence


def test_the_trail_page_shows_only_this_organisations_events_and_verifies_inline(
    client, org, other_org, admin_user, outsider, owner
):
    audit_record(actor=admin_user, organisation=org, action="test.mine", object_id="mine-1")
    audit_record(actor=outsider, organisation=other_org, action="test.theirs", object_id="theirs-1")
    client.force_login(admin_user)
    page = client.get("/audit/").content.decode()
    assert "test.mine" in page and "test.theirs" not in page
    verify = client.post("/audit/verify/").content.decode()
    assert "Chain intact" in verify
    client.force_login(owner)
    assert client.get("/audit/").status_code == 404
