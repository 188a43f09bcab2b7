"""Consent writes: single events pushed by an organisation's consent system, and CSV imports (all or nothing)."""

from __future__ import annotations

import hashlib
import os
import secrets
import tempfile
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from apps.accounts.models import Organisation, User
from apps.accounts.selectors import roles_in
from apps.audit.services import audit_record
from apps.consent.models import ConsentImport, ConsentRecord, DataSubject, PseudonymKey
from apps.consent.permissions import can
from apps.core.errors import AttestError, NotFound, PermissionDenied, ValidationFailed
from apps.core.keys import unwrap_secret, wrap_secret
from workers.engine.consent import (
    ConsentEvent,
    ConsentFileError,
    ParseReport,
    parse_consent_csv,
    validate_event,
)

# Largest consent file accepted (a million records is about 100 MB).
IMPORT_MAX_BYTES = 512 * 1024 * 1024


def _check(actor: User, organisation: Organisation, action: str) -> None:
    if not roles_in(actor, organisation):
        raise NotFound()
    if not can(actor, action, organisation):
        raise PermissionDenied("Only data stewards and org admins manage consent records.")


def pseudonym_secret(organisation: Organisation) -> bytes:
    """The organisation's pseudonym secret, created on first use.

    Creating it writes no audit event: it is an internal step of whatever first needs a pseudonym (a consent event,
    an import, a page computing consent coverage), like a chain head created lazily; its row records when, and
    re-wrapping it is audited (``keys.rotate_master``). An event here gave the first consent event two events.
    """
    key = PseudonymKey.objects.filter(organisation=organisation).first()
    if key is None:
        key, _created = PseudonymKey.objects.get_or_create(
            organisation=organisation, defaults={"wrapped_key": wrap_secret(secrets.token_bytes(32))}
        )
    return unwrap_secret(key.wrapped_key)


def _store_events(
    organisation: Organisation,
    events: Iterable[ConsentEvent],
    *,
    source: str,
    consent_import: ConsentImport | None = None,
) -> tuple[int, int]:
    """Insert events, ignoring ones already stored (same natural key); returns (created, duplicates)."""
    events = list(events)
    pseudonyms = {event.subject_pseudonym for event in events}
    DataSubject.objects.bulk_create(
        [DataSubject(organisation=organisation, pseudonym=p) for p in pseudonyms],
        ignore_conflicts=True,
        batch_size=2000,
    )
    subject_ids = dict(
        DataSubject.objects.filter(organisation=organisation, pseudonym__in=pseudonyms).values_list("pseudonym", "id")
    )
    keys = [event.natural_key for event in events]
    existing = set(
        ConsentRecord.objects.filter(organisation=organisation, natural_key__in=keys).values_list(
            "natural_key", flat=True
        )
    )
    fresh: dict[str, ConsentRecord] = {}
    for event, key in zip(events, keys, strict=True):
        if key in existing or key in fresh:
            continue
        fresh[key] = ConsentRecord(
            organisation=organisation,
            subject_id=subject_ids[event.subject_pseudonym],
            purpose=event.purpose,
            status=event.status,
            occurred_at=event.occurred_at,
            notice_version=event.notice_version,
            channel=event.channel,
            evidence_ref=event.evidence_ref,
            source=source,
            consent_import=consent_import,
            natural_key=key,
        )
    ConsentRecord.objects.bulk_create(fresh.values(), batch_size=2000)
    return len(fresh), len(events) - len(fresh)


def consent_event_record(*, actor: User, organisation: Organisation, data: dict[str, Any]) -> ConsentRecord:
    """Record one consent event (e.g. a withdrawal pushed by the organisation's consent system); idempotent."""
    _check(actor, organisation, "record")
    row = {key: "" if value is None else str(value) for key, value in data.items()}
    if isinstance(data.get("timestamp"), datetime):
        row["timestamp"] = data["timestamp"].isoformat()
    event, problems = validate_event(
        row, pseudonym_secret(organisation), set(organisation.processing_purposes or []) or None
    )
    if event is None:
        details: dict[str, list[str]] = {}
        for column, message in problems:
            details.setdefault(column, []).append(message)
        raise ValidationFailed("The consent event is not valid.", details)
    with transaction.atomic():
        created, _duplicates = _store_events(organisation, [event], source=ConsentRecord.Source.API)
        record = ConsentRecord.objects.get(organisation=organisation, natural_key=event.natural_key)
        if created:
            audit_record(
                actor=actor,
                organisation=organisation,
                action="consent.record",
                target=record,
                # The record (which erasure can reach) links the person; the append-only log never does.
                after={
                    "purpose": event.purpose,
                    "status": event.status,
                    "occurred_at": event.occurred_at,
                },
            )
    return record


