"""The subject data layer: which live dataset versions hold a person's rows (an encrypted per-version index of
pseudonyms -> row positions, so a trace never decrypts a whole file), the person's rows themselves, and the new
versions a data-subject request makes (without the person's rows, or with corrected values).

The index lives beside the version's file (``<file>.subjects.enc``), encrypted under the version's own data key with
its own file id: destroying the version's key destroys the index with it. Its plaintext sha256 is on the version
(``subject_index_sha256``) and is checked on every read. Raw versions hold the external identifier in their subject-key
column; it is pseudonymised batch by batch with the organisation's secret (the function consent records and
preparation use); derived versions already hold pseudonyms there. A version gets its index when a derived version is
stored, when a raw version is prepared (the subject key is only known once roles are confirmed, so not at upload), on
first use here, or with ``manage.py build_subject_indexes``.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from apps.accounts.models import Organisation, Role, User
from apps.accounts.selectors import roles_in
from apps.audit.services import audit_record
from apps.core.errors import AttestError, NotFound, PermissionDenied, ValidationFailed
from apps.core.keys import unwrap_secret
from apps.datasets.models import ColumnRole, DatasetVersion
from apps.datasets.storage import EncryptedIncomingFile, storage_root, version_relative_path

INDEX_SUFFIX = ".subjects.enc"
# Who may change versions for a data-subject request; apps/rights decides which of them may act for a request.
RIGHTS_ROLES = (Role.PRIVACY, Role.ADMIN, Role.STEWARD)
PERSONAL_ROLES = (
    ColumnRole.DIRECT_IDENTIFIER,
    ColumnRole.SUBJECT_KEY,
    ColumnRole.QUASI_IDENTIFIER,
    ColumnRole.SENSITIVE,
)
NOT_LIVE = (DatasetVersion.Status.ERASED, DatasetVersion.Status.REPLACED)


@dataclass(frozen=True)
class Holding:
    """A live version holding a person's rows, at these sorted row positions (0 = the first data row)."""

    version: DatasetVersion
    positions: list[int]


@dataclass(frozen=True)
class Replacement:
    """A version replaced for a request: the new version without (or with corrected) rows."""

    old: DatasetVersion
    new: DatasetVersion
    old_sha256: str
    new_sha256: str
    rows_removed: int


# ------------------------------------------------------------------------------------------------ the index


def live_versions(organisation: Organisation) -> Any:
    """Versions of the organisation that still hold data and name a subject-key column."""
    return (
        DatasetVersion.objects.filter(dataset__organisation=organisation)
        .exclude(status__in=NOT_LIVE)
        .exclude(wrapped_key="")
        .exclude(subject_key_column="")
        .select_related("dataset")
        .order_by("dataset__name", "number")
    )


def index_path(version: DatasetVersion) -> Path:
    return storage_root() / (version.storage_path.removesuffix(".enc") + INDEX_SUFFIX)


def _index_file_id(version_id: Any) -> uuid.UUID:
    # Its own file id (authenticated in every chunk), so the index and the table can never be swapped.
    return uuid.uuid5(uuid.UUID(str(version_id)), "subject-index")


def holds_identifiers(version: DatasetVersion) -> bool:
    """Raw versions hold the external identifier in the subject-key column; derived ones hold pseudonyms."""
    return version.kind == DatasetVersion.Kind.RAW


def index_builder(version: DatasetVersion) -> Any:
    """An empty IndexBuilder for this version's subject-key column."""
    from apps.consent.services import pseudonym_secret
    from workers.engine.rights.index import IndexBuilder

    secret = pseudonym_secret(version.dataset.organisation) if holds_identifiers(version) else None
    return IndexBuilder(secret)


def _write_index(version: DatasetVersion, builder: Any, data_key: bytes) -> tuple[str, int]:
    """Encrypt the built index beside the version's file; returns (plaintext sha256, rows with a subject)."""
    from workers.engine.datasets.crypto import StreamingEncryptor

    encryptor = StreamingEncryptor(index_path(version), data_key, _index_file_id(version.id))
    try:
        rows = builder.write(encryptor.write)
        return encryptor.close(), rows
    except BaseException:
        encryptor.abort()
        raise


