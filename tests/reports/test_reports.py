"""Reports: PDF/A-3b metadata and the embedded evidence read back independently (pikepdf, poppler), the signature
checked by poppler's pdfsig, versions and supersession, the verify check and command, and the renderer's sandbox
proved with a loopback canary server."""

import hashlib
import http.server
import io
import subprocess
import threading

import pikepdf
import pytest
from django.core.management import CommandError, call_command

from apps.audit.models import AuditEvent
from apps.core.errors import PermissionDenied
from apps.ethics.bindings import bound_evaluation
from apps.reports.models import Report
from apps.reports.pdf import render_pdf
from apps.reports.services import report_request, report_verify
from apps.usecases.models import UseCase
from tests.reports.conftest import issue

pytestmark = pytest.mark.django_db


def poppler(command, data, *args):
    completed = subprocess.run(
        [command, *args, "-"] if command != "pdfsig" else [command, "/dev/stdin"],
        input=data,
        capture_output=True,
        check=False,
    )
    return completed.stdout.decode(errors="replace") + completed.stderr.decode(errors="replace")


def pdftotext(data):
    return subprocess.run(["pdftotext", "-", "-"], input=data, capture_output=True, check=True).stdout.decode()


def test_a_model_card_is_pdfa3b_and_its_evidence_matches_the_database(owner, trained_model, read_report):
    report = issue(owner, "model_card", trained_model)
    data = read_report(report)
    assert report.status == "ready" and hashlib.sha256(data).hexdigest() == report.sha256
    with pikepdf.open(io.BytesIO(data)) as pdf:
        metadata = pdf.open_metadata()
        assert (metadata.get("pdfaid:part"), metadata.get("pdfaid:conformance")) == ("3", "B")
        assert pdf.pdf_version == "1.7"
        evidence = __import__("json").loads(pdf.attachments["evidence.json"].get_file().read_bytes())
        assert len(pdf.pages) == report.pages
    evaluation = bound_evaluation(trained_model)
    assert evidence["model_version"]["sha256"] == trained_model.sha256
    assert evidence["evaluation"]["results"] == evaluation.results
    assert evidence["training_run"]["privacy"]["epsilon"] == trained_model.training_run.privacy["epsilon"]
    assert evidence["report"]["reference"] == report.reference
    text = pdftotext(data)
    # The numbers a person reads are the evidence's numbers.
    assert f"{evaluation.results['overall']['accuracy']:.3f}" in text
    assert trained_model.sha256 in text.replace("\n", "")
    assert "Page 2 of" in text and report.reference in text  # running footer and header
    event = AuditEvent.objects.get(action="report.issue", object_id=str(report.id))
    assert event.after["sha256"] == report.sha256


def test_pdfsig_validates_the_signature_and_one_changed_byte_is_refused(owner, trained_model, read_report, tmp_path):
    report = issue(owner, "model_card", trained_model)
    data = read_report(report)
    good = tmp_path / "good.pdf"
    good.write_bytes(data)
    assert "Signature is Valid" in subprocess.run(["pdfsig", str(good)], capture_output=True, text=True).stdout
    assert report_verify(data)["authentic"] is True
    changed = bytearray(data)
    changed[len(changed) // 3] ^= 0x01
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(bytes(changed))
    assert "Signature is Valid" not in subprocess.run(["pdfsig", str(bad)], capture_output=True, text=True).stdout
    result = report_verify(bytes(changed))
    assert result["authentic"] is False and result["issued"] is False
    out = io.StringIO()
    call_command("report_verify", str(good), stdout=out)
    assert out.getvalue().startswith("Authentic")
    with pytest.raises(CommandError, match="not authentic"):
        call_command("report_verify", str(bad), stdout=io.StringIO())


def test_regenerating_makes_a_new_version_and_the_old_one_says_so(owner, trained_model, read_report):
    first = issue(owner, "model_card", trained_model)
    second = issue(owner, "model_card", trained_model)
    first.refresh_from_db()
    assert (first.version, second.version) == (1, 2)
    assert first.superseded_by == second and second.superseded_by is None
    result = report_verify(read_report(first))
    assert result["authentic"] is True and result["superseded_by"] == second
    assert read_report(first)[:5] == b"%PDF-"  # older versions stay downloadable


def test_auditors_read_but_do_not_issue(auditor, trained_model):
    with pytest.raises(PermissionDenied):
        report_request(actor=auditor, kind="model_card", subject=trained_model)


class Canary(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):  # noqa: N802 - the stdlib's name
        Canary.hits.append(self.path)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"canary")

    def log_message(self, *args):
        pass


