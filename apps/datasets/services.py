"""Dataset writes: register, upload (encrypted while streaming), profile, confirm roles, prepare, datasheets,
retention. Each mutating function writes one audit event."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from apps.accounts.models import User
from apps.accounts.selectors import roles_in
from apps.audit.services import audit_record
from apps.core.errors import AttestError, NotFound, PermissionDenied, ValidationFailed
from apps.datasets.datasheet import normalise_datasheet, prefill_datasheet
from apps.datasets.models import ColumnRole, Dataset, DatasetColumn, DatasetVersion, DatasheetRevision
from apps.datasets.permissions import can
from apps.datasets.profiles import PERSONAL, protection_of
from apps.datasets.storage import EncryptedIncomingFile, storage_root, version_relative_path
from apps.usecases.models import UseCase
from workers.engine.datasets.ingest import IngestError, Limits, TableInfo, inspect_csv, inspect_parquet


def _require_writer(actor: User, organisation: Any) -> None:
    if not roles_in(actor, organisation):
        raise NotFound()
    if not can(actor, "change", organisation):
        raise PermissionDenied("Only data stewards and org admins manage datasets.")


def dataset_create(*, actor: User, usecase: UseCase, name: str, description: str = "") -> Dataset:
    _require_writer(actor, usecase.organisation)
    name = (name or "").strip()
    if not name:
        raise ValidationFailed("Name the dataset.", {"name": ["This field is required."]})
    with transaction.atomic():
        dataset = Dataset.objects.create(
            organisation=usecase.organisation,
            usecase=usecase,
            name=name[:200],
            description=description.strip(),
            created_by=actor,
        )
        audit_record(
            actor=actor,
            organisation=dataset.organisation,
            action="dataset.create",
            target=dataset,
            after={"name": dataset.name, "usecase": usecase.reference},
        )
    return dataset


def _inspect(incoming: EncryptedIncomingFile) -> TableInfo:
    from django.conf import settings

    # Rows and decompressed size are bounded here, so no worker ever decompresses a table beyond them.
    limits = Limits(settings.MAX_ROWS or None, settings.MAX_DECOMPRESSED_BYTES or None)
    with incoming.open() as reader:
        head = reader.peek(8)[:8]
        if head.startswith(b"PAR1"):
            # Parquet needs random access: decrypt into a private temporary file just for the check (its footer).
            with tempfile.NamedTemporaryFile(dir=incoming.path.parent, suffix=".parquet") as plain:
                shutil.copyfileobj(reader, plain, 1024 * 1024)
                plain.flush()
                return inspect_parquet(Path(plain.name), limits)
        return inspect_csv(reader, limits)


class DatasetColumnLimits:
    """What one version may have: the column name's database field, and a width a person can still govern."""

    MAX_COLUMNS = 1000
    MAX_NAME = 200  # DatasetColumn.name


def _retention_date(value: date | str | None) -> date | None:
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise ValidationFailed(
            "The retention date is not a date: write it as YYYY-MM-DD, e.g. 2028-12-31.",
            {"retention_until": ["not a date (YYYY-MM-DD)"]},
        ) from None


