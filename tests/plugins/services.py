"""Real services for the test suite, started on loopback in temporary folders.

Loaded with ``-p tests.plugins.services`` (see pyproject.toml). Before pytest-django configures Django, this starts a
throw-away PostgreSQL cluster and points ``DATABASE_URL`` at it, so the whole suite runs against PostgreSQL.

The cluster has the production's two roles: ``attest`` owns the tables (``DATABASE_MIGRATE_URL``: it creates the test
database and migrates it) and the suite runs as ``attest_app`` (``DATABASE_URL``), which may not truncate, alter or
disable triggers, nor change or delete audit rows (apps/audit/dbroles.py). ``django_db_setup`` runs as the owner
(``pytest_fixture_setup`` below), and test flushes switch to it through the ``flush`` command.

- ``ATTEST_TEST_DB=sqlite`` runs the suite on SQLite instead (fast local loops); PostgreSQL-only tests, marked
  ``@pytest.mark.postgres``, then skip through ``require_service``.
- Under ``CI=true`` a missing service is an error, never a skip.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def find_postgres_bin() -> Path | None:
    candidates = []
    if shutil.which("pg_ctl"):
        candidates.append(Path(shutil.which("pg_ctl")).resolve().parent)  # type: ignore[arg-type]
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for folder in candidates:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    return None


APP_ROLE = "attest_app"


def start_postgres() -> tuple[str, str]:
    """Start a private PostgreSQL on a free loopback port with an owner and an application role; return the
    application role's DATABASE_URL and the owner's DATABASE_MIGRATE_URL. Stopped at exit."""
    bin_dir = find_postgres_bin()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL binaries (initdb, pg_ctl) not found; run `make test` as root to install them")
    root = Path(tempfile.mkdtemp(prefix="attest-pg-"))
    data = root / "data"
    env = dict(os.environ)
    run_as: list[str] = []
    if os.geteuid() == 0:
        # PostgreSQL refuses to run as root: hand the folder to the 'postgres' system user (or 'nobody').
        import pwd

        account = "postgres"
        try:
            pwd.getpwnam(account)
        except KeyError:
            account = "nobody"
        shutil.chown(root, user=account)
        root.chmod(0o700)
        run_as = ["runuser", "-u", account, "--"]
    subprocess.run(
        [*run_as, str(bin_dir / "initdb"), "-D", str(data), "-U", "attest", "--auth=trust", "-E", "UTF8", "--no-sync"],
        check=True,
        capture_output=True,
        env=env,
    )
    port = free_port()
    options = (
        f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off -c synchronous_commit=off "
        f"-c full_page_writes=off -c max_connections=200"
    )
    subprocess.run(
        [*run_as, str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start"],
        check=True,
        capture_output=True,
        env=env,
    )

    def stop() -> None:
        subprocess.run(
            [*run_as, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], capture_output=True
        )
        shutil.rmtree(root, ignore_errors=True)

    atexit.register(stop)
    # A plain LOGIN role: no superuser, no CREATEDB, not a member of the owner; the grants come with the migrations.
    subprocess.run(
        [
            str(bin_dir / "psql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            "attest",
            "-d",
            "postgres",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            f"CREATE ROLE {APP_ROLE} LOGIN",
        ],
        check=True,
        capture_output=True,
        env=env,
    )
    return f"postgres://{APP_ROLE}@127.0.0.1:{port}/attest", f"postgres://attest@127.0.0.1:{port}/attest"


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(early_config, parser, args):  # type: ignore[no-untyped-def]
    # Runs before pytest-django imports the settings, so DATABASE_URL is in place when Django reads it.
    os.environ.setdefault("ATTEST_TESTING", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    is_xdist_worker = "PYTEST_XDIST_WORKER" in os.environ
    wanted = os.environ.get("ATTEST_TEST_DB", "postgres")
    if not is_xdist_worker and wanted == "postgres" and "DATABASE_URL" not in os.environ:
        try:
            os.environ["DATABASE_URL"], os.environ["DATABASE_MIGRATE_URL"] = start_postgres()
        except (RuntimeError, subprocess.CalledProcessError, OSError) as exc:
            if IN_CI:
                raise pytest.UsageError(f"CI needs PostgreSQL for the test suite and it did not start: {exc}")
            print(f"attest: PostgreSQL not available ({exc}); running on SQLite")
    return (yield)


def require_service(name: str, reason: str) -> None:
    """Skip a test whose service is missing, or fail under CI where nothing may be skipped."""
    if IN_CI:
        pytest.fail(f"{name} is required under CI: {reason}")
    pytest.skip(f"{name} not available: {reason}")


def require_postgresql(reason: str = "this test needs PostgreSQL") -> None:
    """``require_service`` for the database: a test that needs PostgreSQL's own behaviour (row locks, triggers)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        require_service("PostgreSQL", reason)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):  # type: ignore[no-untyped-def]
    # ``@pytest.mark.postgres`` is the one way a test says it needs PostgreSQL: on another database it skips locally
    # and fails under CI, like every other missing service.
    if item.get_closest_marker("postgres") is not None:
        require_postgresql(f"{item.nodeid} is marked postgres")


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef, request):  # type: ignore[no-untyped-def]
    # pytest-django's session fixture creates, migrates and at the end drops the test database: the owner's work. The
    # tests in between run as the application role, like the portal.
    if fixturedef.argname != "django_db_setup" or not os.environ.get("DATABASE_MIGRATE_URL"):
        return (yield)
    from django.db import connections

    from apps.audit.dbroles import switch_to_owner

    restores = [switch_to_owner(alias) for alias in connections]
    try:
        result = yield
    finally:
        for restore in restores:
            restore()
    # Finalizers run last-in first-out: this one switches back to the owner before the fixture drops the database.
    request.addfinalizer(lambda: [switch_to_owner(alias) for alias in connections])
    return result
