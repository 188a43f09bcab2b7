"""Engineering rules that no single feature test would notice breaking."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Every module of the web side, then the root urlconf and the WSGI application, in a fresh interpreter: what that
# loads is what a web worker carries.
IMPORT_EVERYTHING_WEB = """
import importlib, json, pkgutil, sys
import django
django.setup()
import apps
for module in pkgutil.walk_packages(apps.__path__, "apps."):
    importlib.import_module(module.name)
from django.urls import get_resolver
get_resolver().url_patterns
import portal.wsgi
print(json.dumps(sorted(name for name in sys.modules if "." not in name)))
"""


def test_the_web_process_loads_no_pdf_renderer_and_no_training_library():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings", "ATTEST_TESTING": "1", "PYTHONPATH": str(ROOT)}
    env.setdefault("DATABASE_URL", "sqlite://:memory:")
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERYTHING_WEB], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = set(json.loads(result.stdout.strip().splitlines()[-1]))
    assert "apps" in loaded and "django" in loaded
    heavy = {"weasyprint", "torch", "opacus", "fairlearn", "sklearn"}
    assert not heavy & loaded, f"the web process imports {sorted(heavy & loaded)} at start"


def test_no_test_skips_itself_without_the_service_requirement():
    # A bare skip passes silently under CI; tests/plugins/services.require_service (or @pytest.mark.postgres, which
    # calls it) fails there instead.
    bare = re.compile(r"pytest\.skip\(|pytest\.mark\.skip|skipif\(|importorskip\(")
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sorted((ROOT / "tests").rglob("*.py"))
        if path.parts[-2] != "plugins" and path.name != Path(__file__).name
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if bare.search(line)
    ]
    assert offenders == []


@pytest.mark.parametrize("package", ["fairlearn", "scikit-learn", "pycanon"])
def test_libraries_only_tests_use_are_development_requirements(package):
    runtime = (ROOT / "requirements.txt").read_text().lower()
    assert not re.search(rf"^{re.escape(package)}\b", runtime, re.M), f"{package} is a runtime requirement"
