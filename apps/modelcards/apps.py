from django.apps import AppConfig


class ModelCardsConfig(AppConfig):
    name = "apps.modelcards"
    label = "modelcards"
