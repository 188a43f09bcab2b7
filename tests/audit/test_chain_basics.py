from apps.audit.chain import GENESIS_HASH, event_hash
from apps.audit.models import AuditEvent
from apps.audit.services import audit_record


def test_each_event_links_to_the_previous_one_and_hashes_its_own_fields(org, admin_user):
    first = audit_record(
        actor=admin_user,
        organisation=org,
        action="organisation.update",
        target=org,
        before={"name": "Old"},
        after={"name": org.name},
    )
    second = audit_record(actor=None, organisation=org, action="retention.sweep")
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.hash
    stored = AuditEvent.objects.get(pk=first.pk)
    recomputed = event_hash(
        sequence=stored.sequence,
        created_at=stored.created_at,
        organisation_id=stored.organisation_id,
        actor_id=stored.actor_id,
        actor_label=stored.actor_label,
        request_id=stored.request_id,
        action=stored.action,
        object_type=stored.object_type,
        object_id=stored.object_id,
        before=stored.before,
        after=stored.after,
        prev_hash=stored.prev_hash,
    )
    assert recomputed == stored.hash
    assert second.actor_label == "system"
