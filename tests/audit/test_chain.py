import json
import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from rest_framework.test import APIClient

from apps.audit.dbroles import as_owner
from apps.audit.models import AuditChainHead, AuditEvent
from apps.audit.services import audit_record
from apps.audit.verify import audit_chain_verify


def write_events(org, actor, count):
    return [
        audit_record(actor=actor, organisation=org, action="test.write", object_id=str(i), after={"i": i, "note": "x"})
        for i in range(count)
    ]


def tamper(sql, params):
    """Change rows behind the portal's back: as the owner role (a superuser here) with triggers off, like an attacker
    holding the owner's credentials. The portal's own role may do none of this, so the caller needs a transactional
    test (``django_db(transaction=True)``): the owner is another session, which sees only committed rows."""
    with as_owner(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = DEFAULT")


@pytest.mark.django_db
def test_an_intact_chain_verifies(org, admin_user, capsys):
    write_events(org, admin_user, 5)
    call_command("audit_verify")
    assert "OK: 5 events" in capsys.readouterr().out


@pytest.mark.django_db(transaction=True)
def test_an_edited_row_is_named_by_audit_verify(org, admin_user):
    events = write_events(org, admin_user, 6)
    tamper("UPDATE audit_auditevent SET after = %s WHERE sequence = %s", [json.dumps({"i": 999}), events[3].sequence])
    with pytest.raises(CommandError) as caught:
        call_command("audit_verify")
    assert f"event #{events[3].sequence}" in str(caught.value)
    assert "content does not match" in str(caught.value)


@pytest.mark.django_db(transaction=True)
def test_a_deleted_row_shows_as_a_gap(org, admin_user):
    events = write_events(org, admin_user, 6)
    tamper("DELETE FROM audit_auditevent WHERE sequence = %s", [events[2].sequence])
    result = audit_chain_verify()
    assert not result.ok and result.broken_sequence == events[2].sequence and "missing" in result.reason


@pytest.mark.django_db(transaction=True)
def test_a_rebuilt_chain_is_exposed_by_a_published_head(org, admin_user):
    write_events(org, admin_user, 3)
    published = AuditChainHead.objects.get().hash
    # Someone with database access rewrites history consistently: delete everything, write a new chain.
    tamper("DELETE FROM audit_auditevent", [])
    AuditChainHead.objects.all().delete()
    write_events(org, admin_user, 3)
    assert audit_chain_verify().ok  # internally consistent...
    with pytest.raises(CommandError) as caught:
        call_command("audit_verify", organisation=org.slug, expect_head=published)
    assert "history was rewritten" in str(caught.value)


@pytest.mark.django_db(transaction=True)
def test_events_deleted_from_the_end_disagree_with_the_head(org, admin_user):
    events = write_events(org, admin_user, 4)
    tamper("DELETE FROM audit_auditevent WHERE sequence = %s", [events[-1].sequence])
    result = audit_chain_verify()
    assert not result.ok and "head" in result.reason


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("statement", ["UPDATE audit_auditevent SET action = 'forged'", "DELETE FROM audit_auditevent"])
def test_the_database_refuses_to_change_audit_rows(org, admin_user, statement):
    write_events(org, admin_user, 2)
    # The portal's role has no UPDATE or DELETE privilege here; the owner, who has, meets the trigger.
    with pytest.raises(DatabaseError, match="permission denied"):
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(statement)
    with as_owner(), pytest.raises(DatabaseError, match="append-only"):
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(statement)
    assert AuditEvent.objects.filter(action="test.write").count() == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_never_fork_the_chain(org, admin_user):
    threads_count, per_thread = 8, 25
    barrier = threading.Barrier(threads_count)
    errors = []

    def writer(number):
        try:
            barrier.wait()
            for i in range(per_thread):
                with transaction.atomic():
                    audit_record(
                        actor=admin_user, organisation=org, action="test.concurrent", object_id=f"{number}-{i}"
                    )
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
    events = list(AuditEvent.objects.order_by("sequence"))
    assert [e.sequence for e in events] == list(range(1, threads_count * per_thread + 1))
    assert len({e.prev_hash for e in events}) == len(events)  # no two events claim the same predecessor
    assert all(b.prev_hash == a.hash for a, b in zip(events, events[1:], strict=False))
    assert audit_chain_verify().ok


@pytest.mark.django_db
def test_a_rolled_back_change_takes_its_event_with_it(org, admin_user):
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            audit_record(actor=admin_user, organisation=org, action="test.rollback")
            raise RuntimeError("the change failed")
    assert not AuditEvent.objects.filter(action="test.rollback").exists()
    assert audit_chain_verify().ok


@pytest.mark.django_db
def test_the_request_id_of_the_http_request_is_recorded(org, admin_user):
    client = APIClient()
    client.force_authenticate(admin_user)
    response = client.patch(
        f"/api/v1/organisations/{org.id}/", {"dpo_name": "D. P. O."}, format="json", HTTP_X_REQUEST_ID="req-1234567890"
    )
    assert response["X-Request-ID"] == "req-1234567890"
    assert AuditEvent.objects.get(action="organisation.update").request_id == "req-1234567890"
