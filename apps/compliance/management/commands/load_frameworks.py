"""Load (or bring up to date) the requirement catalogues and crosswalks shipped in apps/compliance/catalogues."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from apps.compliance.loader import load_frameworks
from apps.core.errors import ValidationFailed


class Command(BaseCommand):
    help = "Load the requirement catalogues and crosswalks; a changed file becomes a new framework version."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            summary = load_frameworks()
        except ValidationFailed as exc:
            raise CommandError(f"{exc.message} {exc.details}") from None
        for key, facts in summary["frameworks"].items():
            state = "new version" if facts["new"] else "unchanged"
            self.stdout.write(f"{key} {facts['version']}: {state}")
        for name, count in summary["crosswalks"].items():
            self.stdout.write(f"crosswalk {name}: {count} links")
