import pytest

from apps.reports.services import report_request
from tests.conftest import run_inline
from tests.ethics.conftest import board2, board3, trained_model  # noqa: F401 - shared fixtures
from tests.training.conftest import approved_usecase, prepared_version, private_storage  # noqa: F401


def issue(actor, kind, subject):
    """Request a report and run its job in this process, exactly as the worker would."""
    report = report_request(actor=actor, kind=kind, subject=subject)
    run_inline(report.job_id)
    report.refresh_from_db()
    return report


@pytest.fixture
def read_report(settings):
    def read(report):
        from pathlib import Path

        return (Path(settings.STORAGE_ROOT) / report.storage_path).read_bytes()

    return read


@pytest.fixture(autouse=True)
def poppler_tools():
    """poppler's pdfsig, pdftotext and pdftoppm are the independent readers these tests check reports with."""
    import shutil

    from tests.plugins.services import require_service

    if not all(shutil.which(tool) for tool in ("pdfsig", "pdftotext", "pdftoppm")):
        require_service("poppler-utils", "install Debian's poppler-utils (make test does it as root)")
