from tests.training.conftest import approved_usecase, prepared_version, private_storage  # noqa: F401 - shared fixtures
