"""The environment every fedpsy process that imports or launches Flower runs with.

Flower reads ``FLWR_TELEMETRY_ENABLED`` when its telemetry module is first imported and
would otherwise send usage events; ``FLWR_HOME`` is where it keeps its configuration,
installed app bundles and state. :func:`flower_environment` sets both (telemetry off, home
inside the node or coordinator directory) before Flower is imported, and also switches
telemetry off in a Flower module that was imported earlier.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def flower_env(home: Path) -> dict[str, str]:
    """The variables to add to a Flower process's environment."""
    return {"FLWR_TELEMETRY_ENABLED": "0", "FLWR_HOME": str(home)}


def flower_environment(home: Path) -> Path:
    """Set Flower's environment in this process (``home`` is created); returns ``home``."""
    home.mkdir(parents=True, exist_ok=True)
    os.environ.update(flower_env(home))
    telemetry = sys.modules.get("flwr.supercore.telemetry")
    if telemetry is not None:
        telemetry.FLWR_TELEMETRY_ENABLED = "0"  # type: ignore[attr-defined]
    return home


def quick_object_pulls(initial: float = 0.02, cap: float = 0.5) -> None:
    """Retry Flower's pulls of message objects after ``initial`` s, doubling up to ``cap``,
    instead of 1 s up to 10 s.

    A message travels as objects the receiver pulls; one pulled a moment before it arrived
    is retried after Flower's backoff, which made most messages of a run wait a whole second
    at the site's worker, the SuperNode and the ServerApp. Call in each of those processes
    (after :func:`flower_environment`); it sets the defaults of Flower 1.42's
    ``pull_objects`` and ``pull_and_inflate_object_from_tree``.
    """
    from flwr.supercore.inflatable import inflatable_utils

    for function in (
        inflatable_utils.pull_objects,
        inflatable_utils.pull_and_inflate_object_from_tree,
    ):
        defaults = function.__kwdefaults__
        if defaults is not None and "initial_backoff" in defaults:
            defaults.update(initial_backoff=initial, backoff_cap=cap)


def child_env(home: Path, bin_dir: Path | None = None) -> dict[str, str]:
    """A full environment for a Flower subprocess: this one plus :func:`flower_env`, with
    ``bin_dir`` (the venv's scripts, where ``flower-superexec`` lives) first on PATH."""
    env = dict(os.environ)
    env.update(flower_env(home))
    scripts = bin_dir if bin_dir is not None else Path(sys.executable).parent
    env["PATH"] = f"{scripts}{os.pathsep}{env.get('PATH', '')}"
    return env


__all__ = ["child_env", "flower_env", "flower_environment", "quick_object_pulls"]
