"""Shared fixtures: the personas every test can use.

An organisation ``org`` with one user per role, an outsider who belongs to ``other_org`` only, an external auditor
granted read access to ``org``, and anonymous access (no user).
"""

from __future__ import annotations

import pytest

from apps.accounts.models import AuditorGrant, Membership, Organisation, Role, User

pytest_plugins = ["tests.fixtures.celery", "tests.fixtures.browser"]

PASSWORD = "correct-horse-battery-staple-42"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # PBKDF2's deliberate slowness is for attackers, not for a suite that creates hundreds of users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def make_user(username: str, *, organisation: Organisation | None = None, roles: tuple[str, ...] = ()) -> User:
    user = User.objects.create_user(
        username=username,
        email=f"{username}@example.org",
        password=PASSWORD,
        full_name=username.replace("_", " ").title(),
    )
    for role in roles:
        Membership.objects.create(user=user, organisation=organisation, role=role)
    return user


@pytest.fixture
def org(db) -> Organisation:
    return Organisation.objects.create(
        name="Ministry of Examples",
        slug="ministry",
        country="GB",
        processing_purposes=["Benefit fraud triage", "Service improvement"],
    )


@pytest.fixture
def other_org(db) -> Organisation:
    return Organisation.objects.create(name="Other Agency", slug="other", country="FR")


@pytest.fixture
def admin_user(org) -> User:
    return make_user("ada_admin", organisation=org, roles=(Role.ADMIN,))


@pytest.fixture
def owner(org) -> User:
    return make_user("oscar_owner", organisation=org, roles=(Role.OWNER,))


@pytest.fixture
def steward(org) -> User:
    return make_user("stella_steward", organisation=org, roles=(Role.STEWARD,))


@pytest.fixture
def board_member(org) -> User:
    return make_user("bea_board", organisation=org, roles=(Role.BOARD,))


@pytest.fixture
def auditor(org) -> User:
    return make_user("audrey_auditor", organisation=org, roles=(Role.AUDITOR,))


@pytest.fixture
def external_auditor(org) -> User:
    user = make_user("rex_regulator")
    AuditorGrant.objects.create(user=user, organisation=org, reason="Supervisory authority")
    return user


@pytest.fixture
def outsider(other_org) -> User:
    return make_user("otto_outsider", organisation=other_org, roles=(Role.ADMIN, Role.OWNER, Role.STEWARD, Role.BOARD))


def run_inline(job_or_id, *, expect: str | None = "succeeded"):
    """Run a queued job in this process through the real lifecycle (claim, run, outcome, failure hook), exactly as a
    worker would; return the ended job. ``expect`` checks its final status (None: any)."""
    from apps.jobs.models import Job
    from apps.jobs.runner import job_run_inline

    job = job_or_id if isinstance(job_or_id, Job) else Job.objects.get(pk=job_or_id)
    ended = job_run_inline(job)
    if expect is not None:
        assert ended.status == expect, f"{ended.kind} job {ended.status}: {ended.error}"
    return ended
