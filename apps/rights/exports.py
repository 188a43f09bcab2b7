"""The access export (GDPR Art. 15(3)): a ZIP of every row held about the person across live dataset versions (JSON
and CSV), their consent history, the purposes, which models used the data and, where the use case makes automated
decisions (Art. 15(1)(h)), meaningful information about the logic involved.

The ZIP is built in memory (one person's rows) and sealed as it is written with the same chunked AES-GCM as dataset
files, under its own data key wrapped by the master key: its plaintext never touches the disk. Only the privacy
officer (or, without one, the fallback roles of ``apps.rights.permissions``) downloads it, until it expires; the
retention sweep then destroys its key and file and keeps its sha256.

``access_facts`` is what the signed access summary (``apps.reports.rights_content``) prints: the same facts as the
package without a single row value.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import zipfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import User
from apps.audit.services import audit_record
from apps.core.errors import AttestError, InvalidState, NotFound, PermissionDenied
from apps.core.exports import FORMULA_PREFIXES
from apps.core.keys import unwrap_secret, wrap_secret
from apps.rights.models import ExportPackage, SubjectRequest
from workers.engine.datasets.crypto import StreamingEncryptor, TamperedFileError, new_data_key, open_decrypted

# Members of the ZIP get a fixed time, so the same content gives the same sha256.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def _storage_root() -> Path:
    return Path(settings.STORAGE_ROOT)


def _export_relative_path(package: ExportPackage) -> str:
    return f"rights/{package.organisation_id}/{package.id}.enc"


# ------------------------------------------------------------------------------------------------ what is known


def _usecase_purpose(usecase: Any) -> dict[str, Any]:
    return {
        "usecase": usecase.reference,
        "title": usecase.title,
        "purpose": usecase.purpose,
        "lawful_basis": usecase.get_lawful_basis_display(),
        "recipients": list(usecase.recipients or []),
        "retention": usecase.retention,
        "automated_decisions": bool(getattr(usecase, "automated_decisions", False)),
    }


def logic_information(model_version: Any) -> dict[str, Any] | None:
    """Meaningful information about the logic of a model whose use case makes automated decisions: what it predicts,
    how it was built, and what weighs in its decisions (its newest evaluation's global explanation: features in
    order of weight). None when the use case makes no automated decisions."""
    from apps.evaluation.selectors import newest_evaluation

    usecase = model_version.usecase
    if not getattr(usecase, "automated_decisions", False):
        return None
    run = model_version.training_run
    evaluation = newest_evaluation(model_version)
    explanations = ((evaluation.results or {}) if evaluation else {}).get("explanations") or {}
    features = [
        {
            "feature": entry["feature"],
            "mean_abs_attribution": entry.get("mean_abs_attribution"),
            "permutation_importance": (entry.get("permutation_importance") or {}).get("mean"),
        }
        for entry in explanations.get("features") or []
    ]
    return {
        "model": str(model_version),
        "usecase": usecase.reference,
        "predicts": (run.spec or {}).get("label"),
        "model_kind": (run.spec or {}).get("model"),
        "features_used": list((run.spec or {}).get("features") or []),
        "explanation_method": explanations.get("method"),
        "features_by_weight": features,
        "human_oversight": "The decision is reviewed as the use case's governance requires; you may ask for a "
        "person to review it and contest it.",
    }


def access_facts(request: SubjectRequest) -> dict[str, Any]:
    """Everything the access summary prints and the export describes, without row values: where rows are held (with
    counts), the consent history, the purposes, the models trained on the data (split membership), logic
    information for automated decisions, and the newest export package's hash."""
    from apps.consent.models import ConsentRecord
    from apps.datasets.models import DatasetVersion
    from apps.training.models import ModelVersion

    trace = request.trace or {}
    held = [
        {
            "version_id": str(entry.get("version_id")),
            "dataset": entry.get("dataset"),
            "number": entry.get("number"),
            "kind": entry.get("kind"),
            "sha256": entry.get("sha256"),
            "rows": int(entry.get("rows") or 0),
        }
        for entry in trace.get("versions") or []
    ]
    consent = []
    if request.subject_id:
        consent = [
            {
                "purpose": record.purpose,
                "status": record.status,
                "occurred_at": record.occurred_at.isoformat(),
                "source": record.source,
            }
            for record in ConsentRecord.objects.filter(subject_id=request.subject_id).order_by("occurred_at")
        ]
    versions = DatasetVersion.objects.filter(id__in=[h["version_id"] for h in held]).select_related("dataset__usecase")
    usecases = {v.dataset.usecase_id: v.dataset.usecase for v in versions if v.dataset.usecase_id}
    models = []
    logic = []
    model_ids = [entry.get("model_version_id") for entry in trace.get("models") or []]
    found_models = {
        str(m.id): m for m in ModelVersion.objects.filter(id__in=model_ids).select_related("usecase", "training_run")
    }
    for entry in trace.get("models") or []:
        model = found_models.get(str(entry.get("model_version_id")))
        split = entry.get("split") or {}
        models.append(
            {
                "model_version_id": str(entry.get("model_version_id")),
                "model": str(model) if model else f"model v{entry.get('number')}",
                "usecase": entry.get("usecase"),
                # The trace says "private"; a non-private baseline (or no recorded epsilon) is not.
                "non_private": not entry.get("private", not entry.get("non_private", False)),
                "epsilon": entry.get("epsilon"),
                "delta": entry.get("delta"),
                "split": {part: int(split.get(part) or 0) for part in ("train", "validation", "test")},
            }
        )
        if model is not None:
            usecases.setdefault(model.usecase_id, model.usecase)
            information = logic_information(model)
            if information is not None:
                logic.append(information)
    export = request.exports.order_by("-created_at").first()
    return {
        "request": request.reference,
        "pseudonym": request.pseudonym,
        "found": bool(trace.get("found")),
        "traced_at": trace.get("traced_at"),
        "held": held,
        "rows_held": sum(h["rows"] for h in held),
        "consent": consent,
        "purposes": [_usecase_purpose(u) for u in sorted(usecases.values(), key=lambda u: u.reference)],
        "models": models,
        "logic": logic,
        "export": (
            {
                "sha256": export.sha256,
                "size_bytes": export.size_bytes,
                "rows": export.rows,
                "versions": export.versions,
                "created_at": export.created_at.isoformat(),
                "expires_at": export.expires_at.isoformat(),
            }
            if export
            else None
        ),
    }


