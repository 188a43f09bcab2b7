from django.apps import AppConfig


class UsecasesConfig(AppConfig):
    name = "apps.usecases"
    label = "usecases"
