"""fedpsy schemas: the only code both node and coordinator import.

``schemas.__version__`` is looked up in the installed package's metadata when first asked
for, not on import: ``importlib.metadata`` costs every ``fedpsy`` command (``--help``
included) tens of milliseconds otherwise.
"""

from functools import cache


@cache
def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("fedpsy")
    except PackageNotFoundError:  # running from a source tree that was not installed
        return "0.0.0"


def __getattr__(name: str) -> str:
    if name == "__version__":
        return _version()
    raise AttributeError(f"module 'schemas' has no attribute {name!r}")
