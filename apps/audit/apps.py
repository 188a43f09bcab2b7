from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AuditConfig(AppConfig):
    name = "apps.audit"
    label = "audit"

    def ready(self) -> None:
        from apps.audit.dbroles import grant_after_migrate

        # Once per migrate (sent for this app after every app's migrations ran), and after each test flush.
        post_migrate.connect(grant_after_migrate, sender=self, dispatch_uid="audit-grant-app-role")
