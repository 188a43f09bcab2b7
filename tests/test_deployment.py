"""The production shape: compose services and health checks, and Django's deployment checks."""

import base64
import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def test_compose_has_every_service_and_web_waits_for_healthy_dependencies():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "web", "worker", "worker-gpu", "beat"} <= set(services)
    for name in ("postgres", "redis", "web"):
        assert "healthcheck" in services[name], name
    assert services["web"]["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
        "migrate": {"condition": "service_completed_successfully"},  # migrations run as the owner, beforehand
    }
    assert "noeviction" in services["redis"]["command"]
    gpu = services["worker-gpu"]
    assert gpu["deploy"]["resources"]["reservations"]["devices"][0]["driver"] == "nvidia"
    assert "gpu" in gpu["command"] and "default" not in gpu["command"]


def test_manage_check_deploy_passes_with_production_settings_and_fails_without_a_secret():
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"ATTEST_DEMO", "ATTEST_TESTING", "DEBUG", "DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    }
    env.update(
        {
            "SECRET_KEY": base64.b64encode(os.urandom(48)).decode(),
            "ATTEST_MASTER_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
            "ALLOWED_HOSTS": "attest.example.org",
            "DATABASE_URL": "sqlite:////tmp/attest-deploy-check.sqlite3",
        }
    )
    ok = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    env.pop("SECRET_KEY")
    refused = subprocess.run([sys.executable, "manage.py", "check"], cwd=REPO, env=env, capture_output=True, text=True)
    assert refused.returncode != 0 and "SECRET_KEY" in refused.stderr
