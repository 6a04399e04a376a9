"""Keeping a site's Flower processes running next to its API.

A SuperNode exits when the SuperLink refuses it (its key is not registered yet), when the
SuperLink restarted without its state, or when the link stays down; the ClientApp worker
may crash. :class:`Kept` starts such a process again after a pause that doubles from
``RESTART_S`` up to ``MAX_RESTART_S`` (back to ``RESTART_S`` once it ran for
``STEADY_S``), logging each exit with the log file to read, so that registering a site's
key later, or restarting the SuperLink, needs no restart of ``fedpsy node serve``.
:func:`keep_running` watches a list of them from a thread until told to stop.
"""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

logger = logging.getLogger(__name__)
RESTART_S = 5.0
MAX_RESTART_S = 60.0
STEADY_S = 60.0


def stop_process(process: subprocess.Popen[bytes], what: str) -> None:
    """SIGTERM, then SIGKILL after 10 s."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        logger.warning("%s did not stop in 10 s; killing it", what)
        process.kill()
        process.wait()


class Kept:
    """One child process (``start()`` starts it), started again when it exits."""

    def __init__(
        self,
        what: str,
        start: Callable[[], subprocess.Popen[bytes]],
        log: Path,
        pause: float = RESTART_S,
    ) -> None:
        self.what = what
        self.start = start
        self.log = log
        self.first_pause = pause
        self.pause = pause
        self.process = start()
        self.started = time.monotonic()
        self.due: float | None = None
        self.restarts = 0

    def check(self) -> None:
        """Notice an exit, or start the process again once its pause is over."""
        code = self.process.poll()
        if code is None:
            return
        now = time.monotonic()
        if self.due is None:
            if now - self.started > STEADY_S:
                self.pause = self.first_pause
            logger.warning(
                "%s exited (code %s); see %s; starting it again in %g s",
                self.what,
                code,
                self.log,
                self.pause,
            )
            self.due = now + self.pause
        elif now >= self.due:
            self.process = self.start()
            self.started, self.due = now, None
            self.pause = min(self.pause * 2, MAX_RESTART_S)
            self.restarts += 1

    def stop(self) -> None:
        stop_process(self.process, self.what)


@contextmanager
def keep_running(kept: list[Kept], every: float = 1.0) -> Iterator[list[Kept]]:
    """Check ``kept`` every ``every`` s while the block runs; stop them (last first) after."""
    done = threading.Event()

    def watch() -> None:
        while not done.wait(every):
            for one in kept:
                one.check()

    thread = threading.Thread(target=watch, name="fedpsy-keeper", daemon=True)
    thread.start()
    try:
        yield kept
    finally:
        done.set()
        thread.join(timeout=every + 5)
        for one in reversed(kept):
            one.stop()


__all__ = ["Kept", "keep_running", "stop_process"]
