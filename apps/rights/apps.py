from django.apps import AppConfig


class RightsConfig(AppConfig):
    name = "apps.rights"
    label = "rights"
    verbose_name = "Data-subject rights"
