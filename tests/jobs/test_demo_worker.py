"""The demo worker (``make demo``: ``celery -A portal worker -B`` beside runserver) leaves nothing behind when its main
process is killed outright: its embedded beat scheduler and its pool processes end with it (portal/lifeline.py)."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.plugins.services import require_service

REPO = Path(__file__).resolve().parents[2]


def demo_worker_command(data_dir: Path) -> list[str]:
    """The worker line of the Makefile's demo recipe, with its variables filled in and var/ moved to ``data_dir``."""
    makefile = (REPO / "Makefile").read_text()
    recipe = makefile.split("\ndemo:", 1)[1].split("\n\n", 1)[0]
    line = next(line for line in recipe.splitlines() if "celery -A portal worker" in line)
    line = line.strip().removesuffix("\\").strip().removesuffix("&").strip()
    line = line.replace("$(DEMO_ENV)", "").replace("$(VENV)/bin/celery", f"{sys.executable} -m celery")
    line = line.replace("var/", f"{data_dir}/")
    assert "$(" not in line, line
    return shlex.split(line)


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in {"Z", "X"}  # a zombie has ended; only its exit status waits to be collected


def test_killing_the_demo_workers_main_process_leaves_no_celery_process(tmp_path):
    if not Path("/proc/self/stat").exists():
        require_service("/proc", "the test reads the process tree from /proc (Linux)")
    command = demo_worker_command(tmp_path)
    assert "-B" in command  # the demo's worker embeds beat: that is the process which used to survive
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DATABASE_", "CELERY_"))}
    env.update(
        ATTEST_DEMO="1",
        DJANGO_SETTINGS_MODULE="portal.settings",
        ATTEST_DATA_DIR=str(tmp_path),
        ATTEST_BROKER_FOLDER=str(tmp_path / "broker"),
    )
    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            text = log_path.read_text(errors="replace")
            if " ready." in text and "beat: Starting" in text:
                break
            assert process.poll() is None, text[-3000:]
            time.sleep(0.2)
        else:
            pytest.fail(f"the demo worker did not start:\n{log_path.read_text(errors='replace')[-3000:]}")
        # Let beat get into its loop before the kill (it sends its first tasks at once).
        time.sleep(1)
        started = descendants(process.pid)
        assert len(started) >= 2, "expected the pool processes and the beat process"  # concurrency 2, plus beat
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline and any(alive(pid) for pid in started):
            time.sleep(0.2)
        left = [pid for pid in started if alive(pid)]
        assert not left, f"still running after the worker's main process was killed: {left}"
    finally:
        # Whatever happened, nothing of this test outlives it (the worker was started in its own session).
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if process.poll() is None:
            process.wait(timeout=10)
