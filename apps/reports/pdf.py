"""Rendering, embedding, signing and checking report PDFs.

Rendering is WeasyPrint on HTML made by Django templates (autoescaped: user text is never markup) with a URL fetcher
that serves only the portal's own static files. Anything else (file://, http://, data: for non-images, a redirect)
is refused before a socket or a file is opened, so no user field can make the renderer read a local file or reach a
network address. The PDF is PDF/A-3b with ``evidence.json`` attached, then signed (PAdES baseline B) with the
organisation's key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import logging
from functools import cache
from pathlib import Path
from typing import Any

from django.conf import settings

STATIC_SCHEME = "attest-static:"
# WeasyPrint logs every layout step at INFO; a worker's log wants problems only.
logging.getLogger("weasyprint.progress").setLevel(logging.WARNING)
EVIDENCE_NAME = "evidence.json"


@cache
def _fetcher_class() -> type:
    # WeasyPrint (and Pango behind it) loads only when something renders: the web process imports this module for
    # verification and signing identities without paying for a layout engine.
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    class StaticOnlyFetcher(URLFetcher):
        """Serves ``attest-static:<path>`` from the portal's static folder, and nothing else."""

        def __init__(self) -> None:
            super().__init__(allowed_protocols=(), allow_redirects=False)
            self.refused: list[str] = []

        def fetch(self, url: str, headers: Any = None) -> URLFetcherResponse:
            if url.startswith(STATIC_SCHEME):
                root = (Path(settings.BASE_DIR) / "static").resolve()
                path = (root / url[len(STATIC_SCHEME) :].lstrip("/")).resolve()
                if path.is_relative_to(root) and path.is_file():
                    mime = {".css": "text/css", ".svg": "image/svg+xml", ".png": "image/png"}.get(
                        path.suffix, "application/octet-stream"
                    )
                    return URLFetcherResponse(url, body=path.read_bytes(), headers={"Content-Type": mime})
            self.refused.append(url)
            raise ValueError(f"Reports load only the portal's own static files; refused {url[:80]!r}")

    return StaticOnlyFetcher


def static_only_fetcher() -> Any:
    """A WeasyPrint URL fetcher that serves ``attest-static:<path>`` from the portal's static folder, and nothing else."""
    return _fetcher_class()()


def render_pdf(html: str, *, evidence: dict[str, Any]) -> tuple[bytes, int, list[str]]:
    """HTML to PDF/A-3b with the evidence attached. Returns the bytes, the page count and the refused URLs."""
    from weasyprint import CSS, HTML, Attachment

    fetcher = static_only_fetcher()
    stylesheet = CSS(
        string=(Path(settings.BASE_DIR) / "static" / "css" / "report.css").read_text(),
        url_fetcher=fetcher,
        base_url=STATIC_SCHEME,
    )
    document = HTML(string=html, base_url=STATIC_SCHEME, url_fetcher=fetcher).render(stylesheets=[stylesheet])
    evidence_bytes = json.dumps(evidence, sort_keys=True, indent=1, default=str).encode()
    attachment = Attachment(
        string=evidence_bytes,
        url_fetcher=fetcher,
        name=EVIDENCE_NAME,
        description="Every figure, identifier and hash in this report (machine-readable)",
        relationship="Data",
    )
    pdf = document.write_pdf(
        pdf_variant="pdf/a-3b",
        # A structure tree (headings, paragraphs, tables, lists) for screen readers. Level A conformance would also
        # claim things WeasyPrint does not check (alternative text for every figure), so the file stays PDF/A-3b.
        pdf_tags=True,
        attachments=[attachment],
        pdf_identifier=hashlib.sha256(evidence_bytes).digest()[:16],
        custom_metadata=True,
    )
    return pdf, len(document.pages), fetcher.refused


