from django.apps import AppConfig


class EthicsConfig(AppConfig):
    name = "apps.ethics"
    label = "ethics"
