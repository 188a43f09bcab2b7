"""manage.py report_verify FILE: the verify page's check from the command line (exit status 1 when not authentic)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from apps.reports.services import report_verify


class Command(BaseCommand):
    help = "Check whether a PDF is a report this portal issued, unchanged, validly signed and current."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("file", type=Path)

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"{path} is not a file.")
        result = report_verify(path.read_bytes())
        report = result["report"]
        self.stdout.write(result["verdict"])
        self.stdout.write(f"  sha256:    {result['sha256']}")
        self.stdout.write(f"  issued:    {'yes' if result['issued'] else 'no'}")
        self.stdout.write(f"  signature: {result['signature'].get('detail')}")
        if report is not None:
            self.stdout.write(f"  report:    {report.reference} version {report.version} ({report.get_kind_display()})")
        if result["superseded_by"] is not None:
            newer = result["superseded_by"]
            self.stdout.write(f"  superseded by {newer.reference} version {newer.version}")
        if not result["authentic"]:
            raise CommandError("not authentic")