# --------------------------------------------------------------------------------------------------- the package


def _safe_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _write(archive: zipfile.ZipFile, name: str, data: bytes) -> dict[str, Any]:
    info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data)
    return {"name": name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def _csv_bytes(columns: list[str], rows: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else _safe_cell(row.get(c)) for c in columns])
    return out.getvalue().encode()


def _build_package(request: SubjectRequest) -> tuple[bytes, int, int]:
    """The ZIP (bytes), the rows it holds and the versions they came from. Rows come from every live version holding
    the person (``apps.datasets.subjects``: the encrypted index finds them, only their rows are read)."""
    from apps.datasets.subjects import subject_rows, versions_holding

    facts = access_facts(request)
    buffer = io.BytesIO()
    members: list[dict[str, Any]] = []
    total_rows = 0
    versions_used = 0
    rows_json: list[dict[str, Any]] = []
    holdings = versions_holding(request.organisation, [request.pseudonym]).get(request.pseudonym, [])
    with zipfile.ZipFile(buffer, "w") as archive:
        for holding in sorted(holdings, key=lambda h: (str(h.version.dataset_id), h.version.number)):
            version = holding.version
            table = subject_rows(version, [request.pseudonym])
            rows = [{k: _jsonable(v) for k, v in row.items()} for row in table.to_pylist()]
            if not rows:
                continue
            versions_used += 1
            total_rows += len(rows)
            safe_name = re.sub(r"[^A-Za-z0-9_-]+", "_", version.dataset.name or "dataset").strip("_")[:60]
            # Two datasets may share a name: the dataset id's prefix keeps their files apart.
            stem = f"rows/{safe_name or 'dataset'}-{str(version.dataset_id)[:8]}-v{version.number}"
            members.append(_write(archive, f"{stem}.csv", _csv_bytes(list(table.column_names), rows)))
            rows_json.append(
                {
                    "dataset": version.dataset.name,
                    "version": version.number,
                    "version_id": str(version.id),
                    "version_sha256": version.sha256,
                    "columns": list(table.column_names),
                    "rows": rows,
                }
            )
        members.append(_write(archive, "rows.json", json.dumps(rows_json, indent=2, sort_keys=True).encode()))
        for name, key in (
            ("consent_history.json", "consent"),
            ("purposes.json", "purposes"),
            ("models.json", "models"),
            ("logic_involved.json", "logic"),
        ):
            members.append(_write(archive, name, json.dumps(facts[key], indent=2, sort_keys=True).encode()))
        manifest = {
            "request": request.reference,
            "pseudonym": request.pseudonym,
            "rows": total_rows,
            "versions": versions_used,
            "files": members,
            "note": "Every row held about you in the organisation's live dataset versions. Derived versions hold "
            "your pseudonym in place of your identifier.",
        }
        _write(archive, "manifest.json", json.dumps(manifest, indent=2, sort_keys=True).encode())
    return buffer.getvalue(), total_rows, versions_used