def dataset_version_upload(
    *,
    actor: User,
    dataset: Dataset,
    incoming: EncryptedIncomingFile,
    sha256: str,
    file_name: str,
    retention_until: date | str | None = None,
) -> tuple[DatasetVersion, bool]:
    """Turn an encrypted upload into a raw version; returns (version, created). Same content -> existing version.

    Bad content (or a retention date that is not a date) raises ValidationFailed with the ingest error's code, and
    the encrypted file is removed.
    """
    try:
        _require_writer(actor, dataset.organisation)
        retention_until = _retention_date(retention_until)
        existing = DatasetVersion.objects.filter(dataset=dataset, sha256=sha256).first()
        if existing is not None:
            incoming.discard()
            return existing, False
        if incoming.size == 0:
            raise IngestError("empty", "The file is empty.")
        info = _inspect(incoming)
    except IngestError as exc:
        incoming.discard()
        raise ValidationFailed(exc.message, {"file": [exc.message], "code": exc.code, **exc.details}) from None
    except BaseException:
        incoming.discard()
        raise
    if len(info.columns) > DatasetColumnLimits.MAX_COLUMNS or any(
        len(name) > DatasetColumnLimits.MAX_NAME for name in info.columns
    ):
        incoming.discard()
        message = (
            f"The table has {len(info.columns):,} columns; at most {DatasetColumnLimits.MAX_COLUMNS:,} columns of at "
            f"most {DatasetColumnLimits.MAX_NAME} characters each can be profiled and governed. Split the file or "
            "shorten the column names."
        )
        raise ValidationFailed(message, {"file": [message], "code": "too_many_columns"})
    try:
        with transaction.atomic():
            number = (dataset.versions.aggregate(n=Max("number"))["n"] or 0) + 1
            version = DatasetVersion(
                id=incoming.file_id,
                dataset=dataset,
                number=number,
                kind=DatasetVersion.Kind.RAW,
                file_name=Path(file_name).name[:255],
                file_format=info.format,
                encoding=info.encoding,
                delimiter=info.delimiter,
                sha256=sha256,
                size_bytes=incoming.size,
                row_count=info.rows,
                column_names=info.columns,
                formula_cells=info.formula_cells,
                wrapped_key=incoming.wrapped_key(),
                retention_until=retention_until,
                created_by=actor,
            )
            version.storage_path = version_relative_path(version)
            version.save()
            destination = storage_root() / version.storage_path
            destination.parent.mkdir(parents=True, exist_ok=True)
            os.replace(incoming.path, destination)
            job = _queue_profile(actor, version)
            audit_record(
                actor=actor,
                organisation=dataset.organisation,
                action="dataset.upload",
                target=version,
                after={
                    "dataset": dataset.name,
                    "number": number,
                    "sha256": sha256,
                    "rows": info.rows,
                    "format": info.format,
                    "size_bytes": incoming.size,
                    "profile_job": str(job.id),
                },
            )
    except BaseException:
        incoming.discard()
        if "version" in locals() and version.storage_path:
            (storage_root() / version.storage_path).unlink(missing_ok=True)
        raise
    return version, True


def _queue_profile(actor: User | None, version: DatasetVersion) -> Any:
    from apps.jobs.services import job_create

    job = job_create(
        actor=actor,
        organisation=version.dataset.organisation,
        kind="profile",
        spec={"version_id": str(version.id)},
        target=version,
    )
    DatasetVersion.objects.filter(pk=version.pk).update(profile_job=job)
    version.profile_job = job
    return job


def read_version_table(version: DatasetVersion) -> Any:
    """The whole table in memory (training and evaluation); profiling, preparation and anonymisation read batches."""
    from apps.datasets.tables import read_version_table as read_whole

    return read_whole(version)


def dataset_version_profile(*, version_id: Any, progress: Any = None) -> dict[str, Any]:
    """The profiling job's body: profile, detect personal data, suggest roles; store columns (one audit event)."""
    from apps.datasets.tables import profile_version
    from workers.engine.datasets.pii import detect_column, suggest_role
    from workers.engine.datasets.profiling import without_values

    version = DatasetVersion.objects.select_related("dataset").get(id=version_id)
    if version.status == DatasetVersion.Status.READY and version.profile:
        # Already profiled (a redelivered job, or the demo seed profiled inline): never wipe confirmed roles.
        return {"columns": version.columns.count(), "already_profiled": True}
    if version.status in (DatasetVersion.Status.REPLACED, DatasetVersion.Status.ERASED):
        # Replaced (a data-subject request) or erased before its profile job ran: nothing left to profile.
        return {"columns": 0, "no_longer_held": version.status}
    if progress:
        progress(0.1, "Profiling the file batch by batch")
    profiler = profile_version(version)  # memory: one record batch and each column's bounded state
    profile, samples = profiler.result(), profiler.samples()
    if progress:
        progress(0.8, "Looking for personal data")
    inherited = {c.name: c.role for c in version.parent.columns.all()} if version.parent_id else {}
    columns = []
    for position, column_profile in enumerate(profile["columns"]):
        name = column_profile["name"]
        sample = samples[name]  # the non-missing values among the first 2,000 rows
        findings = detect_column(name, sample, column_profile)
        role, reason = suggest_role(name, findings, column_profile)
        column_profile["pii"] = findings["findings"]
        if protection_of(role=inherited.get(name, ""), suggested_role=role, pii=findings["findings"]) == PERSONAL:
            # Never store a personal-data column's values (pages, API and reports redact them anyway, and a role
            # confirmed later is redacted there: apps/datasets/profiles.py).
            column_profile = profile["columns"][position] = without_values(column_profile)
        columns.append(
            DatasetColumn(
                version=version,
                position=position,
                name=name,
                kind=column_profile["kind"],
                suggested_role=role,
                suggestion_reason=reason,
                role=inherited.get(name, ""),
                pii=findings["findings"],
            )
        )
    with transaction.atomic():
        DatasetColumn.objects.filter(version=version).delete()
        DatasetColumn.objects.bulk_create(columns)
        DatasetVersion.objects.filter(pk=version.pk).update(profile=profile, status=DatasetVersion.Status.READY)
        flagged = {c.name: [f["kind"] for f in c.pii] for c in columns if c.pii}
        audit_record(
            actor=None,
            organisation=version.dataset.organisation,
            action="dataset.profile",
            target=version,
            after={"columns": len(columns), "personal_data_flags": flagged},
        )
    return {"columns": len(columns), "flagged": sorted(flagged)}


