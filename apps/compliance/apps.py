from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    name = "apps.compliance"
    label = "compliance"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from apps.compliance.loader import load_after_migrate

        # The catalogues are data the portal cannot work without (like content types): every migrate, including the
        # test database's creation and the demo's, brings them up to date. The load is idempotent.
        post_migrate.connect(load_after_migrate, sender=self)
