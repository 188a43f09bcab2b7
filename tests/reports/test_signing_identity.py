"""An org admin imports a certificate and key issued by the organisation's own certificate authority (a CA made here,
with the cryptography package), on the page or through the API; the next report is signed with it and verifies."""

import datetime as dt
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from apps.audit.models import AuditEvent
from apps.reports.models import SigningIdentity
from apps.reports.services import report_verify, signing_identity
from tests.conftest import PASSWORD
from tests.reports.conftest import issue

pytestmark = pytest.mark.django_db


def pem(key):
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def cert_pem(certificate):
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def name(common_name):
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Ministry of Examples"),
        ]
    )


@pytest.fixture(scope="module")
def authority():
    """The organisation's own certificate authority: a self-signed CA certificate that may sign others."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name("Ministry of Examples Root CA"))
        .issuer_name(name("Ministry of Examples Root CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return key, certificate


def issued_by(authority, key, common_name="Ministry of Examples report signing", days=365):
    ca_key, ca_certificate = authority
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name(common_name))
        .issuer_name(ca_certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=30))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )


@pytest.fixture(scope="module")
def signing_pair(authority):
    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    return key, issued_by(authority, key)


def test_an_admin_imports_a_ca_issued_certificate_on_the_page_and_the_next_report_is_signed_with_it(
    client, org, admin_user, signing_pair, settings, tmp_path
):
    settings.STORAGE_ROOT = tmp_path
    key, certificate = signing_pair
    client.login(username=admin_user.username, password=PASSWORD)
    page = client.get("/reports/signing/")
    assert b'name="certificate"' in page.content and b'name="key"' in page.content
    response = client.post(
        "/reports/signing/",
        {
            "certificate": SimpleUploadedFile("signing.crt", cert_pem(certificate).encode()),
            "key": SimpleUploadedFile("signing.key", pem(key).encode()),
        },
    )
    assert response.status_code == 302
    current = signing_identity(org)
    assert current.self_signed is False and "report signing" in current.subject
    assert AuditEvent.objects.filter(action="signing_identity.create", object_id=str(current.id)).count() == 1
    assert "report signing" in client.get("/reports/signing/").content.decode()

    report = issue(admin_user, "art30", org)
    assert report.signer == current
    data = (tmp_path / report.storage_path).read_bytes()
    result = report_verify(data)
    assert result["authentic"] is True
    assert result["signature"]["trusted"] is True and "report signing" in result["signature"]["signer"]
    checked = tmp_path / "signed.pdf"
    checked.write_bytes(data)
    pdfsig = subprocess.run(["pdfsig", str(checked)], capture_output=True, text=True).stdout
    assert "Signature is Valid" in pdfsig and "Ministry of Examples report signing" in pdfsig


def test_the_page_refuses_a_key_of_another_certificate_and_members_who_are_not_admins(
    client, org, admin_user, owner, authority, signing_pair
):
    key, certificate = signing_pair
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    client.login(username=admin_user.username, password=PASSWORD)
    response = client.post(
        "/reports/signing/",
        {
            "certificate": SimpleUploadedFile("signing.crt", cert_pem(certificate).encode()),
            "key": SimpleUploadedFile("other.key", pem(other_key).encode()),
        },
    )
    assert response.status_code == 400 and b"does not belong to the certificate" in response.content
    assert not SigningIdentity.objects.filter(organisation=org).exists()

    client.login(username=owner.username, password=PASSWORD)
    page = client.get("/reports/signing/")
    assert page.status_code == 200 and b'name="key"' not in page.content  # reads which certificate signs, no form
    response = client.post(
        "/reports/signing/",
        {
            "certificate": SimpleUploadedFile("signing.crt", cert_pem(certificate).encode()),
            "key": SimpleUploadedFile("signing.key", pem(key).encode()),
        },
    )
    assert response.status_code == 400 and b"Only org admins" in response.content
    assert not SigningIdentity.objects.filter(organisation=org).exists()


def test_the_api_imports_an_encrypted_key_and_refuses_what_cannot_sign_a_pdfa_report(
    org, admin_user, authority, signing_pair
):
    key, certificate = signing_pair
    api = APIClient()
    api.force_authenticate(admin_user)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"correct horse"),
    ).decode()
    body = {"organisation": str(org.id), "certificate_pem": cert_pem(certificate), "key_pem": encrypted}
    refused = api.post("/api/v1/signing-identities/", body, format="json")
    assert refused.status_code == 400 and "passphrase" in refused.json()["error"]["message"]
    created = api.post("/api/v1/signing-identities/", {**body, "key_password": "correct horse"}, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["self_signed"] is False and created.json()["active"] is True
    assert "key_pem" not in created.json()
    listed = api.get("/api/v1/signing-identities/").json()
    assert [item["fingerprint"] for item in listed["results"] if item["active"]] == [created.json()["fingerprint"]]

    # An elliptic-curve key would make the signed file PDF 2.0, which PDF/A-3 forbids; an expired certificate
    # cannot sign.
    ec_key = ec.generate_private_key(ec.SECP256R1())
    refused = api.post(
        "/api/v1/signing-identities/",
        {
            "organisation": str(org.id),
            "certificate_pem": cert_pem(issued_by(authority, ec_key)),
            "key_pem": pem(ec_key),
        },
        format="json",
    )
    assert refused.status_code == 400 and "RSA" in str(refused.json()["error"]["details"])
    expired = issued_by(authority, key, days=-1)
    refused = api.post(
        "/api/v1/signing-identities/",
        {"organisation": str(org.id), "certificate_pem": cert_pem(expired), "key_pem": pem(key)},
        format="json",
    )
    assert refused.status_code == 400 and "not now" in str(refused.json()["error"]["details"])
    assert (
        SigningIdentity.objects.filter(organisation=org, retired_at__isnull=True).get().fingerprint
        == (created.json()["fingerprint"])
    )