def dataset_version_confirm_roles(*, actor: User, version: DatasetVersion, roles: dict[str, str]) -> DatasetVersion:
    """The steward's decision on each column's role (exactly one subject key when consent is to be checked)."""
    _require_writer(actor, version.dataset.organisation)
    names = {c.name: c for c in version.columns.all()}
    errors: dict[str, list[str]] = {}
    for name, role in roles.items():
        if name not in names:
            errors[name] = ["no such column in this version"]
        elif role not in ColumnRole.values:
            errors[name] = [f"unknown role {role!r}"]
    missing = sorted(set(names) - set(roles))
    if missing:
        errors["roles"] = [f"give a role to every column; missing: {', '.join(missing)}"]
    subject_keys = [name for name, role in roles.items() if role == ColumnRole.SUBJECT_KEY]
    if len(subject_keys) > 1:
        errors["subject_key"] = ["at most one column can be the subject key"]
    labels = [name for name, role in roles.items() if role == ColumnRole.LABEL]
    if len(labels) > 1:
        errors["label"] = ["at most one column can be the label"]
    if errors:
        raise ValidationFailed("The column roles are not valid.", errors)
    with transaction.atomic():
        before = {name: column.role for name, column in names.items()}
        for name, role in roles.items():
            DatasetColumn.objects.filter(pk=names[name].pk).update(role=role)
        version.subject_key_column = subject_keys[0] if subject_keys else ""
        version.roles_confirmed_at = timezone.now()
        version.roles_confirmed_by = actor
        version.save(update_fields=["subject_key_column", "roles_confirmed_at", "roles_confirmed_by", "updated_at"])
        audit_record(
            actor=actor,
            organisation=version.dataset.organisation,
            action="dataset.confirm_roles",
            target=version,
            before=before,
            after=roles,
        )
    return version


def dataset_version_prepare_start(*, actor: User, version: DatasetVersion) -> Any:
    """Queue the prepare job for a raw version whose roles are confirmed and which has a subject key."""
    from apps.datasets.selectors import prepare_blocker
    from apps.jobs.services import job_create

    _require_writer(actor, version.dataset.organisation)
    blocker = prepare_blocker(version)
    if blocker:
        raise AttestError("invalid_state", blocker)
    with transaction.atomic():
        job = job_create(
            actor=actor,
            organisation=version.dataset.organisation,
            kind="prepare",
            spec={"version_id": str(version.id)},
            target=version,
        )
        audit_record(
            actor=actor,
            organisation=version.dataset.organisation,
            action="dataset.prepare_request",
            target=version,
            after={"job": str(job.id)},
        )
    return job


