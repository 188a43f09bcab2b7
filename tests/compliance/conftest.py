import pytest

from apps.usecases.services import usecase_create
from tests.usecases.factories import usecase_data


@pytest.fixture
def usecase(org, owner):
    """A high-risk (Annex III area 5) system processing personal data, with a DPIA; the organisation is provider and
    deployer (the default role)."""
    return usecase_create(actor=owner, organisation=org, data=usecase_data())


@pytest.fixture
def make_usecase(org, owner):
    def make(**overrides):
        return usecase_create(actor=owner, organisation=org, data=usecase_data(**overrides))

    return make
