"""``manage.py probe ready|live``: the readiness checks of ``/readyz`` for processes with no HTTP server (workers,
beat), for docker-compose health checks. Exits 1 naming the failed checks."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.core.health import readiness


class Command(BaseCommand):
    help = "Exit 0 when the process's dependencies answer (ready) or at once (live); 1 naming what failed."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("which", choices=["ready", "live"])

    def handle(self, *args: Any, which: str, **options: Any) -> None:
        if which == "live":
            self.stdout.write("ok")
            return
        failed = [name for name, outcome in readiness().items() if outcome == "failed"]
        if failed:
            raise CommandError("not ready: " + ", ".join(failed))
        self.stdout.write("ok")
