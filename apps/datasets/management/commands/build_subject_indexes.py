"""Backfill: give every live version with a subject key its encrypted subject index (versions stored before the
index existed, or whose subject key changed since)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from apps.datasets.models import DatasetVersion
from apps.datasets.subjects import NOT_LIVE, subject_index_build, subject_index_current


class Command(BaseCommand):
    help = "Build the missing subject indexes of live dataset versions."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--rebuild", action="store_true", help="Rebuild every index, even current ones.")

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        built = 0
        versions = (
            DatasetVersion.objects.exclude(status__in=NOT_LIVE)
            .exclude(wrapped_key="")
            .exclude(subject_key_column="")
            .select_related("dataset__organisation")
        )
        for version in versions.iterator():
            if options["rebuild"] or not subject_index_current(version):
                subject_index_build(version)
                built += 1
                self.stdout.write(f"{version}: {version.subject_index_rows} rows indexed")
        self.stdout.write(f"Built {built} subject index(es).")