def subject_index_store(version: DatasetVersion, builder: Any, *, data_key: bytes | None = None) -> DatasetVersion:
    """Write ``builder`` (fed with every row of the version, in order) as the version's index and record its hash.
    A derived artefact of content already audited (its upload or derivation), so no event of its own."""
    key = data_key if data_key is not None else unwrap_secret(version.wrapped_key)
    sha256, rows = _write_index(version, builder, key)
    fields = {"subject_index_sha256": sha256, "subject_index_column": version.subject_key_column}
    fields["subject_index_rows"] = rows
    DatasetVersion.objects.filter(pk=version.pk).update(**fields)
    for name, value in fields.items():
        setattr(version, name, value)
    return version


def subject_index_current(version: DatasetVersion) -> bool:
    return bool(
        version.subject_index_sha256
        and version.subject_key_column
        and version.subject_index_column == version.subject_key_column
        and index_path(version).exists()
    )


def subject_index_build(version: DatasetVersion) -> DatasetVersion:
    """Build the index by reading only the subject-key column, a record batch at a time."""
    from apps.datasets.tables import version_batches

    if not version.subject_key_column or not version.wrapped_key:
        raise AttestError("invalid_state", f"{version} has no subject-key column or no data: it has no index.")
    builder = index_builder(version)
    with version_batches(version, columns=[version.subject_key_column]) as reader:
        for batch in reader:
            builder.add(batch.column(0))
    return subject_index_store(version, builder)


def subject_index_ensure(version: DatasetVersion) -> DatasetVersion:
    return version if subject_index_current(version) else subject_index_build(version)


def _positions_in(version: DatasetVersion, wanted: Any) -> dict[bytes, Any]:
    """Look the wanted digests up in the version's index (decrypted as read, its sha256 checked)."""
    from workers.engine.datasets.crypto import TamperedFileError, open_decrypted
    from workers.engine.rights.index import lookup

    digest = hashlib.sha256()
    try:
        with open_decrypted(index_path(version), unwrap_secret(version.wrapped_key), _index_file_id(version.id)) as raw:

            def read(size: int) -> bytes:
                block = raw.read(size)
                digest.update(block)
                return block

            found = lookup(read, wanted)
            while block := raw.read(1024 * 1024):  # the rest, so the whole plaintext is hashed
                digest.update(block)
    except TamperedFileError as exc:
        raise AttestError("tampered", f"The subject index of {version} fails its integrity check: {exc}.") from exc
    if digest.hexdigest() != version.subject_index_sha256:
        raise AttestError("tampered", f"The subject index of {version} does not match its recorded sha256.")
    return found


def versions_holding(organisation: Organisation, pseudonyms: Iterable[str]) -> dict[str, list[Holding]]:
    """For each pseudonym (64 hex digits) found, the live versions holding its rows, with their row positions.
    Reads only the indexes (built first where missing); pseudonyms found nowhere are absent from the answer."""
    from workers.engine.rights.index import digests_of

    wanted = digests_of(pseudonyms)
    result: dict[str, list[Holding]] = {}
    if len(wanted) == 0:
        return result
    for version in live_versions(organisation):
        subject_index_ensure(version)
        for digest, positions in _positions_in(version, wanted).items():
            result.setdefault(digest.hex(), []).append(Holding(version, positions.tolist()))
    return result


def positions_in_version(version: DatasetVersion, pseudonyms: Iterable[str]) -> dict[str, list[int]]:
    """Pseudonym -> sorted row positions in this one version (from its index only; absent when not held)."""
    from workers.engine.rights.index import digests_of

    if version.status in NOT_LIVE or not version.wrapped_key or not version.subject_key_column:
        return {}
    wanted = digests_of(pseudonyms)
    if len(wanted) == 0:
        return {}
    subject_index_ensure(version)
    return {digest.hex(): positions.tolist() for digest, positions in _positions_in(version, wanted).items()}


