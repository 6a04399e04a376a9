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


def child_env(home: Path, bin_dir: Path | None = None) -> dict[str, str]:
    """A full environment for a Flower subprocess: this one plus :func:`flower_env`, with
    ``bin_dir`` (the venv's scripts, where ``flower-superexec`` lives) first on PATH."""
    env = dict(os.environ)
    env.update(flower_env(home))
    scripts = bin_dir if bin_dir is not None else Path(sys.executable).parent
    env["PATH"] = f"{scripts}{os.pathsep}{env.get('PATH', '')}"
    return env


__all__ = ["child_env", "flower_env", "flower_environment"]
