"""Database-level guards shared by migrations: tables whose rows, once written, must never change."""

from __future__ import annotations

from typing import Any


def refuse_row_changes(table: str, what: str) -> tuple[Any, Any]:
    """RunPython (forward, backward) functions that add (or drop) a PostgreSQL trigger refusing UPDATE and DELETE on
    ``table``. Row triggers leave TRUNCATE (test-database flushes) working; SQLite (the demo) goes without."""
    function, trigger = f"{table}_refuse_change", f"{table}_immutable"
    create = f"""
CREATE OR REPLACE FUNCTION {function}() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '{what} (% refused on {table})', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER {trigger} BEFORE UPDATE OR DELETE ON {table} FOR EACH ROW EXECUTE FUNCTION {function}();
"""
    drop = f"DROP TRIGGER IF EXISTS {trigger} ON {table}; DROP FUNCTION IF EXISTS {function}();"

    def forward(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(create, params=None)

    def backward(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(drop, params=None)

    return forward, backward
