"""The database protects the audit log from the portal itself: the portal runs as a role that cannot truncate, alter,
disable triggers on, update or delete the immutable tables (migrations run as the owner), and verification checks each
chain against its last published head, so a chain emptied or rewritten by the owner fails (API, page, command).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from rest_framework.test import APIClient

from apps.audit.dbroles import as_owner
from apps.audit.models import AuditEvent, PublishedHead
from apps.audit.verify import audit_chain_verify
from tests.audit.test_chain import tamper, write_events

REPO = Path(__file__).resolve().parents[2]
IMMUTABLE = ["audit_auditevent", "audit_publishedhead", "ethics_decision"]
REFUSED = "permission denied|must be owner"


def api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def refused(statement: str) -> str:
    with pytest.raises(DatabaseError) as caught, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement)
    return str(caught.value)


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_suite_runs_as_a_plain_application_role():
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user")
        user, superuser = cursor.fetchone()
    assert user == "attest_app" and not superuser


@pytest.mark.postgres
@pytest.mark.django_db
@pytest.mark.parametrize("table", IMMUTABLE)
@pytest.mark.parametrize(
    "statement",
    [
        "TRUNCATE {table}",
        "TRUNCATE {table} CASCADE",
        "ALTER TABLE {table} DISABLE TRIGGER ALL",
        "ALTER TABLE {table} DISABLE TRIGGER USER",
        "ALTER TABLE {table} RENAME TO {table}_old",
        "DROP TABLE {table}",
        "DELETE FROM {table}",
        "UPDATE {table} SET id = id",
    ],
)
def test_the_application_role_cannot_empty_alter_or_change_an_immutable_table(org, admin_user, table, statement):
    write_events(org, admin_user, 3)
    message = refused(statement.format(table=table))
    assert "permission denied" in message or "must be owner" in message, message
    assert AuditEvent.objects.filter(organisation=org).count() == 3


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_application_role_cannot_switch_triggers_off_for_its_session():
    assert "permission denied" in refused("SET session_replication_role = replica")


@pytest.mark.postgres
@pytest.mark.django_db
def test_migrations_grant_the_application_role_what_it_needs_and_no_more():
    def may(table: str, privilege: str) -> bool:
        with connection.cursor() as cursor:
            cursor.execute("SELECT has_table_privilege(current_user, %s, %s)", [table, privilege])
            return cursor.fetchone()[0]

    for table in IMMUTABLE:
        assert may(table, "SELECT") and may(table, "INSERT"), table
        assert not any(may(table, p) for p in ("UPDATE", "DELETE", "TRUNCATE", "TRIGGER", "REFERENCES")), table
    # Ordinary tables are the portal's to change, never to truncate; the migration history is read-only.
    for table in ("accounts_user", "jobs_job", "audit_auditchainhead"):
        assert all(may(table, p) for p in ("SELECT", "INSERT", "UPDATE", "DELETE")), table
        assert not may(table, "TRUNCATE"), table
    assert may("django_migrations", "SELECT") and not may("django_migrations", "INSERT")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_migrate_runs_as_the_owner_and_leaves_the_portal_on_its_own_role():
    call_command("migrate", verbosity=0)  # nothing to apply; the owner re-grants
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        assert cursor.fetchone()[0] == "attest_app"
    assert "permission denied" in refused("TRUNCATE audit_auditevent")


@pytest.mark.django_db(transaction=True)
def test_a_chain_emptied_by_the_owner_fails_against_its_published_head(client, org, admin_user):
    write_events(org, admin_user, 4)
    published = api(admin_user).get("/api/v1/audit/head/").json()
    assert published["sequence"] == 4
    assert api(admin_user).post("/api/v1/audit/verify/").json()["ok"] is True
    # Someone holding the owner's credentials empties the chain and its stored head: internally it is consistent.
    tamper("DELETE FROM audit_auditevent", [])
    tamper("DELETE FROM audit_auditchainhead", [])
    body = api(admin_user).post("/api/v1/audit/verify/").json()
    assert body["ok"] is False and body["checked"] == 0 and body["published_sequence"] == 4
    assert "head #4 was published" in body["reason"] and "empty" in body["reason"]
    client.force_login(admin_user)
    page = client.post("/audit/verify/").content.decode()
    assert "Chain broken" in page and "head #4 was published" in page
    with pytest.raises(CommandError, match="head #4 was published"):
        call_command("audit_verify")
    with pytest.raises(CommandError, match="head #4 was published"):
        call_command("audit_verify", organisation=org.slug)


@pytest.mark.django_db(transaction=True)
def test_a_chain_rewritten_by_the_owner_fails_against_the_head_its_audit_extract_published(org, admin_user):
    from apps.reports.content import audit_extract

    write_events(org, admin_user, 3)
    extract = audit_extract(org).evidence["verification"]
    assert PublishedHead.objects.get(organisation=org, source="report").hash == extract["head_hash"]
    # Rewritten consistently: everything deleted, a new chain of the same length written in its place.
    tamper("DELETE FROM audit_auditevent", [])
    tamper("DELETE FROM audit_auditchainhead", [])
    write_events(org, admin_user, 3)
    result = audit_chain_verify(organisation=org)
    assert not result.ok and result.broken_sequence == 3 and "published" in result.reason
    assert api(admin_user).post("/api/v1/audit/verify/").json()["ok"] is False


@pytest.mark.django_db
def test_published_heads_are_kept_once_per_position_and_an_intact_chain_verifies_against_them(org, admin_user):
    write_events(org, admin_user, 2)
    first = api(admin_user).get("/api/v1/audit/head/").json()
    api(admin_user).get("/api/v1/audit/head/")
    write_events(org, admin_user, 1)
    api(admin_user).get("/api/v1/audit/head/")
    assert list(PublishedHead.objects.order_by("sequence").values_list("sequence", "source")) == [
        (2, "api"),
        (3, "api"),
    ]
    result = audit_chain_verify(organisation=org)
    assert result.ok and result.published_sequence == 3
    assert PublishedHead.objects.get(sequence=2).hash == first["hash"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_owner_meets_the_trigger_on_published_heads(org, admin_user):
    write_events(org, admin_user, 1)
    api(admin_user).get("/api/v1/audit/head/")
    with as_owner():
        assert "insert-only" in refused("UPDATE audit_publishedhead SET sequence = 0")
        assert "insert-only" in refused("DELETE FROM audit_publishedhead")


def test_compose_migrates_as_the_owner_and_runs_everything_else_as_the_application_role():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    migrate = services["migrate"]
    assert "migrate" in " ".join(migrate["command"])
    owner_url = migrate["environment"]["DATABASE_MIGRATE_URL"]
    assert owner_url.startswith("postgres://attest:")
    for name in ("web", "worker", "worker-gpu", "beat"):
        environment = services[name]["environment"]
        assert environment["DATABASE_URL"].startswith("postgres://attest_app:"), name
        assert "DATABASE_MIGRATE_URL" not in environment, name  # the owner's password stays out of the portal
        assert "migrate" not in " ".join(services[name]["command"]), name
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}, name
    # The application role is created with the cluster, beside the owner.
    volumes = " ".join(services["postgres"]["volumes"])
    assert "docker-entrypoint-initdb.d" in volumes
