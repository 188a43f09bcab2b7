"""Each organisation has its own audit chain: its sequence numbers and head count only its own events."""

import json
import re
import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import OperationalError, connection, connections, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone
from rest_framework.test import APIClient

from apps.audit.chain import GENESIS_HASH, PLATFORM_CHAIN, event_hash
from apps.audit.dbroles import as_owner
from apps.audit.models import AuditChainHead, AuditEvent
from apps.audit.services import audit_record
from apps.audit.verify import audit_chain_verify, audit_chains_verify
from tests.audit.test_chain import tamper, write_events


@pytest.fixture
def database_owner(transactional_db):
    """The test's connection as the owner role: migrations (and the tampering below) are not the portal's to do."""
    with as_owner():
        yield


def api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def dashboard_head(client):
    page = client.get("/").content.decode()
    return re.search(r"Chain head #(\d+): ([0-9a-f]{16}|empty)", page).groups()


@pytest.mark.django_db
def test_one_organisations_activity_changes_nothing_another_admin_sees(client, org, other_org, admin_user, outsider):
    write_events(org, admin_user, 3)
    client.force_login(outsider)  # the admin of the other organisation
    head_before = api(outsider).get("/api/v1/audit/head/").json()
    card_before = dashboard_head(client)
    write_events(org, admin_user, 7)
    assert api(outsider).get("/api/v1/audit/head/").json() == head_before
    assert dashboard_head(client) == card_before == ("0", "empty")
    write_events(other_org, outsider, 2)
    assert dashboard_head(client)[0] == "2"
    assert api(outsider).get("/api/v1/audit/head/").json()["sequence"] == 2
    assert [e.sequence for e in AuditEvent.objects.filter(organisation=other_org).order_by("id")] == [1, 2]
    client.force_login(admin_user)
    assert dashboard_head(client)[0] == "10"


@pytest.mark.django_db
def test_platform_events_have_their_own_chain(org, admin_user):
    write_events(org, admin_user, 2)
    first = audit_record(actor=None, action="test.platform")
    second = audit_record(actor=None, organisation=None, action="test.platform")
    assert (first.sequence, first.prev_hash, second.prev_hash) == (1, GENESIS_HASH, first.hash)
    assert AuditChainHead.objects.get(chain=PLATFORM_CHAIN).sequence == 2
    assert audit_chain_verify(organisation=None).checked == 2
    assert audit_chain_verify(organisation=org).checked == 2


@pytest.mark.django_db
def test_verify_and_export_cover_one_organisations_chain(org, other_org, admin_user, outsider):
    write_events(org, admin_user, 4)
    write_events(other_org, outsider, 6)
    body = api(admin_user).post("/api/v1/audit/verify/").json()
    assert body["ok"] and body["checked"] == 4 and body["head_sequence"] == 4 and body["chain"] == str(org.id)
    other = api(outsider).post("/api/v1/audit/verify/").json()
    assert other["checked"] == 6 and other["chain"] == str(other_org.id)
    assert api(admin_user).post(f"/api/v1/audit/verify/?organisation={other_org.id}").status_code == 404
    response = api(admin_user).get("/api/v1/audit/events/export/", {"format": "json", "organisation": str(org.id)})
    exported = json.loads(b"".join(response.streaming_content))
    assert [row["sequence"] for row in exported] == [1, 2, 3, 4]
    assert {row["organisation"] for row in exported} == {str(org.id)}
    assert exported[0]["prev_hash"] == GENESIS_HASH
    assert all(b["prev_hash"] == a["hash"] for a, b in zip(exported, exported[1:], strict=False))


@pytest.mark.django_db(transaction=True)
def test_tampering_in_one_chain_is_found_by_that_organisations_verify(client, org, other_org, admin_user, outsider):
    write_events(org, admin_user, 3)
    theirs = write_events(other_org, outsider, 3)
    tamper("UPDATE audit_auditevent SET after = %s WHERE id = %s", [json.dumps({"i": 999}), theirs[1].pk])
    assert audit_chain_verify(organisation=org).ok
    broken = audit_chain_verify(organisation=other_org)
    assert not broken.ok and broken.broken_sequence == 2 and "content does not match" in broken.reason
    assert api(outsider).post("/api/v1/audit/verify/").json()["broken_sequence"] == 2
    assert api(admin_user).post("/api/v1/audit/verify/").json()["ok"] is True
    client.force_login(admin_user)
    assert "Chain intact" in client.post("/audit/verify/").content.decode()
    call_command("audit_verify", organisation=org.slug)
    with pytest.raises(CommandError, match=f"chain {other_org.id} BROKEN at event #2"):
        call_command("audit_verify", organisation=other_org.slug)
    with pytest.raises(CommandError, match="BROKEN at event #2"):
        call_command("audit_verify")
    assert {r.chain: r.ok for r in audit_chains_verify()} == {str(org.id): True, str(other_org.id): False}