def _positions_of(version: DatasetVersion, pseudonyms: Iterable[str]) -> Any:
    import numpy as np

    from workers.engine.rights.index import digests_of

    subject_index_ensure(version)
    found = _positions_in(version, digests_of(pseudonyms))
    if not found:
        return np.empty(0, dtype=np.int64)
    return np.unique(np.concatenate(list(found.values())))


# ------------------------------------------------------------------------------------------------ reading rows


def personal_columns(version: DatasetVersion) -> list[str]:
    """The version's columns that are personal data by their confirmed role (identifiers, subject key,
    quasi-identifiers, sensitive attributes)."""
    names = set(version.columns.filter(role__in=PERSONAL_ROLES).values_list("name", flat=True))
    if version.subject_key_column:
        names.add(version.subject_key_column)
    return [name for name in version.column_names if name in names]


def subject_rows(version: DatasetVersion, pseudonyms: Iterable[str]) -> Any:
    """The person's rows of one version as a pyarrow.Table, every column as stored: a raw version holds the
    identifier as uploaded, a derived one the pseudonym in its subject-key column. The schema's metadata
    ``attest.personal_columns`` (JSON list) names the personal columns and ``attest.positions`` the row positions."""
    import pyarrow as pa

    from apps.datasets.tables import version_batches
    from workers.engine.rights.rows import select_rows

    if version.status in NOT_LIVE or not version.wrapped_key:
        raise AttestError("erased", f"{version} no longer holds data.")
    positions = _positions_of(version, pseudonyms)
    with version_batches(version) as reader:
        schema = reader.schema
        batches = list(select_rows(reader, positions)) if len(positions) else []
    metadata = {
        b"attest.personal_columns": json.dumps(personal_columns(version)).encode(),
        b"attest.positions": json.dumps(positions.tolist()).encode(),
    }
    schema = schema.with_metadata(metadata)
    return pa.Table.from_batches([batch.cast(schema) for batch in batches] if batches else [], schema)


# ------------------------------------------------------------------------------------------------ new versions


def _require_rights_actor(actor: User | None, organisation: Organisation) -> None:
    """``None`` is the system (a rights job acting for a request its service already authorised)."""
    if actor is None:
        return
    roles = roles_in(actor, organisation)
    if not roles:
        raise NotFound()
    if not roles & set(RIGHTS_ROLES):
        raise PermissionDenied("Only privacy officers, org admins and data stewards act on data-subject requests.")


@dataclass
class _Written:
    """A new version's encrypted file and index, written but not yet a version."""

    old: DatasetVersion
    incoming: EncryptedIncomingFile
    sha256: str
    rows: int
    schema: Any
    transform: dict[str, Any]
    index_sha256: str = ""
    index_rows: int = 0
    index_file: Path | None = None

    def discard(self) -> None:
        self.incoming.discard()
        if self.index_file is not None:
            self.index_file.unlink(missing_ok=True)


def _derived_index(old: DatasetVersion, new: DatasetVersion, data_key: bytes, removed: Any) -> tuple[str, int]:
    """The new version's index from the old one's (rows at ``removed`` gone, later positions moved up), encrypted
    under the new version's key: no row is read or pseudonymised again. Returns (plaintext sha256, records)."""
    from workers.engine.datasets.crypto import StreamingEncryptor, open_decrypted
    from workers.engine.rights.index import index_without

    encryptor = StreamingEncryptor(index_path(new), data_key, _index_file_id(new.id))
    try:
        with open_decrypted(index_path(old), unwrap_secret(old.wrapped_key), _index_file_id(old.id)) as source:
            records = index_without(source.read, encryptor.write, removed)
        return encryptor.close(), records
    except BaseException:
        encryptor.abort()
        raise


