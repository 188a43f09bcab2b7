"""Make board decisions immutable in the database itself: once recorded, no UPDATE or DELETE can change them."""

from django.db import migrations

PG_CREATE = """
CREATE OR REPLACE FUNCTION ethics_decision_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'board decisions are immutable (% refused on ethics_decision)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER ethics_decision_immutable
    BEFORE UPDATE OR DELETE ON ethics_decision
    FOR EACH ROW EXECUTE FUNCTION ethics_decision_refuse_change();
"""

PG_DROP = """
DROP TRIGGER IF EXISTS ethics_decision_immutable ON ethics_decision;
DROP FUNCTION IF EXISTS ethics_decision_refuse_change();
"""


def create_trigger(apps, schema_editor):
    # As for the audit log: row triggers leave TRUNCATE (test flushes) working; SQLite (the demo) goes without.
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_CREATE, params=None)


def drop_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("ethics", "0001_initial")]
    operations = [migrations.RunPython(create_trigger, drop_trigger)]