def _outside_event_loop(function: Any, *args: Any, **kwargs: Any) -> Any:
    """pyHanko drives its async core with asyncio.run(), which refuses to start inside a running loop (an ASGI
    server, or Playwright's sync API in tests): run it on a short-lived thread then."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return function(*args, **kwargs)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(function, *args, **kwargs).result()


# ----------------------------------------------------------------------------------------------------------- keys


def new_self_signed(common_name: str, organisation: str, days: int = 825) -> tuple[str, str, dt.datetime]:
    """A self-signed signing certificate and key (PEM) for the demo or a first installation."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    # RSA, not an elliptic curve: ECDSA on a named curve makes pyHanko declare PDF 2.0 (ISO 32002), which PDF/A-3
    # (PDF 1.7) does not allow.
    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64]),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation[:64]),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    not_after = now + dt.timedelta(days=days)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return cert_pem, key_pem, not_after


def certificate_facts(cert_pem: str) -> dict[str, Any]:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    certificate = x509.load_pem_x509_certificate(cert_pem.encode())
    der = certificate.public_bytes(serialization.Encoding.DER)
    return {
        "fingerprint": hashlib.sha256(der).hexdigest(),
        "subject": certificate.subject.rfc4514_string(),
        "self_signed": certificate.issuer == certificate.subject,
        "not_after": certificate.not_valid_after_utc,
    }


def sign_pdf(pdf: bytes, *, cert_pem: str, key_pem: str, reason: str, location: str, name: str) -> bytes:
    """A PAdES baseline-B signature over the whole file, as an incremental update (PDF/A allows it)."""
    from asn1crypto import keys as asn1_keys
    from asn1crypto import pem, x509
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    _, _, cert_der = pem.unarmor(cert_pem.encode())
    _, _, key_der = pem.unarmor(key_pem.encode())
    certificate = x509.Certificate.load(cert_der)
    signer = signers.SimpleSigner(
        signing_cert=certificate,
        signing_key=asn1_keys.PrivateKeyInfo.load(key_der),
        cert_registry=SimpleCertificateStore.from_certs([certificate]),
    )
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    meta = signers.PdfSignatureMetadata(
        field_name="AttestSignature",
        md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES,
        reason=reason,
        location=location,
        name=name,
    )
    output = _outside_event_loop(signers.sign_pdf, writer, meta, signer=signer)
    return output.getvalue()


def signature_status(pdf: bytes, trusted_cert_pems: list[str]) -> dict[str, Any]:
    """Validate the embedded signature against the organisation's certificates (the trust roots here)."""
    from asn1crypto import pem, x509
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    try:
        reader = PdfFileReader(io.BytesIO(pdf), strict=False)
        signatures = reader.embedded_signatures
    except Exception as exc:  # not a PDF, or damaged beyond reading
        return {"present": False, "valid": False, "detail": f"unreadable: {type(exc).__name__}"}
    if not signatures:
        return {"present": False, "valid": False, "detail": "no signature"}
    roots = [x509.Certificate.load(pem.unarmor(p.encode())[2]) for p in trusted_cert_pems]
    context = ValidationContext(trust_roots=roots, allow_fetching=False)
    try:
        status = _outside_event_loop(validate_pdf_signature, signatures[-1], context)
    except Exception as exc:
        return {"present": True, "valid": False, "detail": f"could not be validated: {type(exc).__name__}"}
    return {
        "present": True,
        "valid": bool(status.intact and status.valid),
        "intact": bool(status.intact),
        "trusted": bool(status.trusted),
        "covers_whole_file": status.coverage.name == "ENTIRE_FILE" if status.coverage else False,
        "signer": status.signing_cert.subject.human_friendly if status.signing_cert else "",
        "detail": status.summary(),
    }


def embedded_evidence(pdf: bytes) -> dict[str, Any] | None:
    """The evidence.json a report carries (read with pikepdf, independently of the renderer)."""
    import pikepdf

    try:
        with pikepdf.open(io.BytesIO(pdf)) as document:
            attached = document.attachments.get(EVIDENCE_NAME)
            if attached is None:
                return None
            return json.loads(attached.get_file().read_bytes())
    except Exception:
        return None
