"""Fixtures shared by the deployments tests (add yours here with small edits)."""

from tests.deployments.loop import deployed  # noqa: F401 - a deployment made by the real services (engineer B)
from tests.deployments.pagekit import approved_model  # noqa: F401 - an approved model, by name
from tests.ethics.conftest import board2, board3, trained_model  # noqa: F401 - shared fixtures
from tests.training.conftest import approved_usecase, prepared_version, private_storage  # noqa: F401