def _rewrite(old: DatasetVersion, rewrite: Any, transform: Any, removed: Any) -> _Written:
    """Stream ``old`` through ``rewrite(batches, schema)`` into a new encrypted Parquet file, and write its index
    (derived from the old index: ``removed`` are the row positions the rewrite drops) beside where it will live."""
    from apps.datasets.tables import version_batches, write_encrypted

    subject_index_ensure(old)
    with version_batches(old) as reader:
        schema = reader.schema
        incoming, sha256, rows = write_encrypted(rewrite(reader, schema), schema)
    written = _Written(old, incoming, sha256, rows, schema, transform() if callable(transform) else transform)
    try:
        probe = DatasetVersion(id=incoming.file_id, dataset=old.dataset)
        probe.storage_path = version_relative_path(probe)
        written.index_file = index_path(probe)
        written.index_sha256, written.index_rows = _derived_index(old, probe, incoming.data_key, removed)
    except BaseException:
        written.discard()
        raise
    return written


def _locked_live(version: DatasetVersion) -> DatasetVersion:
    locked = DatasetVersion.objects.select_for_update().select_related("dataset").get(pk=version.pk)
    if locked.status in NOT_LIVE or not locked.wrapped_key or locked.sha256 != version.sha256:
        raise AttestError("conflict", f"{locked} changed while the request was executed; nothing was changed.")
    return locked


def _new_version(written: _Written, actor: User | None) -> DatasetVersion:
    """The version row for a written file (inside the caller's transaction); the file is moved into place."""
    from apps.datasets.services import _queue_profile

    old = written.old
    dataset = old.dataset
    if DatasetVersion.objects.filter(dataset=dataset, sha256=written.sha256).exists():
        raise AttestError("conflict", f"The rewritten {old} has the content of another version of {dataset}.")
    number = (dataset.versions.aggregate(n=Max("number"))["n"] or 0) + 1
    new = DatasetVersion(
        id=written.incoming.file_id,
        dataset=dataset,
        number=number,
        kind=old.kind,  # a raw version stays raw (preparable again), a prepared one prepared
        parent=old,
        transform=written.transform,
        file_name=f"{Path(old.file_name).stem}-{written.transform['transform']}.parquet",
        file_format="parquet",
        sha256=written.sha256,
        size_bytes=written.incoming.size,
        row_count=written.rows,
        column_names=written.schema.names,
        wrapped_key=written.incoming.wrapped_key(),
        retention_until=old.retention_until,
        subject_key_column=old.subject_key_column,
        consent_snapshot_hash=old.consent_snapshot_hash,
        consent_as_of=old.consent_as_of,
        roles_confirmed_at=timezone.now(),
        roles_confirmed_by=actor,
        created_by=actor or old.created_by,
        subject_index_sha256=written.index_sha256,
        subject_index_column=old.subject_key_column,
        subject_index_rows=written.index_rows,
    )
    new.storage_path = version_relative_path(new)
    new.save()
    destination = storage_root() / new.storage_path
    destination.parent.mkdir(parents=True, exist_ok=True)
    os.replace(written.incoming.path, destination)
    # Profiled again (the profile of the old version describes rows that are gone); roles come from the parent.
    _queue_profile(actor, new)
    return new


def _mark_replaced(old: DatasetVersion, new: DatasetVersion) -> None:
    old.status = DatasetVersion.Status.REPLACED
    old.replaced_by = new
    old.save(update_fields=["status", "replaced_by", "updated_at"])


def _safe_reason(reason: dict[str, Any]) -> dict[str, Any]:
    """The request's references only (e.g. {"request": "DSR-2026-0001", "kind": "erasure"}): scalars, short."""
    return {
        str(k)[:40]: v
        for k, v in (reason or {}).items()
        if isinstance(v, str | int | float | bool) and len(str(v)) <= 200
    }