def dataset_version_prepare(*, version_id: Any, actor_id: Any = None, progress: Any = None) -> dict[str, Any]:
    """The prepare job's body: consent filter as of now, drop identifiers, pseudonymise; a new version with lineage."""

    import pyarrow as pa

    from apps.consent.selectors import consent_state
    from apps.consent.services import pseudonym_secret
    from apps.datasets.subjects import index_builder, subject_index_current, subject_index_store
    from apps.datasets.tables import conversion_failed, version_batches
    from workers.engine.consent import snapshot_hash
    from workers.engine.datasets.prepare import Preparation, PrepareError

    version = DatasetVersion.objects.select_related("dataset__usecase", "dataset__organisation").get(id=version_id)
    dataset, organisation = version.dataset, version.dataset.organisation
    actor = User.objects.filter(id=actor_id).first() if actor_id else None
    purpose = dataset.usecase.purpose
    as_of = timezone.now()
    secret = pseudonym_secret(organisation)
    state = consent_state(organisation, purpose, as_of)
    valid = sorted(p for p, status in state.items() if status == "granted")
    roles = {c.name: c.role for c in version.columns.all()}
    snapshot = snapshot_hash(valid, purpose, as_of)
    if progress:
        progress(0.1, f"Filtering {version.row_count:,} rows by consent for '{purpose}', batch by batch")

    def refused(exc: PrepareError) -> ValidationFailed:
        return ValidationFailed(exc.message, {"column": exc.column} if exc.column else {})

    # Read, filtered, pseudonymised and encrypted one record batch at a time: memory is a batch and a row group.
    with version_batches(version) as reader:
        try:
            run = Preparation(
                reader.schema, roles=roles, subject_column=version.subject_key_column, secret=secret, consented=valid
            )
        except PrepareError as exc:
            raise refused(exc) from None

        # The raw version's subject index comes from the same pass when it has none yet for this subject key.
        raw_index = None if subject_index_current(version) else index_builder(version)

        def prepared() -> Any:
            try:
                for batch in reader if raw_index is None else raw_index.tap(reader, version.subject_key_column):
                    yield run.apply(batch)
            except pa.ArrowInvalid as exc:
                raise conversion_failed(version, exc) from None

        def spec() -> dict[str, Any]:
            try:
                done = run.spec()
            except PrepareError as exc:
                raise refused(exc) from None
            return {
                **done,
                "purpose": purpose,
                "consent_as_of": as_of.isoformat(),
                "consent_snapshot_hash": snapshot,
                "parent_sha256": version.sha256,
            }

        child, created = store_derived_version(
            source=version,
            batches=prepared(),
            schema=run.schema,
            kind=DatasetVersion.Kind.PREPARED,
            transform=spec,
            suffix="prepared",
            actor=actor,
            consent_snapshot_hash=snapshot,
            consent_as_of=as_of,
            action="dataset.prepare",
        )
    if raw_index is not None:
        subject_index_store(version, raw_index)
    if not created:
        return {"version_id": str(child.id), "created": False}
    return {
        "version_id": str(child.id),
        "created": True,
        "rows_out": child.row_count,
        "rows_removed_without_consent": child.transform["rows_removed_without_consent"],
    }


def store_derived_version(
    *,
    source: DatasetVersion,
    kind: str,
    transform: dict[str, Any] | Any,
    suffix: str,
    actor: User | None,
    action: str,
    table: Any = None,
    batches: Any = None,
    schema: Any = None,
    consent_snapshot_hash: str | None = None,
    consent_as_of: Any = None,
) -> tuple[DatasetVersion, bool]:
    """Encrypt a derived table (``table``, or record ``batches`` of ``schema``) as a new version of ``source``'s
    dataset, with lineage, and queue its profile (one audit event, ``action``). Batches are written as Parquet and
    encrypted as they come (a row group in memory, no plaintext on disk); ``transform`` may be a function called once
    they are all written (a spec with counts), and may raise to refuse them. Content already stored returns that
    version; a failure leaves no file and no row."""
    from apps.datasets.subjects import index_builder, subject_index_store
    from apps.datasets.tables import write_encrypted

    dataset = source.dataset
    if table is not None:
        batches, schema = table.to_batches(), table.schema
    # The subject index is built from the rows as they are written (derived versions carry pseudonyms there).
    subject_column = source.subject_key_column if source.subject_key_column in schema.names else ""
    index = index_builder(DatasetVersion(kind=kind, dataset=dataset)) if subject_column else None
    if index is not None:
        batches = index.tap(batches, subject_column)
    incoming, sha256, rows = write_encrypted(batches, schema)
    try:
        if callable(transform):
            transform = transform()
        existing = DatasetVersion.objects.filter(dataset=dataset, sha256=sha256).first()
        if existing is not None:
            incoming.discard()
            return existing, False
        with transaction.atomic():
            number = (dataset.versions.aggregate(n=Max("number"))["n"] or 0) + 1
            child = DatasetVersion(
                id=incoming.file_id,
                dataset=dataset,
                number=number,
                kind=kind,
                parent=source,
                transform=transform,
                file_name=f"{Path(source.file_name).stem.removesuffix('-prepared')}-{suffix}.parquet",
                file_format="parquet",
                sha256=sha256,
                size_bytes=incoming.size,
                row_count=rows,
                column_names=schema.names,
                wrapped_key=incoming.wrapped_key(),
                retention_until=source.retention_until,
                subject_key_column=source.subject_key_column if source.subject_key_column in schema.names else "",
                consent_snapshot_hash=consent_snapshot_hash
                if consent_snapshot_hash is not None
                else source.consent_snapshot_hash,
                consent_as_of=consent_as_of if consent_as_of is not None else source.consent_as_of,
                roles_confirmed_at=timezone.now(),
                roles_confirmed_by=actor,
                created_by=actor or source.created_by,
            )
            child.storage_path = version_relative_path(child)
            child.save()
            destination = storage_root() / child.storage_path
            destination.parent.mkdir(parents=True, exist_ok=True)
            os.replace(incoming.path, destination)
            if index is not None:
                subject_index_store(child, index, data_key=incoming.data_key)
            job = _queue_profile(actor, child)
            audit_record(
                actor=actor,
                organisation=dataset.organisation,
                action=action,
                target=child,
                after={**transform, "sha256": sha256, "parent": str(source.id), "profile_job": str(job.id)},
            )
    except BaseException:
        incoming.discard()
        raise
    return child, True


