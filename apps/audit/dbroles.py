"""Two database roles on PostgreSQL: the owner migrates, the portal runs as a role that cannot rewrite history.

The owner (``DATABASE_MIGRATE_URL``) owns every table: only it can TRUNCATE, ALTER TABLE or disable a trigger. The
portal's role (``DATABASE_URL``: web, workers, beat) gets SELECT, INSERT, UPDATE and DELETE on ordinary tables, only
SELECT and INSERT on the immutable ones (every table guarded by a ``*_refuse_change`` trigger: the audit log, the
published heads, board decisions), and only SELECT on ``django_migrations``. ``manage.py migrate`` and ``flush`` switch
the connection to the owner (``as_owner``), and after every migrate ``grant_app_role`` (a post_migrate handler) brings
the grants up to date, with default privileges so a table created later is usable at once.

Without ``DATABASE_MIGRATE_URL`` (SQLite in the demo, or one role for development) nothing here does anything.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connections, transaction

# The portal's role of each connection alias while it is switched to the owner.
_app_roles: dict[str, str] = {}

IMMUTABLE_TABLES_SQL = """
SELECT DISTINCT c.relname
FROM pg_trigger t
JOIN pg_class c ON c.oid = t.tgrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_proc p ON p.oid = t.tgfoid
WHERE NOT t.tgisinternal AND n.nspname = current_schema() AND p.proname LIKE '%%refuse_change'
ORDER BY c.relname
"""


def owner_settings() -> dict[str, Any] | None:
    return getattr(settings, "DATABASE_OWNER", None) or None


def app_role(alias: str = "default") -> str | None:
    """The portal's role for ``alias``, when a separate owner is configured (else None: one role does everything)."""
    if alias in _app_roles:
        return _app_roles[alias]
    owner = owner_settings()
    user = connections[alias].settings_dict.get("USER")
    if owner is None or not user or user == owner.get("USER"):
        return None
    return user


def switch_to_owner(alias: str = "default") -> Any:
    """Point ``alias`` at the owner role (closing its connection); return a function that switches it back.

    Only the credentials change: the owner must reach the same server and database (the test database's name, set by
    the test runner, is kept). A no-op without an owner, on another vendor, or when already the owner.
    """
    connection = connections[alias]
    owner = owner_settings()
    role = app_role(alias)
    if owner is None or connection.vendor != "postgresql" or role is None or alias in _app_roles:
        return lambda: None
    if connection.in_atomic_block:
        raise RuntimeError("Cannot switch to the owner role inside a transaction (use a transactional test).")
    connection.close()
    saved = {key: connection.settings_dict.get(key) for key in ("USER", "PASSWORD")}
    connection.settings_dict.update(USER=owner.get("USER"), PASSWORD=owner.get("PASSWORD") or "")
    _app_roles[alias] = role

    def restore() -> None:
        connection.close()
        connection.settings_dict.update(saved)
        _app_roles.pop(alias, None)

    return restore


@contextmanager
def as_owner(alias: str = "default") -> Iterator[None]:
    """Run the block as the owner role (migrations, flushes, an operator's repair)."""
    restore = switch_to_owner(alias)
    try:
        yield
    finally:
        restore()


def immutable_tables(connection: Any) -> list[str]:
    """Tables guarded by a refuse-change trigger (apps/core/db.refuse_row_changes and the audit log's own)."""
    with connection.cursor() as cursor:
        cursor.execute(IMMUTABLE_TABLES_SQL)
        return [row[0] for row in cursor.fetchall()]


def grant_app_role(alias: str = "default") -> list[str]:
    """Grant the portal's role what it needs and nothing more; return the statements run (none without two roles)."""
    connection = connections[alias]
    role = app_role(alias)
    if connection.vendor != "postgresql" or role is None or connection.settings_dict.get("USER") == role:
        return []
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT rolsuper, pg_has_role(%s, current_user, 'MEMBER') FROM pg_roles WHERE rolname = %s", [role, role]
        )
        row = cursor.fetchone()
        if row is None:
            raise ImproperlyConfigured(f"The database role {role!r} (DATABASE_URL) does not exist: create it first.")
        if row[0] or row[1]:
            raise ImproperlyConfigured(
                f"The database role {role!r} (DATABASE_URL) is a superuser or a member of the owner role: it could "
                "truncate or alter the audit log. Give the portal a plain LOGIN role."
            )
        cursor.execute("SELECT current_schema()")
        schema = quote(cursor.fetchone()[0])
    app, owner = quote(role), quote(connection.settings_dict["USER"])
    statements = [
        f"GRANT USAGE ON SCHEMA {schema} TO {app}",
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {app}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {app}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {app}",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {schema} GRANT SELECT, INSERT, UPDATE, DELETE "
        f"ON TABLES TO {app}",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {schema} GRANT USAGE, SELECT ON SEQUENCES TO {app}",
        f"REVOKE INSERT, UPDATE, DELETE ON {quote('django_migrations')} FROM {app}",
    ]
    statements += [f"REVOKE UPDATE, DELETE ON {quote(table)} FROM {app}" for table in immutable_tables(connection)]
    # One transaction: the portal never sees the moment between the REVOKE and the GRANT.
    with transaction.atomic(using=alias), connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
    return statements


def grant_after_migrate(sender: Any, using: str = "default", **kwargs: Any) -> None:
    """post_migrate handler (once per migrate, and after each test flush, which re-emits it)."""
    grant_app_role(using)
