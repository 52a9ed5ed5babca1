"""kaapana: a medical-imaging research platform that brings the algorithm to the data."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("kaapana")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"

__all__ = ["__version__"]