def versions_without_subjects(
    *, actor: User | None, organisation: Organisation, pseudonyms: Iterable[str], reason: dict[str, Any]
) -> list[Replacement]:
    """Replace every live version holding any of ``pseudonyms`` by a new version without their rows (lineage names
    the request and counts the rows removed). Every new file is written first; then all the new versions are
    created, and the old ones marked replaced, in one transaction: a failure anywhere leaves every version as it
    was and no new file behind. Call ``versions_destroy`` after the commit. One audit event (counts and hashes)."""
    _require_rights_actor(actor, organisation)
    pseudonyms = list(pseudonyms)
    reason = _safe_reason(reason)
    per_version: dict[Any, tuple[DatasetVersion, set[int]]] = {}
    for holdings in versions_holding(organisation, pseudonyms).values():
        for holding in holdings:
            per_version.setdefault(holding.version.pk, (holding.version, set()))[1].update(holding.positions)
    if not per_version:
        return []
    written: list[_Written] = []
    moved: list[DatasetVersion] = []
    try:
        written = _write_all(list(per_version.values()), reason)
        with transaction.atomic():
            replacements = []
            for item in written:
                old = _locked_live(item.old)
                new = _new_version(item, actor)
                moved.append(new)
                _mark_replaced(old, new)
                removed = item.transform["rows_removed"]
                replacements.append(Replacement(old, new, old.sha256, new.sha256, removed))
            audit_record(
                actor=actor,
                organisation=organisation,
                action="dataset.erase_subjects",
                target=replacements[0].new,
                after={
                    **reason,
                    "new_versions": [str(r.new.pk) for r in replacements],
                    "profile_jobs": [str(r.new.profile_job_id) for r in replacements],
                    "subjects": len(set(pseudonyms)),
                    "versions": len(replacements),
                    "rows_removed": sum(r.rows_removed for r in replacements),
                    "replacements": [
                        {"old": r.old_sha256, "new": r.new_sha256, "rows_removed": r.rows_removed} for r in replacements
                    ],
                },
            )
    except BaseException:
        for item in written:
            item.discard()
        for new in moved:
            (storage_root() / new.storage_path).unlink(missing_ok=True)
            index_path(new).unlink(missing_ok=True)
        raise
    return replacements


def _write_all(items: list[tuple[DatasetVersion, set[int]]], reason: dict[str, Any]) -> list[_Written]:
    """Every new file, one version per thread (Arrow, hashing and AES release the GIL; no database access here: the
    indexes were ensured by the lookup). All are awaited before a failure is raised, and then every file written
    is discarded, so nothing is left behind."""
    from concurrent.futures import ThreadPoolExecutor, wait

    with ThreadPoolExecutor(max_workers=max(1, min(len(items), os.cpu_count() or 1, 4))) as pool:
        futures = [pool.submit(_write_without, version, sorted(positions), reason) for version, positions in items]
        wait(futures)
    done = [future.result() for future in futures if future.exception() is None]
    failed = [future.exception() for future in futures if future.exception() is not None]
    if failed:
        for item in done:
            item.discard()
        raise failed[0]
    return done


def _write_without(version: DatasetVersion, positions: list[int], reason: dict[str, Any]) -> _Written:
    import numpy as np

    from workers.engine.rights.rows import RewriteCount, rows_without

    count = RewriteCount()

    def spec() -> dict[str, Any]:
        return {
            "transform": "erasure",
            **reason,
            "rows_in": count.rows_in,
            "rows_out": count.rows_out,
            "rows_removed": count.rows_in - count.rows_out,
            "parent_sha256": version.sha256,
        }

    removed = np.array(positions, dtype=np.int64)
    return _rewrite(version, lambda batches, _schema: rows_without(batches, removed, count), spec, removed)


def version_files_discard(versions: Iterable[DatasetVersion]) -> None:
    """Remove the file and index of new versions whose rows a caller's transaction rolled back: without their rows
    the ciphertext is unreadable, but it must not stay on disk either."""
    for version in versions:
        if not DatasetVersion.objects.filter(pk=version.pk).exists():
            (storage_root() / version.storage_path).unlink(missing_ok=True)
            index_path(version).unlink(missing_ok=True)


