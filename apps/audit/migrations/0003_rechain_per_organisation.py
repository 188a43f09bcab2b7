"""Split the single audit chain into one chain per organisation (and one for platform events).

One shared chain numbered every event platform-wide, so an organisation's sequence numbers and head revealed how much
every other organisation did. Each event's hash covers its sequence and its predecessor's hash, so moving an event to
its organisation's chain means computing its hash again: this migration first verifies the whole old chain (hashes,
links, gaps and the stored head) and refuses to run on a broken one, so a tampered row is never laundered into a
valid-looking new chain. Then it renumbers and re-hashes every event within its own chain, in the order the events
were written, and appends one platform event, ``audit.rechain``, recording the old chain's head (the last hash anyone
could have published) beside each new chain's head. The append-only trigger is disabled for this transaction only.

Reversing does the same in the other direction (verify every chain, re-chain them into one), so the step is testable.
"""

from django.db import migrations, models
from django.utils import timezone

from apps.audit.chain import GENESIS_HASH, event_hash

TRIGGER = "audit_event_append_only"
PLATFORM = "platform"


def _key(organisation_id):
    return str(organisation_id) if organisation_id else PLATFORM


def _hash(event, sequence, prev_hash):
    return event_hash(
        sequence=sequence,
        created_at=event.created_at,
        organisation_id=event.organisation_id,
        actor_id=event.actor_id,
        actor_label=event.actor_label,
        request_id=event.request_id,
        action=event.action,
        object_type=event.object_type,
        object_id=event.object_id,
        before=event.before,
        after=event.after,
        prev_hash=prev_hash,
    )


def _events(AuditEvent, chunk=2000):
    """Every event in the order it was written (within a chain the id grows with the sequence)."""
    ids = list(AuditEvent.objects.order_by("id").values_list("id", flat=True))
    for start in range(0, len(ids), chunk):
        yield from AuditEvent.objects.filter(id__in=ids[start : start + chunk]).order_by("id")


def _verify(AuditEvent, chain_of):
    """Walk the chains as they are stored (``chain_of(event)`` names an event's chain); the heads reached, by chain."""
    heads = {}
    for event in _events(AuditEvent):
        key = chain_of(event)
        sequence, previous = heads.get(key, (0, GENESIS_HASH))
        if (
            event.sequence != sequence + 1
            or event.prev_hash != previous
            or _hash(event, event.sequence, previous) != event.hash
        ):
            raise RuntimeError(
                f"The audit chain {key} is broken at event #{event.sequence} (id {event.pk}): refusing to re-chain "
                "it, which would hide the change. Run manage.py audit_verify, investigate, restore from a backup."
            )
        heads[key] = (event.sequence, event.hash)
    return heads


def _rewrite(AuditEvent, chain_of):
    heads = {}
    for event in _events(AuditEvent):
        key = chain_of(event)
        sequence, previous = heads.get(key, (0, GENESIS_HASH))
        sequence += 1
        digest = _hash(event, sequence, previous)
        if (event.sequence, event.prev_hash, event.hash) != (sequence, previous, digest):
            AuditEvent.objects.filter(pk=event.pk).update(sequence=sequence, prev_hash=previous, hash=digest)
        heads[key] = (sequence, digest)
    return heads


def _set_trigger(schema_editor, enabled):
    if schema_editor.connection.vendor == "postgresql":
        state = "ENABLE" if enabled else "DISABLE"
        schema_editor.execute(f"ALTER TABLE audit_auditevent {state} TRIGGER {TRIGGER}", params=None)


def per_organisation(apps, schema_editor):
    AuditEvent = apps.get_model("audit", "AuditEvent")
    AuditChainHead = apps.get_model("audit", "AuditChainHead")
    if not AuditEvent.objects.exists():
        return
    old = _verify(AuditEvent, lambda event: "global")
    old_sequence, old_hash = old["global"]
    stored = AuditChainHead.objects.filter(id=1).first()
    if stored is not None and (stored.sequence, stored.hash) != (old_sequence, old_hash):
        raise RuntimeError(
            f"The audit chain's stored head (#{stored.sequence}) does not match its last event (#{old_sequence}): "
            "events were deleted from the end. Refusing to re-chain; investigate and restore from a backup."
        )
    _set_trigger(schema_editor, False)
    heads = _rewrite(AuditEvent, lambda event: _key(event.organisation_id))
    _set_trigger(schema_editor, True)
    sequence, previous = heads.get(PLATFORM, (0, GENESIS_HASH))
    record = AuditEvent(
        sequence=sequence + 1,
        created_at=timezone.now(),
        organisation_id=None,
        actor_id=None,
        actor_label="system",
        request_id="",
        action="audit.rechain",
        object_type="",
        object_id="",
        before={"chain": "one for the platform", "head_sequence": old_sequence, "head_hash": old_hash},
        after={"chains": {key: {"head_sequence": s, "head_hash": h} for key, (s, h) in sorted(heads.items())}},
        prev_hash=previous,
    )
    # Stored JSON must hash exactly as written: the values above are plain JSON already.
    record.hash = _hash(record, record.sequence, previous)
    record.save()


def single_chain(apps, schema_editor):
    AuditEvent = apps.get_model("audit", "AuditEvent")
    AuditChainHead = apps.get_model("audit", "AuditChainHead")
    AuditChainHead.objects.all().delete()
    if not AuditEvent.objects.exists():
        return
    _verify(AuditEvent, lambda event: _key(event.organisation_id))
    _set_trigger(schema_editor, False)
    heads = _rewrite(AuditEvent, lambda event: "global")
    _set_trigger(schema_editor, True)
    sequence, digest = heads["global"]
    AuditChainHead.objects.create(id=1, sequence=sequence, hash=digest)


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_append_only_trigger")]

    operations = [
        migrations.AlterField(
            model_name="auditevent",
            name="sequence",
            field=models.PositiveBigIntegerField(
                help_text="Position in its organisation's chain, from 1, without gaps."
            ),
        ),
        migrations.RunPython(per_organisation, single_chain),
    ]