@pytest.fixture
def canary():
    Canary.hits = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Canary)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_the_renderer_reads_no_local_file_and_contacts_no_address(canary):
    """Even raw markup (as if a template let user text through) cannot make the renderer fetch anything."""
    html = f"""<html><head><link rel="stylesheet" href="{canary}/style.css">
    <link rel="stylesheet" href="file:///etc/passwd"><style>@import url("{canary}/import.css");
    body {{ background: url("{canary}/bg.png"); }}</style></head><body><p>Report</p>
    <img src="{canary}/pixel.png"><img src="file:///etc/passwd"><object data="file:///etc/hostname"></object>
    <iframe src="{canary}/frame"></iframe><a href="{canary}/link">link</a></body></html>"""
    pdf, _pages, refused = render_pdf(html, evidence={"x": 1})
    assert Canary.hits == []
    assert any(url.startswith("file://") for url in refused) and any(canary in url for url in refused)
    text = pdftotext(pdf)
    assert "root:" not in text
    with open("/etc/hostname") as handle:
        hostname = handle.read().strip()
    assert not hostname or hostname not in text


def test_user_text_is_escaped_in_reports_and_nothing_is_fetched(owner, trained_model, read_report, canary):
    hostile = (
        f'<img src="{canary}/leak.png"><link rel="stylesheet" href="{canary}/a.css"> '
        "file:///etc/passwd <script>alert(1)</script>"
    )
    UseCase.objects.filter(pk=trained_model.usecase_id).update(description=hostile, security_measures=hostile)
    report = issue(owner, "dpia", UseCase.objects.get(pk=trained_model.usecase_id))
    data = read_report(report)
    assert Canary.hits == []
    text = pdftotext(data)
    assert '<img src="' in text  # shown as text, not interpreted
    assert "root:" not in text


@pytest.mark.parametrize("kind", ["model_card", "annex_iv", "datasheet", "dpia", "art30", "decision", "audit_extract"])
def test_every_kind_renders_readable_pages(
    kind, owner, admin_user, steward, trained_model, read_report, tmp_path, board_member
):
    from apps.ethics.models import ReviewRequest

    subjects = {
        "model_card": trained_model,
        "annex_iv": trained_model,
        "datasheet": trained_model.training_run.dataset_version,
        "dpia": trained_model.usecase,
        "art30": trained_model.organisation,
        "audit_extract": trained_model.organisation,
        "decision": ReviewRequest.objects.filter(status="decided").first(),
    }
    report = issue(steward if kind == "datasheet" else admin_user, kind, subjects[kind])
    data = read_report(report)
    assert report.status == Report.Status.READY and report.pages >= 2
    # pdftoppm renders the cover: it carries the title in dark text on white, not a blank or broken page.
    subprocess.run(
        ["pdftoppm", "-r", "60", "-png", "-f", "1", "-l", "1", "-", str(tmp_path / "page")], input=data, check=True
    )
    import numpy as np
    from PIL import Image

    pixels = np.asarray(Image.open(next(tmp_path.glob("page*.png"))).convert("L"))
    assert 0.0003 < (pixels < 160).mean() < 0.2  # some ink (a title, a table), not a blank or solid page
    text = pdftotext(data)
    assert Report.Kind(kind).label.split(" (")[0].split(":")[0][:20].lower() in text.lower()
    assert "Contents" in text
