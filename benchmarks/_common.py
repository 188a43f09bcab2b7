"""Helpers shared by the benchmark scripts: run from the repository root (or anywhere: the root goes on sys.path)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def timed(func, *args, **kwargs):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = func(*args, **kwargs)
    return time.perf_counter() - start, result


def run_measured(code: str) -> dict:
    """Run Python code in a fresh process; it prints a JSON dict; peak RSS (MB) of that process is added."""
    wrapper = (
        f"import json, resource, sys; sys.path.insert(0, {str(ROOT)!r})\n{code}\n"
        "out['peak_rss_mb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
        "print(json.dumps(out))"
    )
    completed = subprocess.run([sys.executable, "-c", wrapper], capture_output=True, text=True, check=True)
    return json.loads(completed.stdout.strip().splitlines()[-1])