@pytest.mark.django_db
def test_the_audit_extract_report_embeds_only_its_organisations_chain(org, other_org, admin_user, outsider):
    from apps.reports.content import audit_extract

    write_events(org, admin_user, 2)
    write_events(other_org, outsider, 5)
    evidence = audit_extract(org).evidence
    assert evidence["verification"]["head_sequence"] == 2 and evidence["verification"]["checked"] == 2
    assert evidence["verification"]["head_hash"] == AuditChainHead.objects.get(organisation=org).hash


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_writer_locks_only_its_own_organisations_head(org, other_org, admin_user, outsider):
    holding, release, done = threading.Event(), threading.Event(), threading.Event()

    def hold_org_head():
        try:
            with transaction.atomic():
                audit_record(actor=admin_user, organisation=org, action="test.hold")
                holding.set()
                release.wait(10)
        finally:
            connection.close()
            done.set()

    thread = threading.Thread(target=hold_org_head)
    thread.start()
    try:
        assert holding.wait(10)
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '2s'")
            audit_record(actor=outsider, organisation=other_org, action="test.free")  # does not wait
        with pytest.raises(OperationalError):
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL lock_timeout = '300ms'")
                audit_record(actor=admin_user, organisation=org, action="test.queued")
    finally:
        release.set()
        thread.join(10)
    assert done.is_set()
    assert audit_chain_verify(organisation=org).checked == 1
    assert audit_chain_verify(organisation=other_org).checked == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_to_several_organisations_keep_every_chain_whole(org, other_org, admin_user, outsider):
    threads_count, per_thread = 8, 15
    barrier = threading.Barrier(threads_count)
    errors = []

    def writer(number):
        organisation, actor = (org, admin_user) if number % 2 else (other_org, outsider)
        try:
            barrier.wait()
            for i in range(per_thread):
                with transaction.atomic():
                    audit_record(actor=actor, organisation=organisation, action="test.concurrent", object_id=f"{i}")
                if number == 0 and i % 5 == 0:
                    audit_record(actor=None, action="test.platform")
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for organisation in (org, other_org):
        events = list(AuditEvent.objects.filter(organisation=organisation).order_by("sequence"))
        assert [e.sequence for e in events] == list(range(1, threads_count // 2 * per_thread + 1))
        assert all(b.prev_hash == a.hash for a, b in zip(events, events[1:], strict=False))
    assert all(result.ok for result in audit_chains_verify())
    assert len(audit_chains_verify()) == 3


def _legacy_chain(apps, rows):
    """Write events as the single shared chain did before the split (one sequence across organisations)."""
    Event, Head = apps.get_model("audit", "AuditEvent"), apps.get_model("audit", "AuditChainHead")
    previous = GENESIS_HASH
    for sequence, (organisation_id, action) in enumerate(rows, start=1):
        fields = {
            "sequence": sequence,
            "created_at": timezone.now(),
            "organisation_id": organisation_id,
            "actor_id": None,
            "actor_label": "system",
            "request_id": "",
            "action": action,
            "object_type": "",
            "object_id": "",
            "before": None,
            "after": {"n": sequence},
            "prev_hash": previous,
        }
        previous = event_hash(**fields)
        Event.objects.create(hash=previous, **fields)
    Head.objects.create(id=1, sequence=len(rows), hash=previous)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_migration_re_chains_a_verified_shared_chain_per_organisation(org, other_org, database_owner):
    executor = MigrationExecutor(connections["default"])
    latest = executor.loader.graph.leaf_nodes("audit")
    executor.migrate([("audit", "0002_append_only_trigger")])
    try:
        old_apps = executor.loader.project_state([("audit", "0002_append_only_trigger")]).apps
        rows = [(org.id, "a.1"), (other_org.id, "b.1"), (None, "p.1"), (org.id, "a.2"), (org.id, "a.3")]
        _legacy_chain(old_apps, rows)
        old_head = old_apps.get_model("audit", "AuditChainHead").objects.get().hash
    finally:
        executor = MigrationExecutor(connections["default"])
        executor.migrate(latest)
    mine = list(AuditEvent.objects.filter(organisation=org).order_by("sequence"))
    assert [(e.sequence, e.action) for e in mine] == [(1, "a.1"), (2, "a.2"), (3, "a.3")]
    assert [e.sequence for e in AuditEvent.objects.filter(organisation=other_org)] == [1]
    record = AuditEvent.objects.get(action="audit.rechain")
    assert record.organisation_id is None and record.sequence == 2
    assert record.before["head_hash"] == old_head and record.before["head_sequence"] == 5
    assert record.after["chains"][str(org.id)]["head_hash"] == mine[-1].hash
    assert [result.ok for result in audit_chains_verify()] == [True, True, True]
    assert AuditChainHead.objects.get(organisation=org).sequence == 3
    # New events continue each chain, and the append-only trigger still holds after the migration disabled it.
    assert audit_record(actor=None, organisation=org, action="after").sequence == 4
    with pytest.raises(Exception, match="append-only"):
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("UPDATE audit_auditevent SET action = 'forged'")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_migration_refuses_to_re_chain_a_tampered_chain(org, other_org, database_owner):
    executor = MigrationExecutor(connections["default"])
    latest = executor.loader.graph.leaf_nodes("audit")
    executor.migrate([("audit", "0002_append_only_trigger")])
    try:
        old_apps = executor.loader.project_state([("audit", "0002_append_only_trigger")]).apps
        _legacy_chain(old_apps, [(org.id, "a.1"), (other_org.id, "b.1"), (org.id, "a.2")])
        tamper("UPDATE audit_auditevent SET action = 'forged' WHERE sequence = 2", [])
        executor = MigrationExecutor(connections["default"])
        with pytest.raises(RuntimeError, match="broken at event #2"):
            executor.migrate(latest)
        assert list(AuditEvent.objects.order_by("sequence").values_list("sequence", flat=True)) == [1, 2, 3]
    finally:
        tamper("DELETE FROM audit_auditevent", [])
        executor = MigrationExecutor(connections["default"])
        executor.migrate(latest)
    assert not AuditEvent.objects.exists()