def _imports_dir() -> Path:
    folder = Path(settings.STORAGE_ROOT) / "consent-imports"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return folder


def import_file_path(consent_import: ConsentImport) -> Path:
    return _imports_dir() / f"{consent_import.id}.csv"


def consent_import_create(
    *, actor: User, organisation: Organisation, file_name: str, chunks: Iterable[bytes]
) -> ConsentImport:
    """Stream an uploaded consent CSV to a private file (hashing it, capping its size) and queue its import.

    The file holds raw subject ids, so it lives only until its import job ends (it is deleted then, either way).
    """
    _check(actor, organisation, "import")
    folder = _imports_dir()
    digest, size = hashlib.sha256(), 0
    handle, temp_name = tempfile.mkstemp(dir=folder, suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out:
            for chunk in chunks:
                size += len(chunk)
                if size > IMPORT_MAX_BYTES:
                    raise AttestError("too_large", f"The file is larger than {IMPORT_MAX_BYTES // 2**20} MB.")
                digest.update(chunk)
                out.write(chunk)
        if size == 0:
            raise ValidationFailed("The file is empty.", {"file": ["empty file"]})
        with transaction.atomic():
            consent_import = ConsentImport.objects.create(
                organisation=organisation,
                created_by=actor,
                file_name=file_name[:255],
                sha256=digest.hexdigest(),
                size_bytes=size,
            )
            os.replace(temp_name, import_file_path(consent_import))
            from apps.jobs.services import job_create

            job = job_create(
                actor=actor,
                organisation=organisation,
                kind="consent_import",
                spec={"consent_import_id": str(consent_import.id)},
                target=consent_import,
            )
            consent_import.job = job
            consent_import.save(update_fields=["job"])
            audit_record(
                actor=actor,
                organisation=organisation,
                action="consent.import_create",
                target=consent_import,
                after={
                    "file_name": consent_import.file_name,
                    "sha256": consent_import.sha256,
                    "size_bytes": size,
                    "job": str(job.id),
                },
            )
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        if "consent_import" in locals():
            import_file_path(consent_import).unlink(missing_ok=True)
        raise
    return consent_import


def consent_import_run(
    *, consent_import_id: Any, progress: Callable[[float, str], None] | None = None
) -> dict[str, Any]:
    """The import job's body: parse, validate and store the whole file in ONE transaction.

    A fatal file error stores nothing; per-line errors skip their lines and go to the downloadable report.
    Importing the same file twice changes nothing (events are keyed by pseudonym, purpose, status and time).
    """
    consent_import = ConsentImport.objects.select_related("organisation", "created_by").get(id=consent_import_id)
    organisation = consent_import.organisation
    path = import_file_path(consent_import)
    report = ParseReport()
    created = duplicates = 0
    try:
        secret = pseudonym_secret(organisation)
        with transaction.atomic():
            with open(path, "rb") as stream:
                for batch in parse_consent_csv(
                    stream,
                    secret=secret,
                    report=report,
                    allowed_purposes=set(organisation.processing_purposes or []) or None,
                ):
                    batch_created, batch_duplicates = _store_events(
                        organisation, batch, source=ConsentRecord.Source.IMPORT, consent_import=consent_import
                    )
                    created += batch_created
                    duplicates += batch_duplicates
                    if progress is not None:
                        progress(
                            min(0.99, stream.tell() / max(consent_import.size_bytes, 1)), f"{report.lines:,} lines read"
                        )
            outcome = {
                "lines": report.lines,
                "valid": report.valid,
                "invalid": report.invalid,
                "created_records": created,
                "duplicates": duplicates,
            }
            ConsentImport.objects.filter(pk=consent_import.pk).update(
                status=ConsentImport.Status.SUCCEEDED,
                error_report=report.error_csv() if report.errors else "",
                **outcome,
            )
            audit_record(
                actor=consent_import.created_by,
                organisation=organisation,
                action="consent.import",
                target=consent_import,
                after=outcome,
            )
    except ConsentFileError as exc:
        # The job fails with this message; its failure hook deletes the raw file.
        message = exc.message + (f" (line {exc.line})" if exc.line else "")
        raise ValidationFailed(f"Nothing was imported: {message}", {"file": [message]}) from None
    # Any other error leaves the file for a retry of the job (a transient database error, a lost worker); the
    # transaction rolled back, so a retry starts from nothing, and the failure hook deletes it when no retry is left.
    path.unlink(missing_ok=True)
    return outcome


def consent_import_discard_file(*, consent_import: ConsentImport) -> None:
    """The import's failure hook: the raw file holds external subject ids, so it never outlives its job. (File
    housekeeping, not a change of record: the job's own end is the audit event.)"""
    import_file_path(consent_import).unlink(missing_ok=True)
