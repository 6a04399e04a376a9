"""The keeper of a site's Flower processes: a process that exits is started again after a
pause that doubles, and every kept process is stopped when the node stops."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from fedpsy.keeper import Kept, keep_running


def _exits(code: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-c", f"print('run'); raise SystemExit({code})"], stdout=out
        )


def _sleeps() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def _until(check: object, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_an_exited_process_is_started_again_with_doubling_pauses(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    kept = Kept("a refused SuperNode", lambda: _exits(3, log), log, pause=0.2)
    with keep_running([kept], every=0.05):  # the first start and three more
        assert _until(lambda: kept.restarts >= 3 and log.read_text().count("run") >= 4)
    assert kept.pause >= 0.2 * 2**3  # 0.2, 0.4, 0.8, then 1.6 s


def test_running_processes_are_left_alone_and_stopped_at_the_end(tmp_path: Path) -> None:
    kept = Kept("the worker", _sleeps, tmp_path / "log", pause=0.1)
    with keep_running([kept], every=0.05):
        time.sleep(0.5)
        assert kept.restarts == 0 and kept.process.poll() is None
    assert kept.process.poll() is not None  # stopped with the block
