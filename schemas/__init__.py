"""fedpsy schemas: the only code both node and coordinator import."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("fedpsy")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"