def datasheet_save(*, actor: User, version: DatasetVersion, content: dict[str, Any] | None = None) -> DatasheetRevision:
    """Save a datasheet revision; with no content, the prefilled sheet becomes the first revision."""
    _require_writer(actor, version.dataset.organisation)
    if content is None:
        from apps.datasets.selectors import version_coverage

        content = prefill_datasheet(version, version_coverage(version))
    sheet = normalise_datasheet(content)
    digest = hashlib.sha256(json.dumps(sheet, sort_keys=True).encode()).hexdigest()
    with transaction.atomic():
        latest = version.datasheets.order_by("-number").first()
        if latest is not None and latest.sha256 == digest:
            return latest
        revision = DatasheetRevision.objects.create(
            version=version, number=(latest.number + 1) if latest else 1, content=sheet, sha256=digest, author=actor
        )
        audit_record(
            actor=actor,
            organisation=version.dataset.organisation,
            action="datasheet.save",
            target=revision,
            after={"version": str(version.id), "number": revision.number, "sha256": digest},
        )
    from apps.ethics.services import reviews_supersede_stale

    # Reviews bound to the previous datasheet were read against other words: their votes start again.
    reviews_supersede_stale(usecase=version.dataset.usecase, actor=actor)
    return revision


def dataset_version_erase_expired(*, today: date | None = None) -> list[str]:
    """Retention: erase versions past their date by destroying their data key and file (one event each)."""
    today = today or timezone.localdate()
    erased = []
    for version in DatasetVersion.objects.filter(retention_until__lt=today).exclude(
        status=DatasetVersion.Status.ERASED
    ):
        with transaction.atomic():
            locked = DatasetVersion.objects.select_for_update().get(pk=version.pk)
            # Without its key the ciphertext is noise, in backups too; the file goes as well.
            locked.wrapped_key = ""
            locked.status = DatasetVersion.Status.ERASED
            locked.erased_at = timezone.now()
            locked.save(update_fields=["wrapped_key", "status", "erased_at", "updated_at"])
            (storage_root() / locked.storage_path).unlink(missing_ok=True)
            audit_record(
                actor=None,
                organisation=locked.dataset.organisation,
                action="dataset.erase",
                target=locked,
                after={"retention_until": locked.retention_until, "sha256": locked.sha256},
            )
        erased.append(str(version.id))
    return erased


def master_key_rotate() -> int:
    """Re-wrap every stored secret under the first (newest) master key; one audit event for the rotation.

    Every model field named ``wrapped_*`` holds a secret wrapped by the master key (data keys of files, pseudonym
    keys, signing keys, webhook secrets), as text or as ASCII bytes: all are found through the app registry, so a new
    one cannot be forgotten here and become unreadable once the old master key is retired."""
    from apps.core.keys import rewrap_secret, wrapped_secret_fields

    count = 0
    with transaction.atomic():
        for model, name in wrapped_secret_fields():
            for pk, value in model.objects.values_list("pk", name).iterator():
                if not value:
                    continue
                if isinstance(value, (bytes, memoryview)):
                    rewrapped: str | bytes = rewrap_secret(bytes(value).decode("ascii")).encode("ascii")
                else:
                    rewrapped = rewrap_secret(value)
                model.objects.filter(pk=pk).update(**{name: rewrapped})
                count += 1
        audit_record(actor=None, action="keys.rotate_master", after={"rewrapped": count})
    return count