def access_export_create(*, actor: User | None, request: SubjectRequest, now: datetime | None = None) -> ExportPackage:
    """Build the access export of ``request``, seal it at rest and record it (one audit event: its sha256 and counts,
    never a row)."""
    now = now or timezone.now()
    data, rows, versions = _build_package(request)
    digest = hashlib.sha256(data).hexdigest()
    package = ExportPackage(
        organisation=request.organisation,
        request=request,
        created_by=actor,
        sha256=digest,
        size_bytes=len(data),
        rows=rows,
        versions=versions,
        expires_at=now + timedelta(days=settings.RIGHTS_EXPORT_RETENTION_DAYS),
    )
    package.storage_path = _export_relative_path(package)
    data_key = new_data_key()
    destination = _storage_root() / package.storage_path
    with StreamingEncryptor(destination, data_key, package.id) as encryptor:
        encryptor.write(data)
    try:
        with transaction.atomic():
            package.wrapped_key = wrap_secret(data_key)
            package.save()
            audit_record(
                actor=actor,
                organisation=request.organisation,
                action="rights.export_create",
                target=package,
                after={
                    "request": request.reference,
                    "pseudonym": request.pseudonym,
                    "sha256": digest,
                    "rows": rows,
                    "versions": versions,
                    "expires_at": package.expires_at.isoformat(),
                },
            )
    except BaseException:
        destination.unlink(missing_ok=True)
        raise
    return package


def export_package_bytes(*, user: User, package: ExportPackage) -> bytes:
    """The decrypted ZIP, for the privacy officer only, while it has not expired. A read: no audit event."""
    from apps.accounts.selectors import roles_in
    from apps.rights.permissions import can

    if not roles_in(user, package.organisation):
        raise NotFound()
    if not can(user, "manage", package.organisation):
        raise PermissionDenied("Only the privacy officer downloads access exports: they hold the person's rows.")
    if not package.is_available():
        raise InvalidState("This access export has expired and was erased; only its sha256 remains.")
    try:
        with open_decrypted(
            _storage_root() / package.storage_path, unwrap_secret(package.wrapped_key), package.id
        ) as reader:
            data = reader.read()
    except TamperedFileError as exc:
        raise AttestError("tampered", f"The stored export fails its integrity check: {exc}.") from exc
    if hashlib.sha256(data).hexdigest() != package.sha256:
        raise AttestError("tampered", "The stored export does not match its recorded sha256.")
    return data


def export_packages_erase_expired(*, now: datetime | None = None) -> int:
    """Retention: destroy the key and file of every access export past its expiry (one audit event each)."""
    now = now or timezone.now()
    erased = 0
    for package in ExportPackage.objects.filter(expires_at__lte=now, erased_at__isnull=True).select_related("request"):
        with transaction.atomic():
            locked = ExportPackage.objects.select_for_update().get(pk=package.pk)
            if locked.erased_at is not None:
                continue
            # Without its key the ciphertext is noise, in backups too; the file goes as well.
            locked.wrapped_key = ""
            locked.erased_at = now
            locked.save(update_fields=["wrapped_key", "erased_at", "updated_at"])
            (_storage_root() / locked.storage_path).unlink(missing_ok=True)
            audit_record(
                actor=None,
                organisation=locked.organisation,
                action="rights.export_erase",
                target=locked,
                after={"request": package.request.reference, "sha256": locked.sha256},
            )
        erased += 1
    return erased
