"""Issuing, storing and verifying reports. Each write writes one audit event; the PDF's sha256 is in it."""

from __future__ import annotations

import hashlib
import os
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.template.loader import render_to_string
from django.utils import timezone

from apps.accounts.models import Organisation, Role, User
from apps.accounts.selectors import roles_in
from apps.audit.services import audit_record
from apps.core.errors import AttestError, NotFound, PermissionDenied, ValidationFailed
from apps.core.keys import unwrap_secret, wrap_secret
from apps.reports import content as builders
from apps.reports import rights_content as rights_builders
from apps.reports.models import Report, SigningIdentity
from apps.reports.pdf import certificate_facts, embedded_evidence, new_self_signed, render_pdf, sign_pdf
from apps.reports.pdf import signature_status as pdf_signature_status

# Which kind of object each report is about, and how it is built.
SUBJECTS: dict[str, tuple[str, Any]] = {
    Report.Kind.MODEL_CARD: ("training.modelversion", builders.model_card),
    Report.Kind.ANNEX_IV: ("training.modelversion", builders.annex_iv),
    Report.Kind.DATASHEET: ("datasets.datasetversion", builders.datasheet),
    Report.Kind.DPIA: ("usecases.usecase", builders.dpia),
    Report.Kind.ART30: ("accounts.organisation", builders.art30),
    Report.Kind.AUDIT_EXTRACT: ("accounts.organisation", builders.audit_extract),
    Report.Kind.DECISION: ("ethics.reviewrequest", builders.decision),
    Report.Kind.MONITORING: ("deployments.deployment", builders.monitoring),
    Report.Kind.COMPLIANCE: ("compliance.frameworkassessment", lambda subject: _compliance_statement(subject)),
    # Data-subject requests (issue 15): issued and read only by those who handle requests (apps.rights.permissions).
    Report.Kind.SUBJECT_ACCESS: ("rights.subjectrequest", rights_builders.subject_access),
    Report.Kind.RIGHTS_CERTIFICATE: ("rights.subjectrequest", rights_builders.rights_certificate),
}
RIGHTS_KINDS = {Report.Kind.SUBJECT_ACCESS, Report.Kind.RIGHTS_CERTIFICATE}


def _compliance_statement(assessment: Any) -> builders.Content:
    from apps.compliance.statement import build  # the compliance app builds its own statement from its selectors

    return build(assessment)


# Kinds about a period of their subject (from, to): versions and supersession are per subject and period.
PERIOD_KINDS = {Report.Kind.MONITORING}
ISSUER_ROLES = {Role.ADMIN, Role.OWNER, Role.STEWARD, Role.BOARD, Role.PRIVACY}


def report_storage_root() -> Path:
    from django.conf import settings

    return Path(settings.STORAGE_ROOT)


def report_relative_path(report: Report) -> Path:
    """Where a report's signed PDF lives, relative to the storage root (one file per reference)."""
    return Path("reports") / str(report.organisation_id) / f"{report.reference}.pdf"


def subject_object(kind: str, subject_id: Any) -> Any:
    from django.apps import apps

    label, _builder = SUBJECTS[kind]
    model = apps.get_model(label)
    return model.objects.get(pk=subject_id)


def _subject_usecase(subject: Any, label: str) -> Any:
    if label == "usecases.usecase":
        return subject
    if label == "datasets.datasetversion":
        return subject.dataset.usecase
    return getattr(subject, "usecase", None)


def subject_organisation(subject: Any) -> Organisation:
    if isinstance(subject, Organisation):
        return subject
    if hasattr(subject, "organisation"):
        return subject.organisation
    return subject.dataset.organisation  # a dataset version


# ------------------------------------------------------------------------------------------------------- signing


def signing_identity(organisation: Organisation) -> SigningIdentity:
    """The active signing identity; a self-signed one is made the first time (an admin imports a real one).

    Making it writes no audit event of its own: it is a step of the render that needs it, and every ``report.issue``
    event names the identity that signed (fingerprint, subject, self-signed). An import is audited
    (``signing_identity.create``)."""
    current = SigningIdentity.objects.filter(organisation=organisation, retired_at__isnull=True).first()
    if current is not None:
        return current
    cert_pem, key_pem, _not_after = new_self_signed(f"{organisation.name} reports (self-signed)", organisation.name)
    return _store_identity(None, organisation, cert_pem, key_pem, audited=False)