def versions_destroy(replacements: list[Replacement], *, actor: User | None = None) -> int:
    """Destroy the replaced versions' data key, file and index (their hashes stay): after the replacing versions
    are committed. One audit event for the batch; returns how many were destroyed."""
    if not replacements:
        return 0
    organisation = replacements[0].old.dataset.organisation
    paths: list[Path] = []
    with transaction.atomic():
        destroyed = []
        for replacement in replacements:
            old = DatasetVersion.objects.select_for_update().get(pk=replacement.old.pk)
            if old.status != DatasetVersion.Status.REPLACED or old.replaced_by_id is None:
                raise AttestError("invalid_state", f"{old} is not replaced; it is not destroyed.")
            if not old.wrapped_key:
                continue
            old.wrapped_key = ""
            old.erased_at = timezone.now()
            old.save(update_fields=["wrapped_key", "erased_at", "updated_at"])
            paths += [storage_root() / old.storage_path, index_path(old)]
            destroyed.append(old)
        audit_record(
            actor=actor,
            organisation=organisation,
            action="dataset.destroy_replaced",
            target=replacements[0].old,
            after={
                "versions": len(destroyed),
                "version_ids": [str(v.pk) for v in destroyed],
                "sha256": [v.sha256 for v in destroyed],
            },
        )
    # The versions were already replaced (committed, by versions_without_subjects): without its key the ciphertext is
    # noise, and the file goes as well.
    for path in paths:
        path.unlink(missing_ok=True)
    for replacement in replacements:
        replacement.old.refresh_from_db()
    return len(destroyed)


def version_rectified(
    *,
    actor: User | None,
    version: DatasetVersion,
    pseudonym: str,
    corrections: dict[str, Any],
    reason: dict[str, Any],
) -> DatasetVersion:
    """A new version of ``version`` with ``corrections`` (column -> corrected value) written into the person's rows;
    lineage names the request, the columns and the rows changed (never the values). The old version is marked
    replaced and its key, file and index destroyed once committed. One audit event."""
    from workers.engine.rights.rows import CorrectionError, RewriteCount, rows_replaced

    organisation = version.dataset.organisation
    _require_rights_actor(actor, organisation)
    reason = _safe_reason(reason)
    if version.status in NOT_LIVE or not version.wrapped_key:
        raise AttestError("invalid_state", f"{version} no longer holds data.")
    if not corrections:
        raise ValidationFailed("Give at least one corrected value.", {"corrections": ["empty"]})
    if version.subject_key_column in corrections:
        raise ValidationFailed(
            "The subject key identifies the person and is not rectified here.",
            {"corrections": [f"{version.subject_key_column} is the subject key"]},
        )
    positions = _positions_of(version, [pseudonym])
    if not len(positions):
        raise ValidationFailed(f"{version} holds no row of this person.", {"pseudonym": ["no rows in this version"]})
    count = RewriteCount()

    def spec() -> dict[str, Any]:
        return {
            "transform": "rectification",
            **reason,
            "columns": sorted(corrections),
            "rows_in": count.rows_in,
            "rows_changed": count.rows_changed,
            "parent_sha256": version.sha256,
        }

    def rewrite(batches: Any, schema: Any) -> Any:
        return rows_replaced(batches, schema, positions, corrections, count)

    try:
        written = _rewrite(version, rewrite, spec, [])  # same rows, same subjects: the same index
    except CorrectionError as exc:
        raise ValidationFailed(exc.message, {"corrections": {exc.column: [exc.message]}}) from None
    new = None
    try:
        with transaction.atomic():
            old = _locked_live(version)
            new = _new_version(written, actor)
            _mark_replaced(old, new)
            old.wrapped_key = ""
            old.erased_at = timezone.now()
            old.save(update_fields=["wrapped_key", "erased_at", "updated_at"])
            audit_record(
                actor=actor,
                organisation=organisation,
                action="dataset.rectify",
                target=new,
                after={
                    **reason,
                    "columns": sorted(corrections),
                    "rows_changed": count.rows_changed,
                    "old_sha256": old.sha256,
                    "new_sha256": new.sha256,
                    "profile_job": str(new.profile_job_id),
                },
            )
            paths = [storage_root() / old.storage_path, index_path(old)]
            # Only once committed: a caller's rollback must give the old version back with its file.
            transaction.on_commit(lambda: [path.unlink(missing_ok=True) for path in paths])
    except BaseException:
        written.discard()
        if new is not None:
            (storage_root() / new.storage_path).unlink(missing_ok=True)
            index_path(new).unlink(missing_ok=True)
        raise
    version.refresh_from_db()
    return new
