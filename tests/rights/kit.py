"""The world the rights tests share: an organisation with a privacy officer, the training fixtures' prepared Adult
sample (applicant ids A-00001..A-02000, every one consenting) and a private model trained on it."""

from __future__ import annotations

import pandas as pd
import pytest

from apps.accounts.models import Role
from apps.consent.services import pseudonym_secret
from apps.datasets.tables import read_version_table
from tests.conftest import make_user, run_inline
from tests.training.conftest import ROWS, approved_usecase, prepared_version, private_storage, run_spec  # noqa: F401
from workers.engine.consent import pseudonymise

PERSON = "A-00042"  # the 42nd data row of data/adult.csv as the fixture uploads it


@pytest.fixture
def officer(org):
    return make_user("priya_privacy", organisation=org, roles=(Role.PRIVACY,))


@pytest.fixture
def trained(prepared_version, owner):  # noqa: F811 - shared fixture
    """A differentially private model trained on the prepared version (its run recorded its split)."""
    from apps.training.services import training_run_request

    run = training_run_request(actor=owner, version=prepared_version, spec=run_spec(target_epsilon=1.0))
    run_inline(run.job_id)
    run.refresh_from_db()
    return run.model_version


def pseudonym_of(org, identifier: str) -> str:
    return pseudonymise(identifier, pseudonym_secret(org))


def raw_frame() -> pd.DataFrame:
    """The upload as the fixture wrote it, read again from the CSV (independent of the portal's index)."""
    frame = pd.read_csv("data/adult.csv", nrows=ROWS)
    frame.insert(0, "applicant_id", [f"A-{i:05d}" for i in range(1, ROWS + 1)])
    return frame


def positions_in(version, column: str, value: str) -> list[int]:
    """Row positions of ``value`` in ``column`` of a stored version, by decrypting the whole table."""
    table = read_version_table(version)
    values = table.column(column).to_pylist()
    return [i for i, v in enumerate(values) if v == value]