def _store_identity(
    actor: User | None, organisation: Organisation, cert_pem: str, key_pem: str, *, audited: bool = True
) -> SigningIdentity:
    facts = certificate_facts(cert_pem)
    with transaction.atomic():
        SigningIdentity.objects.filter(organisation=organisation, retired_at__isnull=True).update(
            retired_at=timezone.now()
        )
        identity = SigningIdentity.objects.create(
            organisation=organisation,
            certificate_pem=cert_pem,
            wrapped_key=wrap_secret(key_pem.encode()),
            fingerprint=facts["fingerprint"],
            subject=facts["subject"],
            self_signed=facts["self_signed"],
            not_after=facts["not_after"],
        )
        if audited:
            audit_record(
                actor=actor,
                organisation=organisation,
                action="signing_identity.create",
                target=identity,
                after={
                    "fingerprint": identity.fingerprint,
                    "subject": identity.subject,
                    "self_signed": identity.self_signed,
                },
            )
    return identity


def signing_identity_import(
    *, actor: User, organisation: Organisation, cert_pem: str, key_pem: str, key_password: str = ""
) -> SigningIdentity:
    """An org admin imports the organisation's certificate (issued by its own certificate authority, or self-signed)
    and its private key (PEM, optionally encrypted with ``key_password``); the key must match the certificate. The key
    is stored unencrypted inside the master-key wrap, so signing needs no passphrase."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    if Role.ADMIN not in roles_in(actor, organisation):
        raise PermissionDenied("Only org admins import signing keys.")
    try:
        certificate = x509.load_pem_x509_certificate(cert_pem.encode())
    except ValueError as exc:
        raise ValidationFailed("The certificate is not valid PEM.", {"certificate": [str(exc)[:200]]}) from None
    try:
        key = serialization.load_pem_private_key(key_pem.encode(), password=key_password.encode() or None)
    except TypeError:
        raise ValidationFailed(
            "The key is encrypted: give its passphrase."
            if not key_password
            else "The key is not encrypted: leave the passphrase empty.",
            {"key_password": ["passphrase"]},
        ) from None
    except ValueError as exc:
        raise ValidationFailed(
            "The key is not valid PEM, or the passphrase is wrong.", {"key": [str(exc)[:200]]}
        ) from None
    errors: dict[str, list[str]] = {}
    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(serialization.Encoding.DER, fmt) != certificate.public_key().public_bytes(
        serialization.Encoding.DER, fmt
    ):
        errors["key"] = ["The key does not belong to the certificate."]
    if not isinstance(key, rsa.RSAPrivateKey):
        # An elliptic-curve signature makes pyHanko declare PDF 2.0, which a PDF/A-3 file may not be.
        errors["key"] = ["Reports are PDF/A-3 and must be signed with an RSA key."]
    now = dt.datetime.now(dt.UTC)
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        errors["certificate"] = [
            f"The certificate is valid from {certificate.not_valid_before_utc:%d %b %Y} to "
            f"{certificate.not_valid_after_utc:%d %b %Y}, not now."
        ]
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
        if not (usage.digital_signature or usage.content_commitment):
            errors["certificate"] = ["The certificate's key usage does not allow signing documents."]
    except x509.ExtensionNotFound:
        pass
    if errors:
        raise ValidationFailed("The signing identity was not imported.", errors)
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM).decode()  # the leaf alone, re-encoded
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return _store_identity(actor, organisation, cert_pem, key_pem)


# --------------------------------------------------------------------------------------------------------- issue


def _checked_period(kind: str, period: tuple[date, date] | None) -> tuple[date | None, date | None]:
    if kind not in PERIOD_KINDS:
        if period is not None:
            raise ValidationFailed(f"A {Report.Kind(kind).label} is not about a period.", {"period": ["not allowed"]})
        return None, None
    if period is None or period[0] is None or period[1] is None:
        raise ValidationFailed(
            f"A {Report.Kind(kind).label} covers a period: give its first and last day.", {"period": ["required"]}
        )
    start, end = period
    if start > end:
        raise ValidationFailed("The period ends before it starts.", {"period": ["from must not be after to"]})
    if end > timezone.localdate():
        raise ValidationFailed("The period cannot end in the future.", {"period": ["to is after today"]})
    return start, end


def report_request(*, actor: User, kind: str, subject: Any, period: tuple[date, date] | None = None) -> Report:
    """Queue a new version of a report about ``subject`` (and, for kinds about a period, ``period``: first and last
    day, inclusive)."""
    from apps.jobs.services import job_create

    if kind not in SUBJECTS:
        raise ValidationFailed("Unknown report kind.", {"kind": [f"one of {', '.join(SUBJECTS)}"]})
    label, _builder = SUBJECTS[kind]
    if subject._meta.label_lower != label:
        from django.apps import apps

        about = apps.get_model(label)._meta.verbose_name
        raise ValidationFailed(f"A {Report.Kind(kind).label} is about a {about}.", {"subject": [str(about)]})
    period_start, period_end = _checked_period(kind, period)
    organisation = subject_organisation(subject)
    roles = roles_in(actor, organisation)
    if not roles:
        raise NotFound()
    if not roles & ISSUER_ROLES:
        raise PermissionDenied("Auditors read and verify reports; members of the organisation issue them.")
    if kind in RIGHTS_KINDS:
        from apps.rights.permissions import officer_roles

        if not roles & officer_roles(organisation):
            raise PermissionDenied("Only the privacy officer issues the reports of data-subject requests.")
    with transaction.atomic():
        Organisation.objects.select_for_update().get(pk=organisation.pk)  # serialise numbering per organisation
        version = (
            Report.objects.filter(
                kind=kind,
                subject_type=label,
                subject_id=str(subject.pk),
                period_start=period_start,
                period_end=period_end,
            ).aggregate(v=Max("version"))["v"]
            or 0
        ) + 1
        sequence = Report.objects.filter(organisation=organisation).count() + 1
        report = Report.objects.create(
            organisation=organisation,
            kind=kind,
            subject_type=label,
            subject_id=str(subject.pk),
            subject_label=(
                f"{subject}, {period_start:%d %b %Y} to {period_end:%d %b %Y}" if period_start else str(subject)
            )[:300],
            period_start=period_start,
            period_end=period_end,
            version=version,
            reference=f"{organisation.slug.upper()}-R{sequence:05d}",
            usecase=_subject_usecase(subject, label),
            model_version=subject if label == "training.modelversion" else getattr(subject, "model_version", None),
            created_by=actor,
        )
        report.job = job_create(
            actor=actor, organisation=organisation, kind="report", spec={"report_id": str(report.id)}, target=report
        )
        report.save(update_fields=["job"])
        audit_record(
            actor=actor,
            organisation=organisation,
            action="report.request",
            target=report,
            after={
                "kind": kind,
                "subject": str(subject.pk),
                "version": version,
                "job": str(report.job.id),
                **(
                    {"period": [period_start.isoformat(), period_end.isoformat()]}
                    if period_start and period_end
                    else {}
                ),
            },
        )
    return report


def report_html(report: Report, content: builders.Content, identity: SigningIdentity) -> str:
    return render_to_string(
        "reports/document.html",
        {
            "title": content.title,
            "subject_label": content.subject_label,
            "sections": content.sections,
            "organisation": report.organisation,
            "reference": report.reference,
            "version": report.version,
            "kind_label": report.get_kind_display(),
            "generated_at": timezone.now(),
            "issued_by": report.created_by.display_name if report.created_by else "Attest",
            "signer_subject": identity.subject,
            "signer_fingerprint": identity.fingerprint,
        },
    )


def report_render(*, report_id: Any, progress: Any = None) -> dict[str, Any]:
    """The report job: gather, lay out (PDF/A-3b with evidence.json), sign, store, supersede, audit."""
    report = Report.objects.select_related("organisation", "created_by").get(id=report_id)
    _label, builder = SUBJECTS[report.kind]
    subject = subject_object(report.kind, report.subject_id)
    if progress:
        progress(0.1, "Gathering the figures")
    content = builder(subject, report.period_start, report.period_end) if report.period_start else builder(subject)
    identity = signing_identity(report.organisation)
    evidence = {
        "report": {
            "reference": report.reference,
            "kind": report.kind,
            "version": report.version,
            "organisation": str(report.organisation_id),
            "subject_type": report.subject_type,
            "subject_id": report.subject_id,
            **(
                {"period": {"from": report.period_start.isoformat(), "to": report.period_end.isoformat()}}
                if report.period_start and report.period_end
                else {}
            ),
            "issued_at": timezone.now().isoformat(),
            "signer_fingerprint": identity.fingerprint,
        },
        **content.evidence,
    }
    if progress:
        progress(0.3, "Laying out the pages")
    html = report_html(report, content, identity)
    pdf, pages, refused = render_pdf(html, evidence=evidence)
    if progress:
        progress(0.8, "Signing")
    signed = sign_pdf(
        pdf,
        cert_pem=identity.certificate_pem,
        key_pem=unwrap_secret(identity.wrapped_key).decode(),
        reason=f"{report.get_kind_display()} {report.reference} v{report.version} issued by Attest",
        location=report.organisation.name,
        name=report.organisation.name,
    )
    digest = hashlib.sha256(signed).hexdigest()
    relative = report_relative_path(report)
    destination = report_storage_root() / relative
    destination.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=destination.parent, delete=False) as handle:
        handle.write(signed)
        temporary = handle.name
    try:
        with transaction.atomic():
            os.replace(temporary, destination)
            report.sha256, report.size_bytes, report.pages = digest, len(signed), pages
            report.storage_path, report.evidence, report.signer = str(relative), evidence, identity
            report.status = Report.Status.READY
            report.save()
            older = Report.objects.filter(
                kind=report.kind,
                subject_type=report.subject_type,
                subject_id=report.subject_id,
                period_start=report.period_start,
                period_end=report.period_end,
                version__lt=report.version,
                superseded_by__isnull=True,
            ).exclude(pk=report.pk)
            superseded = [str(r.reference) for r in older]
            older.update(superseded_by=report)
            audit_record(
                actor=report.created_by,
                organisation=report.organisation,
                action="report.issue",
                target=report,
                after={
                    "sha256": digest,
                    "pages": pages,
                    "version": report.version,
                    "signer": identity.fingerprint,
                    "signer_subject": identity.subject,
                    "signer_self_signed": identity.self_signed,
                    "supersedes": superseded,
                    "refused_urls": len(refused),
                },
            )
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return {"report_id": str(report.id), "sha256": digest, "pages": pages}


def report_file(report: Report) -> bytes:
    if report.status != Report.Status.READY:
        raise AttestError("invalid_state", "The report is not ready.")
    return (report_storage_root() / report.storage_path).read_bytes()


# -------------------------------------------------------------------------------------------------------- verify


def report_verify(data: bytes) -> dict[str, Any]:
    """Is this a report this portal issued, unchanged, validly signed, and the newest version? (A read: no event.)"""
    digest = hashlib.sha256(data).hexdigest()
    issued = Report.objects.select_related("organisation", "signer", "superseded_by").filter(sha256=digest).first()
    claimed = embedded_evidence(data)
    claimed_reference = ((claimed or {}).get("report") or {}).get("reference")
    known = (
        issued
        or Report.objects.select_related("organisation", "signer", "superseded_by")
        .filter(reference=claimed_reference)
        .first()
    )
    trusted = []
    if known is not None:
        trusted = list(
            SigningIdentity.objects.filter(organisation=known.organisation).values_list("certificate_pem", flat=True)
        )
    signature = (
        pdf_signature_status(data, trusted)
        if data[:5] == b"%PDF-"
        else {"present": False, "valid": False, "detail": "not a PDF"}
    )
    newest = None
    if known is not None:
        newest = (
            Report.objects.filter(
                kind=known.kind,
                subject_type=known.subject_type,
                subject_id=known.subject_id,
                period_start=known.period_start,
                period_end=known.period_end,
                status=Report.Status.READY,
            )
            .order_by("-version")
            .first()
        )
    authentic = bool(issued and signature.get("valid"))
    from apps.rights.flags import supersession_of

    # A data-subject request (an erasure, a rectification) that changed the data this report embeds supersedes it.
    by_request = supersession_of(known) if known is not None else None
    if authentic:
        verdict = "Authentic: issued by this portal, unchanged, and validly signed."
    elif known is not None:
        verdict = (
            f"Not authentic: it claims to be {known.reference} but differs from the file this portal issued "
            "(it was changed after signing)."
        )
    elif data[:5] != b"%PDF-":
        verdict = "Not a PDF."
    else:
        verdict = "Unknown: this portal did not issue this file."
    return {
        "sha256": digest,
        "authentic": authentic,
        "issued": issued is not None,
        "unchanged": issued is not None,
        "verdict": verdict,
        "report": known,
        "signature": signature,
        "superseded_by": newest if (known is not None and newest is not None and newest.pk != known.pk) else None,
        "superseded_by_request": (
            {"reference": by_request.request.reference, "reason": by_request.reason} if by_request else None
        ),
    }
