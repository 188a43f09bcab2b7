"""The Annex IV report of the demo model: the whole job (gathering the figures, charts, layout, PDF/A-3b with the
evidence attached, signing, storing) against WeasyPrint rendering the same final HTML alone, in the same run.
Target: at most 1.3x. Seeds a throw-away demo organisation first (about half a minute)."""

from __future__ import annotations

import io
import os
import tempfile
import time

from _common import ROOT  # noqa: F401 - puts the project on sys.path


def main() -> None:
    folder = tempfile.mkdtemp(prefix="attest-bench-reports-")
    os.environ.update(
        {
            "ATTEST_DEMO": "1",
            "DATABASE_URL": f"sqlite:///{folder}/db.sqlite3",
            "ATTEST_STORAGE_ROOT": f"{folder}/storage",
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "LOG_LEVEL": "WARNING",
        }
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("seed_demo", stdout=io.StringIO())
    from pathlib import Path

    from django.conf import settings
    from weasyprint import CSS, HTML

    from apps.accounts.models import User
    from apps.reports import content
    from apps.reports.models import Report
    from apps.reports.pdf import static_only_fetcher
    from apps.reports.services import report_html, report_render, report_request, signing_identity
    from apps.training.models import ModelVersion

    model = ModelVersion.objects.get(organisation__slug="mods", non_private=False)
    owner = User.objects.get(username="owner")
    report = report_request(actor=owner, kind=Report.Kind.ANNEX_IV, subject=model)
    started = time.perf_counter()
    report_render(report_id=report.id)
    full = time.perf_counter() - started
    report.refresh_from_db()

    html = report_html(report, content.annex_iv(model), signing_identity(model.organisation))
    fetcher = static_only_fetcher()
    css = CSS(string=(Path(settings.BASE_DIR) / "static" / "css" / "report.css").read_text(), url_fetcher=fetcher)
    started = time.perf_counter()
    HTML(string=html, url_fetcher=fetcher).write_pdf(stylesheets=[css])
    layout = time.perf_counter() - started
    ratio = full / layout
    print(f"Annex IV of {model}: {report.pages} pages, {report.size_bytes / 1024:.0f} KiB")
    print(f"  Attest (gather, charts, layout, PDF/A-3b + evidence, sign, store): {full:.2f} s")
    print(f"  WeasyPrint alone on the same final HTML:                          {layout:.2f} s")
    print(f"  ratio {ratio:.2f}x (target <= 1.3x): {'met' if ratio <= 1.3 else 'NOT met'}")


if __name__ == "__main__":
    main()
