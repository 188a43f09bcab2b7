"""The embedded beat scheduler (``celery worker -B``, the demo) ends with its worker, however the worker ends.

Beat runs in a child process of the worker's main process. A worker stopped normally stops it; a worker killed outright
(SIGKILL, the OOM killer) used to leave it running as an orphan, still sending the schedule (and holding the schedule
file, so the next ``make demo`` ran two). ``exit_with_parent`` is called in the beat process when it starts: on Linux
the kernel sends it SIGTERM when its parent dies (PR_SET_PDEATHSIG), and everywhere a daemon thread checks once a
second that the parent is still the one that started it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1
POLL_SECONDS = 1.0


def _die() -> None:
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5)
    os._exit(1)  # SIGTERM handled and ignored: leave anyway


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(POLL_SECONDS)
    _die()


def exit_with_parent(parent: int | None = None) -> None:
    """End this process when ``parent`` (default: the current parent) ends."""
    parent = os.getppid() if parent is None else parent
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the watcher below still works
    if os.getppid() != parent or parent == 1:
        _die()  # the parent died before the guard was set
    threading.Thread(target=_watch, args=(parent,), name="exit-with-parent", daemon=True).start()


def beat_exits_with_its_worker(sender: object = None, **kwargs: object) -> None:
    """``beat_embedded_init`` handler: runs in the embedded beat's own process."""
    exit_with_parent()
